"""Masks for the items an article 10 public view shows to everyone (pure functions).

The catalog sets each shareable item's ``mask``; the rules below decide how much of a value
stays visible. A masked value is always text (the view's schema types masked items as strings)
and never shows more than the rule keeps: input that does not have the expected shape is
hidden more, not less.

============  ==========================================  ====================================
mask          kept                                        examples
============  ==========================================  ====================================
none          everything (the value is unchanged)
citizen-id    18 characters: the first 6 (region) and     320402199001011234 → 320402********1234
              the last 4; 15 (first-generation id): the   320402900101123 → 320402******123
              first 6 and the last 3, so the birth date
              is hidden in both; any other length:
              nothing
name          the first character; a one-character        张三 → 张*, 欧阳娜娜 → 欧***, 张 → *
              value: nothing. Compound surnames are not
              guessed (欧阳 vs 欧 + 阳…): keeping one
              character never reveals part of the given
              name
phone         11 digits (a mobile number): the first 3    13812345678 → 138****5678,
              and last 4; 8 or more characters: the last  0519-86881234 → *********1234
              4; shorter: nothing
all           nothing: a fixed ``***`` (the length is     anything → ***
              hidden too)
============  ==========================================  ====================================

Hidden characters become ``*`` one for one (so 张** still tells a three-character name, as on
Chinese ID cards and receipts), except for ``all``. Null stays null under every mask: the view
says "no value" where the source has none. Surrounding white space is dropped first.
"""

from __future__ import annotations

import datetime as dt
import decimal

from govbus.vocabulary.spec import Mask

__all__ = ["STAR", "mask_text", "mask_value"]

STAR = "*"
_ALL = "***"


def _text(value: object) -> str:
    """The text a non-text value is masked as (dates ISO, money exact, bytes hex)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dt.date):  # also datetime
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def _keep(value: str, head: int, tail: int) -> str:
    hidden = len(value) - head - tail
    return value[:head] + STAR * hidden + (value[-tail:] if tail else "")


def mask_text(mask: Mask, value: str) -> str:
    """``value`` masked by ``mask`` (see the module doc for what each keeps)."""
    value = value.strip()
    if mask == "none":
        return value
    if mask == "all":
        return _ALL
    n = len(value)
    if mask == "citizen-id":
        if n == 18:
            return _keep(value, 6, 4)
        if n == 15:
            return _keep(value, 6, 3)
        return STAR * n
    if mask == "name":
        return _keep(value, 1, 0) if n >= 2 else STAR * n
    if mask == "phone":
        if n == 11 and value.isdigit():
            return _keep(value, 3, 4)
        return _keep(value, 0, 4) if n >= 8 else STAR * n
    raise ValueError(f"unknown mask {mask!r}; known: none, citizen-id, name, phone, all")


def mask_value(mask: Mask, value: object) -> object:
    """A payload value as the public view carries it: unchanged for ``none``, else masked text.

    None stays None under every mask.
    """
    if value is None or mask == "none":
        return value
    return mask_text(mask, _text(value))
