"""Article 9 deadlines: update the catalog within 15 working days of a law or mandate change.

办法 第九条: when laws and regulations are revised or a department's functions change in a way
that affects its catalog, the department updates its catalog within 15 working days. A trigger
is recorded with the day the change took effect and the departments concerned; each gets a
deadline, the 15th working day after that day (the day itself is not counted, see
``govbus.vocabulary.workdays``). A deadline is met by the department's next catalog change after the
trigger was recorded: ``CatalogStore.apply`` marks it with that version.

Where the 15 working days reach a year without official holiday data, the due date is counted
Monday-Friday and shown as uncertain with the reason, never as a firm date; ``deadlines``
recounts such dates with the calendar it is given, so they firm up once the year's notice is
entered.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

from govbus.catalog.model import (
    CatalogVersionRow,
    DepartmentRow,
    TriggerDeadlineRow,
    UpdateTriggerRow,
)
from govbus.catalog.store import CatalogStore
from govbus.vocabulary.clock import utc
from govbus.vocabulary.errors import UserError
from govbus.vocabulary.identifiers import IdentifierError, validate_uscc
from govbus.vocabulary.workdays import Deadline, WorkdayCalendar

__all__ = [
    "TRIGGER_KINDS",
    "WORKING_DAYS",
    "DeadlineStatus",
    "TriggerDeadline",
    "TriggerInfo",
    "deadlines",
    "record_trigger",
]

WORKING_DAYS = 15
TRIGGER_KINDS = {
    "law-revised": "法律法规修改",
    "mandate-changed": "行政管理职能变化",
}
State = Literal["open", "met", "overdue"]


@dataclass(frozen=True)
class TriggerDeadline:
    department: str  # department code
    due: dt.date
    certain: bool
    reason: str | None


@dataclass(frozen=True)
class TriggerInfo:
    id: int
    kind: str
    description: str
    recorded_at: dt.datetime
    starts_on: dt.date
    deadlines: tuple[TriggerDeadline, ...]


@dataclass(frozen=True)
class DeadlineStatus:
    department: str
    trigger: int
    due: dt.date
    certain: bool
    reason: str | None  # why the due date is uncertain
    state: State
    met_by_version: int | None
    met_on: dt.date | None = None  # UTC day of the version that met it (may be after ``due``)
    department_name: str | None = None  # None: the department is not in the current catalog
    region: str | None = None  # its 6-digit division code: 320400 the city, else a district


def _department_codes(store: CatalogStore, departments: list[str]) -> list[str]:
    """Codes for the named departments: a 统一社会信用代码, or the id of a catalog department."""
    if not departments:
        raise UserError("name at least one department whose catalog the change affects")
    spec = store.current()
    codes = []
    for name in departments:
        dept = spec.department(name) or spec.department_by_id(name)
        if dept is not None:
            codes.append(dept.code)
            continue
        try:
            # A department not in the catalog yet (e.g. newly set up) is named by its code.
            validate_uscc(name)
        except IdentifierError as exc:
            raise UserError(
                f"department {name!r} is neither a department id of the current catalog nor a "
                f"valid 统一社会信用代码 ({exc})"
            ) from exc
        codes.append(name)
    return list(dict.fromkeys(codes))


def record_trigger(
    store: CatalogStore,
    kind: str,
    description: str,
    departments: list[str],
    starts_on: dt.date,
    calendar: WorkdayCalendar | None = None,
    now: dt.datetime | None = None,
) -> TriggerInfo:
    """Record a change that obliges ``departments`` (codes or ids) to update their catalog."""
    if kind not in TRIGGER_KINDS:
        known = ", ".join(f"{k} ({v})" for k, v in TRIGGER_KINDS.items())
        raise UserError(f"unknown trigger kind {kind!r}; article 9 knows: {known}")
    if not description.strip():
        raise UserError("describe the trigger: which law or mandate changed, and how")
    codes = _department_codes(store, departments)
    deadline = (calendar or WorkdayCalendar()).add_workdays(starts_on, WORKING_DAYS)
    recorded_at = utc(now)
    with store.connect() as conn, conn.begin():
        result = conn.execute(
            sa.insert(UpdateTriggerRow),
            {
                "kind": kind,
                "description": description.strip(),
                "recorded_at": recorded_at,
                "starts_on": starts_on,
                "departments": codes,
            },
        )
        key = result.inserted_primary_key
        assert key is not None  # a single-row insert always reports its key
        trigger_id = int(key[0])
        conn.execute(
            sa.insert(TriggerDeadlineRow),
            [
                {
                    "trigger": trigger_id,
                    "department": code,
                    "due": deadline.due,
                    "certain": deadline.certain,
                    "reason": deadline.reason,
                }
                for code in codes
            ],
        )
    return TriggerInfo(
        trigger_id,
        kind,
        description.strip(),
        recorded_at,
        starts_on,
        tuple(TriggerDeadline(c, deadline.due, deadline.certain, deadline.reason) for c in codes),
    )


def deadlines(
    store: CatalogStore,
    today: dt.date,
    calendar: WorkdayCalendar | None = None,
    *,
    department: str | None = None,
    district: str | None = None,
) -> list[DeadlineStatus]:
    """Every deadline with its state on ``today``, by due date; only one department's (an id or
    code) or one district's (its departments', by 6-digit region) if named."""
    query = (
        sa.select(
            TriggerDeadlineRow.department,
            TriggerDeadlineRow.trigger,
            TriggerDeadlineRow.due,
            TriggerDeadlineRow.certain,
            TriggerDeadlineRow.reason,
            TriggerDeadlineRow.met_by_version,
            UpdateTriggerRow.starts_on,
            CatalogVersionRow.created_at,
            DepartmentRow.name,
            DepartmentRow.region,
        )
        .join(UpdateTriggerRow, UpdateTriggerRow.id == TriggerDeadlineRow.trigger)
        .outerjoin(DepartmentRow, DepartmentRow.code == TriggerDeadlineRow.department)
        .outerjoin(CatalogVersionRow, CatalogVersionRow.number == TriggerDeadlineRow.met_by_version)
        .order_by(TriggerDeadlineRow.due, TriggerDeadlineRow.trigger, TriggerDeadlineRow.department)
    )
    if department is not None:
        query = query.where(
            sa.or_(TriggerDeadlineRow.department == department, DepartmentRow.id == department)
        )
    if district is not None:
        query = query.where(DepartmentRow.region == district)
    with store.connect() as conn:
        rows = conn.execute(query).all()
    cal: WorkdayCalendar | None = calendar
    out = []
    for row in rows:
        deadline = Deadline(row.due, row.certain, row.reason)
        if not deadline.certain:
            # The year's holidays may have been entered since the trigger was recorded.
            cal = cal or WorkdayCalendar()
            deadline = cal.add_workdays(row.starts_on, WORKING_DAYS)
        met = row.met_by_version is not None
        state: State = "met" if met else ("overdue" if today > deadline.due else "open")
        out.append(
            DeadlineStatus(
                department=row.department,
                trigger=row.trigger,
                due=deadline.due,
                certain=deadline.certain,
                reason=deadline.reason,
                state=state,
                met_by_version=row.met_by_version,
                met_on=utc(row.created_at).date() if met else None,
                department_name=row.name,
                region=row.region,
            )
        )
    out.sort(key=lambda s: (s.due, s.trigger, s.department))
    return out
