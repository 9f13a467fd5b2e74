"""The freshness rules, without Faust: when a resource is late, and the events that say so.

Articles 18 and 26(2); the table of allowances per update cycle and the episode semantics are
documented in ``stream_apps.freshness.app``, which applies these rules to the resource topics.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.spec import Resource, UpdateCycle
from govbus.vocabulary.workdays import WorkdayCalendar

__all__ = [
    "ALLOWANCES",
    "Allowance",
    "Clock",
    "Due",
    "baseline",
    "deadline",
    "freshness_event",
    "iso",
    "violation_event",
    "violation_subject",
]

Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class Allowance:
    rule: str  # how the deadline is computed, for people
    reason: str


ALLOWANCES: Mapping[UpdateCycle, Allowance] = {
    "realtime": Allowance(
        "end of the 1st working day after the publish",
        "changes come as business happens, so quiet hours, nights and holidays prove nothing; "
        "a whole working day without a record means the feed stopped",
    ),
    "daily": Allowance(
        "end of the 1st working day after the publish",
        "one batch per working day: the next is due by the end of the next working day",
    ),
    "weekly": Allowance(
        "end of the 5th working day after the publish",
        "a working week; holidays such as 国庆 lengthen it instead of making a batch late",
    ),
    "monthly": Allowance(
        "end of the calendar month after the publish's month",
        "one batch per month, whenever in the month it comes",
    ),
    "quarterly": Allowance(
        "end of the quarter after the publish's quarter", "one batch per quarter"
    ),
    "half-yearly": Allowance(
        "end of the half-year after the publish's half-year", "one batch per half-year"
    ),
    "yearly": Allowance("end of the year after the publish's year", "one batch per year"),
    "other": Allowance("never", "no declared cycle: nothing to be late against"),
}


@dataclass(frozen=True)
class Due:
    """When a resource is next due: ``at`` (aware), with the working-day calendar's caveat."""

    at: dt.datetime
    certain: bool = True
    reason: str | None = None


def _end_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), CHINA_TZ)


def _end_of_period(day: dt.date, months: int) -> dt.datetime:
    """End of the period (of ``months`` months, aligned to the year) after ``day``'s period."""
    start = (day.month - 1) // months * months  # 0-based first month of day's period
    first_after_next = day.year * 12 + start + 2 * months  # months since year 0
    year, month = divmod(first_after_next, 12)
    return dt.datetime(year, month + 1, 1, tzinfo=CHINA_TZ)


def deadline(
    cycle: UpdateCycle, last: dt.datetime, calendar: WorkdayCalendar | None = None
) -> Due | None:
    """When a resource updated ``cycle`` and last published at ``last`` becomes late.

    None for ``other`` (never late). ``last`` is taken in China Standard Time.
    """
    day = last.astimezone(CHINA_TZ).date()
    if cycle in ("realtime", "daily", "weekly"):
        calendar = calendar or WorkdayCalendar()
        due = calendar.add_workdays(day, 5 if cycle == "weekly" else 1)
        return Due(_end_of(due.due), due.certain, due.reason)
    months = {"monthly": 1, "quarterly": 3, "half-yearly": 6, "yearly": 12}.get(cycle)
    if months is None:
        return None
    return Due(_end_of_period(day, months))


def iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(CHINA_TZ).isoformat() if value is not None else None


def freshness_event(
    resource: Resource, last: dt.datetime | None, due: Due, now: dt.datetime, breached: bool
) -> dict[str, Any]:
    return {
        "resource_code": resource.code,
        "provider": resource.provider,
        "update_cycle": resource.update_cycle,
        "last_publish": iso(last),
        "deadline": iso(due.at),
        "detected_at": iso(now),
        "breached": breached,
    }


def violation_subject(resource: Resource, due: Due) -> str:
    return f"{resource.code}@{due.at.astimezone(CHINA_TZ).date().isoformat()}"


def violation_event(
    resource: Resource, last: dt.datetime | None, due: Due, now: dt.datetime
) -> dict[str, Any]:
    since = f"last published {iso(last)}" if last else "not published since watched"
    caveat = f" (deadline uncertain: {due.reason})" if not due.certain else ""
    return {
        "kind": "late-provision",
        "article": "26(2)",
        "department": resource.provider,
        "resource_code": resource.code,
        "subject": violation_subject(resource, due),
        "at": iso(now),
        "detail": (
            f"{resource.name} ({resource.code}) is updated {resource.update_cycle} "
            f"({ALLOWANCES[resource.update_cycle].rule}); {since}, so it was due by "
            f"{iso(due.at)} and nothing came{caveat}. The provider should publish the "
            "current data (articles 18, 26(2))"
        ),
    }


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), CHINA_TZ)


def baseline(
    resource: Resource, last: dt.datetime | None, watching_since: dt.datetime
) -> dt.datetime:
    """The deadline counts from the last publish, else from 发布日期 or watch start (later)."""
    if last is not None:
        return last
    return max(_start_of(resource.publish_date), watching_since)
