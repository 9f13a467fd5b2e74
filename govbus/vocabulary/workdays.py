"""Working days under the Chinese statutory calendar, including 调休 (weekend working days).

Sharing deadlines are set in working days (工作日), and 民法典 第二百零一条 says the day a period
starts on is not counted: "10 working days from a request made on day S" is the 10th working
day after S. Statutory holidays and the weekends worked in exchange are fixed each year by a
国务院办公厅 notice, so no rule can compute them; the data come from

1. the override file (``govbus/data/workday_overrides.yaml`` by default; another file via the
   ``overrides_path`` argument or ``$GOVBUS_WORKDAY_OVERRIDES``, which replaces the default).
   A year listed there is taken entirely from the file, replacing chinese_calendar's data;
2. otherwise the ``chinese_calendar`` package, which covers a fixed range of years per release.

For a day in a year neither covers, the answer would be a guess. ``is_workday`` then raises
:class:`UncoveredYearError`; ``add_workdays`` and ``workdays_between`` never fail on it, but count
such days Monday-Friday and return ``certain=False`` with a reason that names the missing year
and how to add it.

Late December belongs to two notices: the 元旦 arrangement of year Y+1 has moved days as early as
December 29 of year Y (2007-12-29 and 2018-12-29 were worked; 2018-12-31 was a holiday). So
December 29-31 count as certain only when year Y+1 is covered too.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import chinese_calendar
import yaml

from govbus.vocabulary.errors import UserError

__all__ = [
    "DEFAULT_OVERRIDES_PATH",
    "OVERRIDES_ENV_VAR",
    "Deadline",
    "UncoveredYearError",
    "WorkdayCalendar",
    "WorkdayCount",
    "WorkdayDataError",
]

DEFAULT_OVERRIDES_PATH = Path(__file__).resolve().parent.parent / "data" / "workday_overrides.yaml"
OVERRIDES_ENV_VAR = "GOVBUS_WORKDAY_OVERRIDES"
# See the module docstring: the next year's 元旦 notice can reach back to this day of December.
_NEXT_NOTICE_REACHES_BACK_TO = (12, 29)
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

# chinese_calendar raises NotImplementedError outside the years its release has data for; its
# own range check uses the span of the years in its holiday table, and so does this.
_CC_FIRST_YEAR = min(d.year for d in chinese_calendar.holidays)
_CC_LAST_YEAR = max(d.year for d in chinese_calendar.holidays)


class WorkdayDataError(UserError):
    """The override file is unreadable or malformed; the message names file, year and entry."""


class UncoveredYearError(UserError, LookupError):
    """No official holiday data covers the day asked about; the message says how to add it."""


@dataclass(frozen=True)
class Deadline:
    due: date
    # False when a counted day lacked official data and was taken as Monday-Friday.
    certain: bool
    reason: str | None = None


@dataclass(frozen=True)
class WorkdayCount:
    days: int
    certain: bool
    reason: str | None = None


@dataclass(frozen=True)
class _Overrides:
    years: frozenset[int]
    holidays: frozenset[date]
    workdays: frozenset[date]


class WorkdayCalendar:
    def __init__(self, overrides_path: str | os.PathLike[str] | None = None) -> None:
        chosen = overrides_path or os.environ.get(OVERRIDES_ENV_VAR) or DEFAULT_OVERRIDES_PATH
        self.overrides_path = Path(chosen)
        self._overrides = _load_overrides(self.overrides_path)

    def covered_years(self) -> tuple[int, ...]:
        """Years with official data, from chinese_calendar or the override file."""
        cc = range(_CC_FIRST_YEAR, _CC_LAST_YEAR + 1)
        return tuple(sorted(self._overrides.years.union(cc)))

    def is_covered(self, year: int) -> bool:
        return year in self._overrides.years or _CC_FIRST_YEAR <= year <= _CC_LAST_YEAR

    def is_workday(self, d: date) -> bool:
        """Whether ``d`` is a working day; raises UncoveredYearError rather than guess."""
        workday, missing = self._day(_as_date(d))
        if missing is not None:
            raise UncoveredYearError(self._reason({missing}))
        return workday

    def add_workdays(self, start: date, n: int) -> Deadline:
        """The n-th working day after ``start`` (the starting day itself is never counted)."""
        if n < 0:
            raise ValueError(f"number of working days must be >= 0, got {n}")
        day, counted = _as_date(start), 0
        missing: set[int] = set()
        while counted < n:
            day += timedelta(days=1)
            workday, year = self._day(day)
            if year is not None:
                missing.add(year)
            counted += workday
        return Deadline(day, not missing, self._reason(missing) if missing else None)

    def workdays_between(self, start: date, end: date) -> WorkdayCount:
        """Working days after ``start`` up to and including ``end`` (e.g. an answer time)."""
        start, end = _as_date(start), _as_date(end)
        if end < start:
            raise ValueError(f"end {end} is before start {start}")
        day, days = start, 0
        missing: set[int] = set()
        while day < end:
            day += timedelta(days=1)
            workday, year = self._day(day)
            if year is not None:
                missing.add(year)
            days += workday
        return WorkdayCount(days, not missing, self._reason(missing) if missing else None)

    def _day(self, d: date) -> tuple[bool, int | None]:
        """(is a working day, the year whose missing notice makes this uncertain or None)."""
        ov = self._overrides
        if d in ov.workdays or d in ov.holidays:
            return d in ov.workdays, None
        if d.year in ov.years:
            return d.weekday() < 5, self._late_december_gap(d)
        if _CC_FIRST_YEAR <= d.year <= _CC_LAST_YEAR:
            return bool(chinese_calendar.is_workday(d)), self._late_december_gap(d)
        return d.weekday() < 5, d.year

    def _late_december_gap(self, d: date) -> int | None:
        if (d.month, d.day) >= _NEXT_NOTICE_REACHES_BACK_TO and not self.is_covered(d.year + 1):
            return d.year + 1
        return None

    def _reason(self, years: set[int]) -> str:
        listed = ", ".join(str(y) for y in sorted(years))
        notices = "、".join(f"关于{y}年部分节假日安排的通知" for y in sorted(years))
        return (
            f"no official holiday data for {listed}: chinese_calendar "
            f"{chinese_calendar.__version__} covers {_CC_FIRST_YEAR}-{_CC_LAST_YEAR} and "
            f"{self.overrides_path} has no entry for {listed}. Days depending on it (in {listed}, "
            "or December 29-31 before it, which its 元旦 arrangement may move) were counted as "
            "Monday-Friday working days, ignoring statutory holidays and 调休, so the result may "
            f"be wrong. To fix: add the 国务院办公厅 notice ({notices}) under {listed} in "
            f"{self.overrides_path}, or upgrade chinese_calendar to a release that has it."
        )


def _as_date(d: date) -> date:
    # datetime is a subclass of date; keep only the calendar day.
    return d.date() if isinstance(d, datetime) else d


# --- the override file ------------------------------------------------------------------


class _DatesAsText(yaml.SafeLoader):
    """Keeps dates as text: PyYAML's own date parsing fails on 2027-02-30 with an error that
    names neither the year nor the entry, so dates are parsed by _parse_day instead."""


def _timestamp_as_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


_DatesAsText.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


def _load_overrides(path: Path) -> _Overrides:
    try:
        raw: Any = yaml.load(path.read_text(encoding="utf-8"), Loader=_DatesAsText)
    except OSError as exc:
        raise WorkdayDataError(f"{path}: cannot read workday overrides: {exc}") from exc
    except yaml.YAMLError as exc:
        raise WorkdayDataError(f"{path}: not valid YAML: {exc}") from exc
    if raw is None:  # only comments
        return _Overrides(frozenset(), frozenset(), frozenset())
    if not isinstance(raw, dict):
        raise WorkdayDataError(f"{path}: expected a mapping of year -> entries at the top level")

    years: set[int] = set()
    holidays: set[date] = set()
    workdays: set[date] = set()
    for key, entry in raw.items():
        year = _year_key(path, key)
        where = f"{path}: year {year}"
        if year in years:  # e.g. both 2027 and "2027"
            raise WorkdayDataError(f"{where}: listed twice")
        if not isinstance(entry, dict):
            raise WorkdayDataError(f"{where}: expected a mapping with holidays/workdays/source")
        unknown = set(entry) - {"holidays", "workdays", "source"}
        if unknown:
            raise WorkdayDataError(f"{where}: unknown keys {sorted(map(str, unknown))}")
        # Every year has at least 元旦; an empty list is a mistake, not "no holidays".
        if not isinstance(entry.get("holidays"), list) or not entry["holidays"]:
            raise WorkdayDataError(f"{where}: 'holidays' must be a non-empty list")
        if not isinstance(entry.get("workdays", []), list):
            raise WorkdayDataError(f"{where}: 'workdays' must be a list of dates")
        year_holidays: set[date] = set()
        for item in entry["holidays"]:
            year_holidays.update(_holiday_entry(where, year, item))
        year_workdays = {_workday_entry(where, year, item) for item in entry.get("workdays", [])}
        # Compared with earlier years too: a December entry may be listed under two years.
        both = (year_holidays | holidays) & (year_workdays | workdays)
        if both:
            listed = ", ".join(d.isoformat() for d in sorted(both))
            raise WorkdayDataError(f"{where}: {listed} listed as both holiday and workday")
        years.add(year)
        holidays |= year_holidays
        workdays |= year_workdays
    return _Overrides(frozenset(years), frozenset(holidays), frozenset(workdays))


def _year_key(path: Path, key: object) -> int:
    text = str(key)
    if isinstance(key, bool) or not (text.isascii() and text.isdigit() and len(text) == 4):
        raise WorkdayDataError(f"{path}: top-level key {key!r} is not a year like 2027")
    return int(text)


def _parse_day(where: str, year: int, item: object, value: object) -> date:
    text = str(value).strip()
    try:
        # Python 3.11 also accepts 20270101 or 2027-W01-5; the notice-style form only.
        if not _ISO_DAY.fullmatch(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise WorkdayDataError(
            f"{where}: entry {item!r}: {value!r} is not a date (YYYY-MM-DD)"
        ) from None
    # A notice for year Y covers Y and, for 元旦, possibly the last days of December of Y-1.
    if not (day.year == year or (day.year == year - 1 and day.month == 12)):
        raise WorkdayDataError(
            f"{where}: entry {item!r}: {day} is outside {year} (only December of {year - 1} "
            "may appear, for an 元旦 arrangement)"
        )
    return day


def _holiday_entry(where: str, year: int, item: object) -> list[date]:
    if isinstance(item, str) and ".." in item:
        first_text, _, last_text = item.partition("..")
        first = _parse_day(where, year, item, first_text)
        last = _parse_day(where, year, item, last_text)
        if last < first:
            raise WorkdayDataError(f"{where}: holidays entry {item!r}: range ends before it starts")
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return [_parse_day(where, year, item, item)]


def _workday_entry(where: str, year: int, item: object) -> date:
    day = _parse_day(where, year, item, item)
    if day.weekday() < 5:
        raise WorkdayDataError(
            f"{where}: workdays entry {item!r}: {day} is a {day:%A}; only Saturdays and Sundays "
            "need listing as adjusted working days (调休)"
        )
    return day
