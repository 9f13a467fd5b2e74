"""Time on the bus: China Standard Time for days and deadlines, UTC for storage."""

from __future__ import annotations

import datetime as dt

# UTC+8 without daylight saving: the bus's local time (a naive datetime from a department's
# system is taken as this).
CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "CST")


def utc(value: dt.datetime | None = None) -> dt.datetime:
    """``value`` (or now) in UTC; a naive value, as SQLite returns them, is taken as UTC."""
    if value is None:
        return dt.datetime.now(dt.UTC)
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def china_day(at: dt.datetime) -> dt.date:
    """The calendar day ``at`` falls on in China."""
    return utc(at).astimezone(CHINA_TZ).date()


def end_of_china_day(day: dt.date) -> dt.datetime:
    """The first instant after ``day`` in China time, in UTC: a validity "until" that day."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), CHINA_TZ).astimezone(dt.UTC)
