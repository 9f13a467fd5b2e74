"""Conditional sharing (articles 16-17): requests, answers in 10 working days, grants, escalation.

A consumer department applies through the platform for a 有条件共享 resource (all of it or named
info items), stating a purpose the catalog allows, the duty it serves and how long it needs the
data. The provider answers within 10 working days (the 10th working day after the day of
submission, China time, by ``govbus.vocabulary.workdays``): an approval is a grant (scope, purpose,
expiry) that the reconciler turns into READ ACLs; a denial must state a real reason.

What stays unresolved is settled in steps (article 17): negotiation (协商) between the two
departments, then coordination (协调) by the competent department (the platform operator,
市大数据管理局, configurable), then the steering group (领导小组) when a provincial department
is involved. A request for a 不予共享 resource opens a negotiation at once.

Every state change writes a ``share_event`` row and an outbox row for topic ``govbus.share``
(keyed by request id) in the same transaction, with who and when. ``sweep`` records requests
left unanswered past their deadline (an escalation event and an article 26(3) violation, once)
and expired grants. Pure database and catalog: no Kafka here.

Actors are department ids (their principals on the bus); the operator is the coordinator.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args

import sqlalchemy as sa

from govbus.catalog.model import OutboxRow
from govbus.catalog.store import CatalogStore
from govbus.share.model import (
    ShareEventRow,
    ShareGrantRow,
    ShareRequestRow,
    ShareStepRow,
    ShareViolationRow,
)
from govbus.share.reasons import reason_problem
from govbus.vocabulary.clock import china_day, end_of_china_day, utc
from govbus.vocabulary.errors import UserError
from govbus.vocabulary.grants import Grant
from govbus.vocabulary.spec import CatalogSpec, Department, Purpose, Resource
from govbus.vocabulary.workdays import Deadline, WorkdayCalendar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "ANSWER_WORKDAYS",
    "DEFAULT_COORDINATOR",
    "STEERING_GROUP",
    "ShareError",
    "ShareEvent",
    "ShareGrant",
    "ShareRequest",
    "ShareRequests",
    "ShareStep",
    "SweepResult",
    "Violation",
]

ANSWER_WORKDAYS = 10  # article 17: 提供部门应在10个工作日内予以答复
DEFAULT_COORDINATOR = "cz-dsjj"  # 常州市大数据管理局 in the sample catalog
STEERING_GROUP = "领导小组 (常州市大数据发展领导小组)"
PLATFORM_ACTOR = "govbus"  # the platform itself (sweeps, automatic steps)
OVERDUE_VIOLATION = "unanswered-request"  # article 26(3): 无故不受理政务信息资源共享申请

State = Literal["pending", "approved", "denied", "not-shared", "agreed", "revoked", "expired"]
STATES: tuple[str, ...] = get_args(State)
Level = Literal["negotiation", "coordination", "steering"]
StepState = Literal["open", "settled", "failed"]
_ANSWERABLE = ("pending", "agreed")
_REFUSED = ("denied", "not-shared")
_LEVEL_NAMES = {"negotiation": "协商", "coordination": "协调", "steering": "领导小组协调"}
_View = TypeVar("_View", bound="DataclassInstance")  # a read-side dataclass of one table row


class ShareError(UserError):
    """A share-request operation is refused; the message names the request and the rule."""


@dataclass(frozen=True)
class ShareStep:
    id: int
    request: int
    level: str
    owner: str
    owners: tuple[str, ...]  # department codes
    state: str
    opened_at: dt.datetime
    opened_by: str
    closed_at: dt.datetime | None
    closed_by: str | None
    outcome: str | None


@dataclass(frozen=True)
class ShareRequest:
    id: int
    department: str  # the consumer's 统一社会信用代码
    resource: str
    provider: str
    items: tuple[str, ...]  # empty: the whole resource
    purpose: str
    duty: str
    valid_until: dt.date
    state: str
    submitted_at: dt.datetime
    submitted_by: str
    due: dt.date  # China day by which the provider answers
    due_certain: bool
    due_reason: str | None
    answered_at: dt.datetime | None
    answered_by: str | None
    answer_workdays: int | None
    deny_reason: str | None
    overdue_at: dt.datetime | None
    step: ShareStep | None = None  # the latest negotiation/coordination step

    def overdue_on(self, today: dt.date) -> bool:
        """Unanswered after the last day to answer (``today``: a China day)."""
        return self.state == "pending" and today > self.due


@dataclass(frozen=True)
class ShareGrant:
    id: int
    request: int
    department: str
    resource: str
    items: tuple[str, ...]
    purpose: str
    granted_at: dt.datetime
    granted_by: str
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    revoked_by: str | None
    revoke_reason: str | None
    expired_at: dt.datetime | None

    def valid_at(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now

    def as_acl_grant(self) -> Grant:
        return Grant(
            self.department,
            self.resource,
            self.expires_at,
            items=self.items,
            purpose=self.purpose,
            grant_id=self.id,
        )


@dataclass(frozen=True)
class ShareEvent:
    id: int
    request: int
    grant: int | None
    kind: str
    actor: str
    at: dt.datetime
    detail: dict[str, Any]


@dataclass(frozen=True)
class Violation:
    id: int
    department: str
    request: int
    kind: str
    at: dt.datetime
    detail: dict[str, Any]


@dataclass(frozen=True)
class SweepResult:
    overdue: tuple[int, ...]  # request ids newly found overdue
    expired: tuple[int, ...]  # grant ids newly recorded as expired


class ShareRequests:
    """The share-request service over a migrated ``CatalogStore``."""

    def __init__(
        self,
        store: CatalogStore,
        calendar: WorkdayCalendar | None = None,
        *,
        coordinator: str = DEFAULT_COORDINATOR,
    ) -> None:
        """``coordinator``: id of the department that coordinates (the platform operator)."""
        self.store = store
        self._calendar = calendar
        self.coordinator = coordinator

    @property
    def calendar(self) -> WorkdayCalendar:
        if self._calendar is None:
            self._calendar = WorkdayCalendar()
        return self._calendar

    # --- applying ---------------------------------------------------------------------------

    def submit(
        self,
        department: str,
        resource_code: str,
        purpose: str,
        duty: str,
        valid_until: dt.date,
        items: Sequence[str] = (),
        *,
        actor: str | None = None,
        now: dt.datetime | None = None,
    ) -> ShareRequest:
        """Apply for a resource as ``department`` (id or code).

        A 不予共享 resource is not refused with an exception: the request is recorded in state
        ``not-shared`` with a negotiation step opened, which the caller should report.
        """
        at = utc(now)
        spec = self.store.current()
        dept = _department(spec, department)
        if actor is not None and actor != dept.id:
            raise ShareError(
                f"{actor!r} cannot apply for {dept.name} ({dept.id}): a department applies for "
                "itself"
            )
        resource = spec.resource(resource_code)
        if resource is None:
            raise ShareError(
                f"resource {resource_code} is not in the catalog; find its code with "
                "`govbus catalog search`"
            )
        what = f"resource {resource.code} {resource.name}"
        if resource.provider == dept.code:
            raise ShareError(f"{what}: {dept.name} is its provider and reads it without a request")
        if resource.share_type == "unconditional":
            raise ShareError(f"{what}: no request needed: read it directly (无条件共享)")
        allowed = resource.purposes if resource.share_type == "conditional" else get_args(Purpose)
        if purpose not in allowed:
            listed = ", ".join(allowed) if allowed else "none (the catalog lists no purpose)"
            raise ShareError(
                f"{what}: purpose {purpose!r} is not one the catalog allows for it; allowed: "
                f"{listed}"
            )
        if not duty.strip():
            raise ShareError(
                f"{what}: state the duty (履行职责) the data is needed for (article 17)"
            )
        items = tuple(dict.fromkeys(items))
        unknown = [code for code in items if resource.item(code) is None]
        if unknown:
            known = ", ".join(i.code for i in resource.items)
            raise ShareError(
                f"{what} has no info item(s) {', '.join(unknown)}; its items are: {known}"
            )
        today = china_day(at)
        if valid_until <= today:
            raise ShareError(
                f"{what}: the validity needed ({valid_until}) must end after today ({today})"
            )
        deadline = self.calendar.add_workdays(today, ANSWER_WORKDAYS)
        not_shared = resource.share_type == "none"
        with self.store.connect() as conn, conn.begin():
            pending = conn.execute(
                sa.select(ShareRequestRow.id).where(
                    ShareRequestRow.department == dept.code,
                    ShareRequestRow.resource == resource.code,
                    ShareRequestRow.state.in_(_ANSWERABLE),
                )
            ).first()
            if pending is not None:
                raise ShareError(
                    f"{what}: {dept.name} already has request {pending.id} waiting for an "
                    f"answer; see `govbus requests --show {pending.id}`"
                )
            request_id = _insert(
                conn,
                ShareRequestRow,
                department=dept.code,
                resource=resource.code,
                provider=resource.provider,
                items=list(items),
                purpose=purpose,
                duty=duty.strip(),
                valid_until=valid_until,
                state="not-shared" if not_shared else "pending",
                submitted_at=at,
                submitted_by=dept.id,
                due=deadline.due,
                due_certain=deadline.certain,
                due_reason=deadline.reason,
            )
            detail: dict[str, Any] = {
                "items": list(items),
                "purpose": purpose,
                "duty": duty.strip(),
                "valid_until": valid_until.isoformat(),
                "due": deadline.due.isoformat(),
                "due_certain": deadline.certain,
            }
            self._event(conn, request_id, "submitted", dept.id, at, detail)
            if not_shared:
                basis = resource.legal_basis or "not recorded in the catalog"
                self._event(conn, request_id, "not-shared", PLATFORM_ACTOR, at, {"basis": basis})
                provider = spec.department(resource.provider)
                self._open_step(conn, request_id, "negotiation", dept, provider, dept.id, at)
        return self.request(request_id)

    # --- the provider's answer --------------------------------------------------------------

    def approve(
        self,
        request_id: int,
        actor: str,
        expires_at: dt.datetime | dt.date | None = None,
        items: Sequence[str] | None = None,
        now: dt.datetime | None = None,
    ) -> ShareGrant:
        """Grant the request; ``expires_at`` defaults to the end of the validity asked for.

        A date means "until the end of that day" (China time). ``items`` may narrow the scope.
        """
        at = utc(now)
        with self._locked(request_id) as (conn, row, what, spec):
            if row.state not in _ANSWERABLE:
                raise ShareError(f"{what} is {row.state}, not pending: it cannot be approved")
            provider = self._provider_actor(spec, row, actor, "approve")
            resource = spec.resource(row.resource)
            if resource is None or resource.share_type != "conditional":
                shown = resource.share_type if resource else "no longer in the catalog"
                raise ShareError(
                    f"{what}: the resource is {shown}; only a conditionally shared (有条件共享) "
                    "resource is granted: change its share type in the catalog first"
                )
            limit = end_of_china_day(row.valid_until)
            if expires_at is None:
                expiry = limit
            elif isinstance(expires_at, dt.datetime):
                expiry = utc(expires_at)
            else:
                expiry = end_of_china_day(expires_at)
            if expiry <= at:
                raise ShareError(f"{what}: the grant's expiry {expiry:%Y-%m-%d %H:%M}Z has passed")
            if expiry > limit:
                raise ShareError(
                    f"{what}: the grant cannot outlast the validity requested (until "
                    f"{row.valid_until}); ask the consumer for a new request"
                )
            scope = self._grant_items(row, resource, items)
            # The conditional update makes concurrent answers safe on any database: only
            # the first one changes the state, the others find it answered.
            answered = conn.execute(
                sa.update(ShareRequestRow)
                .where(ShareRequestRow.id == row.id, ShareRequestRow.state == row.state)
                .values(
                    state="approved",
                    answered_at=at,
                    answered_by=provider.id,
                    answer_workdays=self._answer_workdays(row, at),
                )
            )
            if answered.rowcount != 1:
                raise ShareError(f"{what} was answered meanwhile by someone else")
            grant_id = _insert(
                conn,
                ShareGrantRow,
                request=row.id,
                department=row.department,
                resource=row.resource,
                items=list(scope),
                purpose=row.purpose,
                granted_at=at,
                granted_by=provider.id,
                expires_at=expiry,
            )
            detail = {"items": list(scope), "expires_at": expiry.isoformat()}
            self._event(conn, row.id, "approved", provider.id, at, detail, grant=grant_id)
        return self.grant(grant_id)

    def deny(
        self, request_id: int, actor: str, reason: str, now: dt.datetime | None = None
    ) -> ShareRequest:
        at = utc(now)
        with self._locked(request_id) as (conn, row, what, spec):
            if row.state not in _ANSWERABLE:
                raise ShareError(f"{what} is {row.state}, not pending: it cannot be denied")
            provider = self._provider_actor(spec, row, actor, "deny")
            problem = reason_problem(reason)
            if problem:
                raise ShareError(f"{what}: denial refused: {problem}")
            answered = conn.execute(
                sa.update(ShareRequestRow)
                .where(ShareRequestRow.id == row.id, ShareRequestRow.state == row.state)
                .values(
                    state="denied",
                    answered_at=at,
                    answered_by=provider.id,
                    answer_workdays=self._answer_workdays(row, at),
                    deny_reason=reason.strip(),
                )
            )
            if answered.rowcount != 1:
                raise ShareError(f"{what} was answered meanwhile by someone else")
            self._event(conn, row.id, "denied", provider.id, at, {"reason": reason.strip()})
        return self.request(request_id)

    def revoke(
        self, grant_id: int, actor: str, reason: str, now: dt.datetime | None = None
    ) -> ShareGrant:
        """End a grant before its expiry (the provider, or the operator)."""
        at = utc(now)
        spec = self.store.current()
        with self.store.connect() as conn, conn.begin():
            grant = conn.execute(
                sa.select(ShareGrantRow).where(ShareGrantRow.id == grant_id).with_for_update()
            ).first()
            if grant is None:
                raise ShareError(f"grant {grant_id} does not exist")
            what = f"grant {grant.id} (request {grant.request}, resource {grant.resource})"
            if grant.revoked_at is not None:
                raise ShareError(f"{what} was already revoked by {grant.revoked_by}")
            if utc(grant.expires_at) <= at:
                raise ShareError(f"{what} has already expired")
            request = self._lock_request(conn, grant.request)
            provider = spec.department(request.provider)
            allowed = {self.coordinator} | ({provider.id} if provider else set())
            if actor not in allowed:
                raise ShareError(
                    f"{what}: {actor!r} may not revoke it; only the provider "
                    f"({provider.id if provider else request.provider}) or the operator "
                    f"({self.coordinator}) may"
                )
            problem = reason_problem(reason)
            if problem:
                raise ShareError(f"{what}: revocation refused: {problem}")
            conn.execute(
                sa.update(ShareGrantRow)
                .where(ShareGrantRow.id == grant.id)
                .values(revoked_at=at, revoked_by=actor, revoke_reason=reason.strip())
            )
            conn.execute(
                sa.update(ShareRequestRow)
                .where(ShareRequestRow.id == grant.request)
                .values(state="revoked")
            )
            self._event(
                conn, grant.request, "revoked", actor, at, {"reason": reason.strip()}, grant.id
            )
        return self.grant(grant_id)

    # --- negotiation, coordination, steering group ------------------------------------------

    def negotiate(
        self,
        request_id: int | None = None,
        *,
        resource_code: str | None = None,
        department: str | None = None,
        actor: str,
        note: str = "",
        now: dt.datetime | None = None,
    ) -> ShareStep:
        """Open the negotiation (协商) of a denied or not-shared request.

        The request is named by id, or by ``resource_code`` and the consumer ``department``
        (its latest refused request for that resource).
        """
        at = utc(now)
        spec = self.store.current()
        if request_id is None:
            request_id = self._refused_request(spec, resource_code, department)
        with self.store.connect() as conn, conn.begin():
            row = self._lock_request(conn, request_id)
            what = _request_name(row)
            if row.state not in _REFUSED:
                raise ShareError(
                    f"{what} is {row.state}: negotiation is for a denied request or a not-shared "
                    "resource (article 17)"
                )
            step = _latest_step(conn, row.id)
            if step is not None:
                raise ShareError(
                    f"{what} is already at {step.level} (step {step.id}, {step.state}): "
                    + (
                        "settle it or escalate"
                        if step.state == "open"
                        else "escalate to the next level"
                    )
                )
            consumer, provider = spec.department(row.department), spec.department(row.provider)
            self._check_party(row, actor, consumer, provider, "open a negotiation")
            assert consumer is not None  # _check_party found the actor among the parties
            step_id = self._open_step(conn, row.id, "negotiation", consumer, provider, actor, at)
            if note.strip():
                self._event(conn, row.id, "note", actor, at, {"note": note.strip()})
        return self._step(step_id)

    def escalate(
        self, request_id: int, actor: str, note: str, now: dt.datetime | None = None
    ) -> ShareStep:
        """Close the current step as failed (``note`` says why) and open the next level."""
        at = utc(now)
        with self._locked(request_id) as (conn, row, what, spec):
            if not note.strip():
                raise ShareError(f"{what}: say why the current step failed (--note)")
            step = _latest_step(conn, row.id)
            if step is None:
                raise ShareError(
                    f"{what} has no negotiation yet: start one with `govbus negotiate {row.id}`"
                )
            if step.state == "settled":
                raise ShareError(
                    f"{what}: {step.level} step {step.id} was settled ({step.outcome}); nothing "
                    "to escalate"
                )
            consumer, provider = spec.department(row.department), spec.department(row.provider)
            coordinator = spec.department_by_id(self.coordinator)
            self._check_party(row, actor, consumer, provider, "escalate")
            if step.level == "negotiation":
                if coordinator is None:
                    raise ShareError(
                        f"{what}: the coordinating department {self.coordinator!r} is not in "
                        "the catalog; register it or set share_coordinator"
                    )
                level: Level = "coordination"
                owner = f"{coordinator.name} ({coordinator.id})"
                owners = [coordinator.code]
            elif step.level == "coordination":
                provincial = [d.name for d in (consumer, provider) if d and d.level == "province"]
                if not provincial:
                    raise ShareError(
                        f"{what}: cannot escalate beyond coordination: the steering group "
                        "(领导小组) coordinates only cases involving a provincial department "
                        "(article 17), and neither department is provincial; the coordination's "
                        "outcome stands"
                    )
                level = "steering"
                owner = STEERING_GROUP
                owners = []
            else:
                raise ShareError(f"{what}: the steering group (领导小组) is the last level")
            if step.state == "open":
                self._close_step(conn, row.id, step.id, "failed", actor, note.strip(), at)
            step_id = _insert(
                conn,
                ShareStepRow,
                request=row.id,
                level=level,
                owner=owner,
                owners=owners,
                state="open",
                opened_at=at,
                opened_by=actor,
            )
            detail = {"step": step_id, "level": level, "owner": owner, "note": note.strip()}
            self._event(conn, row.id, "escalated", actor, at, detail)
        return self._step(step_id)

    def settle(
        self,
        request_id: int,
        actor: str,
        outcome: str,
        agreed: bool,
        now: dt.datetime | None = None,
    ) -> ShareStep:
        """Close the open step: settled (``agreed``) or failed (then it may be escalated).

        An agreement returns the request to its provider as ``agreed``, to approve.
        """
        at = utc(now)
        with self._locked(request_id) as (conn, row, what, spec):
            step = _latest_step(conn, row.id)
            if step is None or step.state != "open":
                raise ShareError(f"{what} has no open negotiation or coordination step")
            if not outcome.strip():
                raise ShareError(f"{what}: record the outcome of the {step.level}")
            owner_ids = {d.id for code in step.owners if (d := spec.department(code))}
            if actor not in owner_ids | {self.coordinator}:
                raise ShareError(
                    f"{what}: {actor!r} does not lead the {step.level} (step {step.id}, led by "
                    f"{step.owner}) and cannot settle it"
                )
            state: StepState = "settled" if agreed else "failed"
            self._close_step(conn, row.id, step.id, state, actor, outcome.strip(), at)
            if agreed:
                conn.execute(
                    sa.update(ShareRequestRow)
                    .where(ShareRequestRow.id == row.id)
                    .values(state="agreed")
                )
        return self._step(step.id)

    # --- time passing -----------------------------------------------------------------------

    def sweep(self, now: dt.datetime | None = None) -> SweepResult:
        """Record overdue requests (once each) and expired grants. Idempotent."""
        at = utc(now)
        today = china_day(at)
        overdue: list[int] = []
        expired: list[int] = []
        with self.store.connect() as conn, conn.begin():
            pending = conn.execute(
                sa.select(ShareRequestRow).where(
                    ShareRequestRow.state == "pending", ShareRequestRow.overdue_at.is_(None)
                )
            ).all()
            for row in pending:
                deadline = self._deadline(row)
                if today <= deadline.due:
                    continue
                marked = conn.execute(
                    sa.update(ShareRequestRow)
                    .where(ShareRequestRow.id == row.id, ShareRequestRow.overdue_at.is_(None))
                    .values(overdue_at=at)
                )
                if marked.rowcount != 1:  # another sweep got there first
                    continue
                detail = {
                    "due": deadline.due.isoformat(),
                    "due_certain": deadline.certain,
                    "article": "26(3)",
                    "escalated_to": self.coordinator,
                }
                _insert(
                    conn,
                    ShareViolationRow,
                    department=row.provider,
                    request=row.id,
                    kind=OVERDUE_VIOLATION,
                    at=at,
                    detail=detail,
                )
                self._event(conn, row.id, "overdue", PLATFORM_ACTOR, at, detail)
                overdue.append(row.id)
            ended = conn.execute(
                sa.select(ShareGrantRow).where(
                    ShareGrantRow.revoked_at.is_(None),
                    ShareGrantRow.expired_at.is_(None),
                    ShareGrantRow.expires_at <= at,
                )
            ).all()
            for grant in ended:
                marked = conn.execute(
                    sa.update(ShareGrantRow)
                    .where(ShareGrantRow.id == grant.id, ShareGrantRow.expired_at.is_(None))
                    .values(expired_at=at)
                )
                if marked.rowcount != 1:
                    continue
                conn.execute(
                    sa.update(ShareRequestRow)
                    .where(ShareRequestRow.id == grant.request)
                    .values(state="expired")
                )
                detail = {"expires_at": utc(grant.expires_at).isoformat()}
                self._event(conn, grant.request, "expired", PLATFORM_ACTOR, at, detail, grant.id)
                expired.append(grant.id)
        return SweepResult(tuple(overdue), tuple(expired))

    # --- reading ----------------------------------------------------------------------------

    def request(self, request_id: int) -> ShareRequest:
        with self.store.connect() as conn:
            row = conn.execute(
                sa.select(ShareRequestRow).where(ShareRequestRow.id == request_id)
            ).first()
            if row is None:
                raise ShareError(f"share request {request_id} does not exist")
            step = _latest_step(conn, request_id)
        return self._view(row, step)

    def grant(self, grant_id: int) -> ShareGrant:
        with self.store.connect() as conn:
            row = conn.execute(sa.select(ShareGrantRow).where(ShareGrantRow.id == grant_id)).first()
        if row is None:
            raise ShareError(f"grant {grant_id} does not exist")
        return _grant(row)

    def grant_of(self, request_id: int) -> ShareGrant | None:
        with self.store.connect() as conn:
            row = conn.execute(
                sa.select(ShareGrantRow).where(ShareGrantRow.request == request_id)
            ).first()
        return _grant(row) if row is not None else None

    def list_requests(
        self,
        *,
        department: str | None = None,
        provider: str | None = None,
        state: str | None = None,
        due_before: dt.date | None = None,
        overdue: bool | None = None,
        now: dt.datetime | None = None,
    ) -> list[ShareRequest]:
        """Requests by id; departments by id or code; ``due_before``: due strictly before."""
        if state is not None and state not in STATES:
            raise ShareError(f"unknown state {state!r}; states are: {', '.join(STATES)}")
        spec = self.store.current()
        query = sa.select(ShareRequestRow).order_by(ShareRequestRow.id)
        if department is not None:
            query = query.where(ShareRequestRow.department == _department(spec, department).code)
        if provider is not None:
            query = query.where(ShareRequestRow.provider == _department(spec, provider).code)
        if state is not None:
            query = query.where(ShareRequestRow.state == state)
        with self.store.connect() as conn:
            rows = conn.execute(query).all()
            steps = _latest_steps(conn, [r.id for r in rows])
        today = china_day(utc(now))
        out = []
        for row in rows:
            view = self._view(row, steps.get(row.id))
            if due_before is not None and not view.due < due_before:
                continue
            if overdue is not None and view.overdue_on(today) != overdue:
                continue
            out.append(view)
        return out

    def deadlines(
        self, within: int = 3, now: dt.datetime | None = None
    ) -> list[tuple[ShareRequest, int]]:
        """Pending requests due within ``within`` working days or past due, soonest first,
        each with its working days left (negative: working days past due)."""
        today = china_day(utc(now))
        out = []
        for view in self.list_requests(state="pending", now=now):
            if view.due >= today:
                left = self.calendar.workdays_between(today, view.due).days
            else:
                left = -self.calendar.workdays_between(view.due, today).days
            if left <= within:
                out.append((view, left))
        out.sort(key=lambda pair: (pair[0].due, pair[0].id))
        return out

    def steps(self, request_id: int) -> list[ShareStep]:
        return [_step(r) for r in self._rows_of(ShareStepRow, request_id)]

    def history(self, request_id: int) -> list[ShareEvent]:
        """Every event of the request (and its grant), in order."""
        self.request(request_id)  # says so if it does not exist
        return [_event_view(r) for r in self._rows_of(ShareEventRow, request_id)]

    def grant_history(self, grant_id: int) -> list[ShareEvent]:
        """The grant's full history: its request's submission and answer, then the grant's."""
        return self.history(self.grant(grant_id).request)

    def violations(self, department: str | None = None) -> list[Violation]:
        query = sa.select(ShareViolationRow).order_by(ShareViolationRow.id)
        if department is not None:
            code = _department(self.store.current(), department).code
            query = query.where(ShareViolationRow.department == code)
        with self.store.connect() as conn:
            rows = conn.execute(query).all()
        return [_from_row(Violation, r) for r in rows]

    def grants(self, now: dt.datetime | None = None, department: str | None = None) -> list[Grant]:
        """The grants valid at ``now`` (not revoked, not expired), as the reconciler takes them.

        ``department``: only that department's (its code).
        """
        return [g.as_acl_grant() for g in self.valid_grants(now, department)]

    def valid_grants(
        self, now: dt.datetime | None = None, department: str | None = None
    ) -> list[ShareGrant]:
        """``grants`` in full: with the granted items and the purpose (the lookup filters by
        them)."""
        at = utc(now)
        query = sa.select(ShareGrantRow).where(
            ShareGrantRow.revoked_at.is_(None), ShareGrantRow.expires_at > at
        )
        if department is not None:
            query = query.where(ShareGrantRow.department == department)
        with self.store.connect() as conn:
            rows = conn.execute(query.order_by(ShareGrantRow.id)).all()
        return [_grant(r) for r in rows]

    # --- helpers ----------------------------------------------------------------------------

    def _rows_of(
        self, table: type[ShareStepRow] | type[ShareEventRow], request_id: int
    ) -> list[Any]:
        """A request's steps or events, in the order they happened."""
        with self.store.connect() as conn:
            query = sa.select(table).where(table.request == request_id).order_by(table.id)
            return list(conn.execute(query).all())

    def _deadline(self, row: Any) -> Deadline:
        if row.due_certain:
            return Deadline(row.due, True, None)
        # The year's notice may have been entered since the request was submitted.
        return self.calendar.add_workdays(china_day(row.submitted_at), ANSWER_WORKDAYS)

    def _view(self, row: Any, step: ShareStep | None) -> ShareRequest:
        deadline = self._deadline(row)
        return _from_row(
            ShareRequest,
            row,
            due=deadline.due,
            due_certain=deadline.certain,
            due_reason=deadline.reason,
            step=step,
        )

    def _answer_workdays(self, row: Any, at: dt.datetime) -> int:
        return self.calendar.workdays_between(china_day(row.submitted_at), china_day(at)).days

    @contextlib.contextmanager
    def _locked(
        self, request_id: int
    ) -> Iterator[tuple[sa.Connection, sa.Row[Any], str, CatalogSpec]]:
        """One transaction on the request: its row locked (FOR UPDATE where the database has
        it), its name for messages, and the current catalog the answer is checked against."""
        spec = self.store.current()
        with self.store.connect() as conn, conn.begin():
            row = self._lock_request(conn, request_id)
            yield conn, row, _request_name(row), spec

    def _lock_request(self, conn: sa.Connection, request_id: int) -> Any:
        # FOR UPDATE (PostgreSQL): concurrent answers to one request queue up here.
        row = conn.execute(
            sa.select(ShareRequestRow).where(ShareRequestRow.id == request_id).with_for_update()
        ).first()
        if row is None:
            raise ShareError(f"share request {request_id} does not exist")
        return row

    def _provider_actor(self, spec: CatalogSpec, row: Any, actor: str, verb: str) -> Department:
        provider = spec.department(row.provider)
        if provider is None:
            raise ShareError(
                f"{_request_name(row)}: its provider {row.provider} is no longer in the catalog"
            )
        if actor != provider.id:
            raise ShareError(
                f"{_request_name(row)}: only the provider {provider.name} ({provider.id}) may "
                f"{verb} it, not {actor!r}"
            )
        return provider

    def _check_party(
        self,
        row: Any,
        actor: str,
        consumer: Department | None,
        provider: Department | None,
        verb: str,
    ) -> None:
        parties = {d.id for d in (consumer, provider) if d} | {self.coordinator}
        if actor not in parties:
            raise ShareError(
                f"{_request_name(row)}: {actor!r} may not {verb}; the consumer, the provider or "
                f"the operator ({self.coordinator}) may"
            )
        if consumer is None:
            raise ShareError(f"{_request_name(row)}: its department left the catalog")

    def _refused_request(
        self, spec: CatalogSpec, resource_code: str | None, department: str | None
    ) -> int:
        if not resource_code or not department:
            raise ShareError("name the request: its id, or the resource and the department")
        code = _department(spec, department).code
        with self.store.connect() as conn:
            found = conn.execute(
                sa.select(ShareRequestRow.id)
                .where(
                    ShareRequestRow.department == code,
                    ShareRequestRow.resource == resource_code,
                    ShareRequestRow.state.in_(_REFUSED),
                )
                .order_by(ShareRequestRow.id.desc())
                .limit(1)
            ).scalar_one_or_none()
        if found is None:
            raise ShareError(
                f"{department} has no denied or not-shared request for {resource_code}; apply "
                f"first with `govbus request {resource_code} --department {department} ...`"
            )
        return int(found)

    def _grant_items(
        self, row: Any, resource: Resource, items: Sequence[str] | None
    ) -> tuple[str, ...]:
        requested = tuple(row.items)
        if items is None:
            return requested
        scope = tuple(dict.fromkeys(items))
        unknown = [code for code in scope if resource.item(code) is None]
        if unknown:
            raise ShareError(
                f"{_request_name(row)}: the resource has no info item(s) {', '.join(unknown)}"
            )
        beyond = [code for code in scope if requested and code not in requested]
        if beyond:
            raise ShareError(
                f"{_request_name(row)}: item(s) {', '.join(beyond)} were not requested "
                f"(requested: {', '.join(requested)})"
            )
        return scope

    def _open_step(
        self,
        conn: sa.Connection,
        request_id: int,
        level: Level,
        consumer: Department,
        provider: Department | None,
        actor: str,
        at: dt.datetime,
    ) -> int:
        parties = [d for d in (consumer, provider) if d]
        owner = " / ".join(f"{d.name} ({d.id})" for d in parties)
        step_id = _insert(
            conn,
            ShareStepRow,
            request=request_id,
            level=level,
            owner=owner,
            owners=[d.code for d in parties],
            state="open",
            opened_at=at,
            opened_by=actor,
        )
        detail = {"step": step_id, "level": level, "owner": owner}
        self._event(conn, request_id, "negotiation-opened", actor, at, detail)
        return step_id

    def _close_step(
        self,
        conn: sa.Connection,
        request_id: int,
        step_id: int,
        state: StepState,
        actor: str,
        outcome: str,
        at: dt.datetime,
    ) -> None:
        conn.execute(
            sa.update(ShareStepRow)
            .where(ShareStepRow.id == step_id)
            .values(state=state, closed_at=at, closed_by=actor, outcome=outcome)
        )
        kind = "step-settled" if state == "settled" else "step-failed"
        self._event(conn, request_id, kind, actor, at, {"step": step_id, "outcome": outcome})

    def _step(self, step_id: int) -> ShareStep:
        with self.store.connect() as conn:
            row = conn.execute(sa.select(ShareStepRow).where(ShareStepRow.id == step_id)).one()
        return _step(row)

    def _event(
        self,
        conn: sa.Connection,
        request_id: int,
        kind: str,
        actor: str,
        at: dt.datetime,
        detail: dict[str, Any],
        grant: int | None = None,
    ) -> None:
        """The event row and its outbox row, in the caller's transaction."""
        event_id = _insert(
            conn,
            ShareEventRow,
            request=request_id,
            grant=grant,
            kind=kind,
            actor=actor,
            at=at,
            detail=detail,
        )
        request = conn.execute(
            sa.select(
                ShareRequestRow.department,
                ShareRequestRow.resource,
                ShareRequestRow.provider,
                ShareRequestRow.state,
            ).where(ShareRequestRow.id == request_id)
        ).one()
        value = {
            "event": event_id,
            "kind": kind,
            "request": request_id,
            "grant": grant,
            "department": request.department,
            "resource": request.resource,
            "provider": request.provider,
            "state": request.state,
            "actor": actor,
            "at": at.isoformat(),
            "detail": detail,
        }
        conn.execute(
            sa.insert(OutboxRow),
            {
                "created_at": at,
                "topic": self.store.naming.share_topic,
                "key": str(request_id),
                "value": value,
            },
        )


