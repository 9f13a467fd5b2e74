"""The evaluation's inputs, read from the system's own records for one year (China time).

Each figure of ``evaluation.DepartmentYear`` comes from one place in the platform database:
the catalog as it stood at the cut-off (``CatalogStore.as_of``), the article 9 deadlines and the
catalog versions that met them, the share requests and grants, and the violation ledger with
its events. Nothing is read from the broker: the ledger already holds what the stream apps
reported (``govbus violations detect``), and a report must be reproducible from one database.

The cut-off ``as_of`` is the end of the year, or an earlier day for a year still running
(default: today); only what happened before it counts, so the same database and the same
cut-off always give the same figures.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa

from govbus.catalog.deadlines import deadlines
from govbus.catalog.store import CatalogStore, VersionNotFoundError
from govbus.share.model import ShareGrantRow, ShareRequestRow
from govbus.supervise.evaluation import DepartmentYear
from govbus.supervise.ledger import Ledger, Violation
from govbus.vocabulary.clock import CHINA_TZ, china_day, utc
from govbus.vocabulary.errors import UserError
from govbus.vocabulary.spec import CatalogSpec, Resource

__all__ = ["Period", "complete", "department_years", "period"]


@dataclass(frozen=True)
class Period:
    year: int
    start: dt.datetime  # UTC, 1 January 00:00 China time
    cutoff: dt.datetime  # UTC, exclusive: 1 January next year, or the day after ``as_of``

    @property
    def last_day(self) -> dt.date:
        return china_day(self.cutoff - dt.timedelta(microseconds=1))


def period(year: int, as_of: dt.date | None = None) -> Period:
    if not 2000 <= year <= 2100:
        raise UserError(f"--year {year}: give a calendar year like 2026")
    start = dt.datetime(year, 1, 1, tzinfo=CHINA_TZ)
    end = dt.datetime(year + 1, 1, 1, tzinfo=CHINA_TZ)
    if as_of is not None:
        if as_of.year != year:
            raise UserError(f"--as-of {as_of.isoformat()} is not in {year}")
        end = min(end, dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), CHINA_TZ))
    return Period(year, utc(start), utc(end))


def complete(r: Resource) -> bool:
    """Complete metadata (docs/evaluation.md): an abstract, a share method, an item besides the
    key, and for a conditional resource the purposes a consumer may state."""
    keys = set(r.key.items)
    return (
        bool(r.abstract.strip())
        and bool(r.share_methods)
        and any(i.code not in keys for i in r.items)
        and (r.share_type != "conditional" or bool(r.purposes))
    )


def _catalog(store: CatalogStore, p: Period) -> CatalogSpec:
    try:
        return store.as_of(p.cutoff - dt.timedelta(microseconds=1))
    except VersionNotFoundError:
        return CatalogSpec()


def department_years(store: CatalogStore, ledger: Ledger, p: Period) -> list[DepartmentYear]:
    """Every department of the catalog at the cut-off, with its figures for the period."""
    spec = _catalog(store, p)
    created = {v.number: v.created_at for v in store.history()}
    deadline_due: dict[str, int] = defaultdict(int)
    deadline_met: dict[str, int] = defaultdict(int)
    for s in deadlines(store, today=p.last_day):
        if not china_day(p.start) <= s.due <= p.last_day:
            continue
        deadline_due[s.department] += 1
        met_at = created.get(s.met_by_version) if s.met_by_version else None
        if met_at is not None and met_at < p.cutoff and china_day(met_at) <= s.due:
            deadline_met[s.department] += 1

    received: dict[str, int] = defaultdict(int)
    in_time: dict[str, int] = defaultdict(int)
    answer_days: dict[str, list[int]] = defaultdict(list)
    made: dict[str, int] = defaultdict(int)
    granted: dict[str, int] = defaultdict(int)
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(ShareRequestRow, ShareGrantRow.id.label("grant_id"))
            .outerjoin(ShareGrantRow, ShareGrantRow.request == ShareRequestRow.id)
            .order_by(ShareRequestRow.id)
        ).all()
    for r in rows:
        answered = utc(r.answered_at) if r.answered_at is not None else None
        if answered is not None and answered >= p.cutoff:
            answered = None  # after the cut-off: not yet, as of then
        if china_day(p.start) <= r.due <= p.last_day:
            received[r.provider] += 1
            if answered is not None and china_day(answered) <= r.due:
                in_time[r.provider] += 1
        if answered is not None and answered >= p.start and r.answer_workdays is not None:
            answer_days[r.provider].append(int(r.answer_workdays))
        submitted = utc(r.submitted_at)
        if p.start <= submitted < p.cutoff:
            made[r.department] += 1
            if r.grant_id is not None and answered is not None:
                granted[r.department] += 1

    violations = ledger.violations(occurred_from=p.start, occurred_until=p.cutoff)
    by_dept: dict[str, list[Violation]] = defaultdict(list)
    for v in violations:
        by_dept[v.department].append(v)
    notices, rectified = _notices(ledger, p)

    out = []
    for d in spec.departments:
        mine = [r for r in spec.resources if r.provider == d.code]
        vs = by_dept.get(d.code, [])
        late = {
            str(v.evidence.get("resource_code", v.subject))
            for v in vs
            if v.kind == "late-provision"
        }
        out.append(
            DepartmentYear(
                department_id=d.id,
                department_code=d.code,
                name=d.name,
                resources=len(mine),
                complete_resources=sum(complete(r) for r in mine),
                deadlines_due=deadline_due[d.code],
                deadlines_met=deadline_met[d.code],
                late_resources=len(late),
                requests_received=received[d.code],
                requests_answered_in_time=in_time[d.code],
                answer_workdays=tuple(answer_days[d.code]),
                inconsistencies=sum(v.kind == "inconsistent-data" for v in vs),
                requests_made=made[d.code],
                grants_received=granted[d.code],
                violations=len(vs),
                notices=notices[d.code],
                rectified_in_time=rectified[d.code],
            )
        )
    return out


def _notices(ledger: Ledger, p: Period) -> tuple[dict[str, int], dict[str, int]]:
    """Per department: notices issued in the period, and of those the ones answered (respond)
    or closed on or before their deadline, before the cut-off."""
    events = ledger.events(until=p.cutoff)
    dept = {v.id: v.department for v in ledger.violations()}
    due: dict[int, dt.date] = {}
    notices: dict[str, int] = defaultdict(int)
    rectified: dict[str, int] = defaultdict(int)
    done: set[int] = set()
    for e in events:
        if e.action == "notify" and e.at >= p.start:
            due[e.violation] = dt.date.fromisoformat(e.detail["due"])
            notices[dept[e.violation]] += 1
        elif e.action in ("respond", "close") and e.violation in due and e.violation not in done:
            if china_day(e.at) <= due[e.violation]:
                rectified[dept[e.violation]] += 1
            done.add(e.violation)
    return notices, rectified
