"""Whether a holder's copy of an item agrees with the authoritative value (pure).

The catalog sets one rule per info item (``InfoItem.compare``); values arrive as text (or
None), as the verifier keeps them:

- ``exact``: the same text;
- ``text``: the same after Unicode NFKC (full-width letters, digits and the ideographic space
  U+3000 become their half-width forms), whitespace runs collapsed and trimmed, and case folded;
  an empty text equals a missing value;
- ``numeric``: the same number within the item's absolute ``tolerance`` (default 0), in decimal
  arithmetic; ``1,000.00``, ``１０００`` and ``1000`` are one number. Text that is no number is
  compared exactly;
- ``date``: the same calendar date in any of ``2024-01-05``, ``2024/1/5``, ``2024.1.5``,
  ``20240105``, ``2024年1月5日``; a date-time at midnight is its date, other date-times compare
  as instants. Text that is no date is compared exactly.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import unicodedata
from typing import Literal

__all__ = ["Rule", "compare", "normalise_text", "parse_date", "parse_number"]

Rule = Literal["exact", "text", "numeric", "date"]

_DATE = re.compile(
    r"(?P<y>\d{4})(?:[-/.年](?P<m>\d{1,2})[-/.月](?P<d>\d{1,2})日?|(?P<m2>\d{2})(?P<d2>\d{2}))"
    r"(?:[ T](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,6})\d*)?)?"
    r"(?P<tz>Z|[+-]\d{2}:?\d{2})?)?"
)


def normalise_text(value: str | None) -> str:
    if value is None:
        return ""
    return " ".join(unicodedata.normalize("NFKC", value).split()).casefold()


def parse_number(value: str) -> decimal.Decimal | None:
    """The number a text states, or None; thousands separators and full-width digits allowed."""
    text = unicodedata.normalize("NFKC", value).strip().replace(",", "").replace(" ", "")
    try:
        number = decimal.Decimal(text)
    except decimal.InvalidOperation:
        return None
    return number if number.is_finite() else None


def parse_date(value: str) -> dt.date | dt.datetime | None:
    """A date (or a date-time not at midnight) a text states, or None."""
    m = _DATE.fullmatch(unicodedata.normalize("NFKC", value).strip())
    if m is None:
        return None
    try:
        day = dt.date(int(m["y"]), int(m["m"] or m["m2"]), int(m["d"] or m["d2"]))
        if m["H"] is None:
            return day
        time = dt.time(
            int(m["H"]), int(m["M"]), int(m["S"] or 0), int((m["f"] or "0").ljust(6, "0"))
        )
    except ValueError:  # e.g. 2024-02-30
        return None
    if time == dt.time(0):
        return day
    tz = m["tz"]
    zone = None
    if tz == "Z":
        zone = dt.UTC
    elif tz:
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        zone = dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    return dt.datetime.combine(day, time, zone)


def compare(
    rule: Rule, authoritative: str | None, observed: str | None, tolerance: float | None = None
) -> bool:
    """True if ``observed`` agrees with ``authoritative`` under ``rule`` (see the module doc)."""
    if rule == "text":
        return normalise_text(authoritative) == normalise_text(observed)
    if authoritative is None or observed is None or rule == "exact":
        return authoritative == observed
    if rule == "numeric":
        a, b = parse_number(authoritative), parse_number(observed)
        if a is None or b is None:
            return authoritative.strip() == observed.strip()
        # str(): the catalog's float tolerance as written (0.01, not 0.01000000000000000020...).
        return abs(a - b) <= decimal.Decimal(str(tolerance or 0))
    if rule == "date":
        da, db = parse_date(authoritative), parse_date(observed)
        if da is None or db is None:
            return authoritative.strip() == observed.strip()
        if isinstance(da, dt.datetime) != isinstance(db, dt.datetime):
            return False
        if (
            isinstance(da, dt.datetime)
            and isinstance(db, dt.datetime)
            and (da.tzinfo is None) != (db.tzinfo is None)
        ):  # naive vs aware: compare the wall clock
            return da.replace(tzinfo=None) == db.replace(tzinfo=None)
        return da == db
    raise ValueError(f"unknown comparison rule {rule!r}; one of exact, text, numeric, date")