# --- module helpers ---------------------------------------------------------------------------


def _department(spec: CatalogSpec, ref: str) -> Department:
    dept = spec.department_by_id(ref) or spec.department(ref)
    if dept is None:
        raise ShareError(
            f"department {ref!r} is not registered in the catalog (neither an id nor a "
            "统一社会信用代码 of it); only a registered department can apply or answer"
        )
    return dept


def _request_name(row: Any) -> str:
    return f"share request {row.id} (resource {row.resource})"


def _insert(conn: sa.Connection, table: Any, **values: Any) -> int:
    key = conn.execute(sa.insert(table), values).inserted_primary_key
    assert key is not None  # a single-row insert always reports its key
    return int(key[0])


def _latest_step(conn: sa.Connection, request_id: int) -> ShareStep | None:
    return _latest_steps(conn, [request_id]).get(request_id)


def _latest_steps(conn: sa.Connection, request_ids: Iterable[int]) -> dict[int, ShareStep]:
    ids = list(request_ids)
    if not ids:
        return {}
    rows = conn.execute(
        sa.select(ShareStepRow).where(ShareStepRow.request.in_(ids)).order_by(ShareStepRow.id)
    ).all()
    return {row.request: _step(row) for row in rows}  # the last (newest) per request stays


def _from_row(view: type[_View], row: Any, **computed: Any) -> _View:
    """The ``view`` dataclass of a table row: each field from the column of its name (times in
    UTC, JSON lists as tuples), but those given in ``computed``."""
    values = {
        field.name: _column(getattr(row, field.name))
        for field in fields(view)
        if field.name not in computed
    }
    return view(**values, **computed)


def _column(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return utc(value)
    if isinstance(value, list):
        return tuple(value)
    return value


def _step(row: Any) -> ShareStep:
    return _from_row(ShareStep, row)


def _grant(row: Any) -> ShareGrant:
    return _from_row(ShareGrant, row)


def _event_view(row: Any) -> ShareEvent:
    return _from_row(ShareEvent, row)


def level_name(level: str) -> str:
    """``negotiation (协商)`` etc., for output."""
    return f"{level} ({_LEVEL_NAMES.get(level, level)})"
