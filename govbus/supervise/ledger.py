"""The violation ledger (article 26): one SQL ledger of every violation, and its rectification.

Every detector hands its findings to :meth:`Ledger.record`; the ledger keeps one violation per
episode (``govbus.supervise.rules``: kind, subject, episode), so detectors may run any number of
times and the same episode stays one violation. Each step — recorded, notify (通知整改, with a
deadline in working days), respond (the department says what it did), close (the operator
verified, or the detector saw the condition clear), escalate (a notice past its deadline goes
into the report to the city government, article 26) — is an event with actor and time, and
in the same transaction a row in the catalog's transactional outbox for the topic
``govbus.supervision`` (keyed ``violation:<id>``; the value carries the event and the whole
violation after it, so the compacted topic keeps each violation's newest state). The relay is
``govbus.catalog.outbox.OutboxRelay`` with that topic.

Who may act: the operator (``share_coordinator``, 市大数据管理局) notifies, closes and
escalates; only the department responsible responds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from govbus.catalog.model import OutboxRow
from govbus.catalog.store import CatalogStore
from govbus.supervise.model import SupervisionEventRow, SupervisionViolationRow
from govbus.supervise.rules import Action, Finding, check_transition, kind_of
from govbus.vocabulary.clock import china_day, utc
from govbus.vocabulary.errors import UserError
from govbus.vocabulary.naming import DEFAULT_OPERATOR
from govbus.vocabulary.spec import CatalogSpec
from govbus.vocabulary.workdays import WorkdayCalendar

__all__ = [
    "DETECTOR_ACTOR",
    "Ledger",
    "LedgerEvent",
    "RecordResult",
    "Violation",
    "ViolationNotFoundError",
]

DETECTOR_ACTOR = "govbus-supervise"  # the detectors, when they record or see a condition clear
MIN_REASON = 4  # characters: a reason, a response or a note says something


class ViolationNotFoundError(UserError, LookupError):
    """No violation has that id."""


@dataclass(frozen=True)
class Violation:
    id: int
    kind: str
    article: str
    subject: str
    episode: int
    department: str  # code
    summary: str
    evidence: dict[str, Any]
    source: str
    occurred_at: dt.datetime
    recorded_at: dt.datetime
    state: str
    due: dt.date | None
    due_certain: bool | None
    closed_at: dt.datetime | None

    def overdue_on(self, today: dt.date) -> bool:
        """A notice whose deadline passed without a response (escalation is due)."""
        return self.state == "notified" and self.due is not None and today > self.due

    def to_json(self) -> dict[str, Any]:
        def iso(v: Any) -> Any:
            return v.isoformat() if isinstance(v, dt.date | dt.datetime) else v

        return {k: iso(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class LedgerEvent:
    id: int
    violation: int
    action: str
    actor: str
    at: dt.datetime
    detail: dict[str, Any]


@dataclass(frozen=True)
class RecordResult:
    new: tuple[int, ...]  # violations recorded now
    closed: tuple[int, ...]  # violations the detector saw clear and closed
    known: int  # findings that were already in the ledger


def _violation(row: Any) -> Violation:
    return Violation(
        id=row.id,
        kind=row.kind,
        article=row.article,
        subject=row.subject,
        episode=row.episode,
        department=row.department,
        summary=row.summary,
        evidence=dict(row.evidence),
        source=row.source,
        occurred_at=utc(row.occurred_at),
        recorded_at=utc(row.recorded_at),
        state=row.state,
        due=row.due,
        due_certain=row.due_certain,
        closed_at=utc(row.closed_at) if row.closed_at is not None else None,
    )


class Ledger:
    """The ledger over a migrated ``CatalogStore`` (SQLite or PostgreSQL)."""

    def __init__(
        self,
        store: CatalogStore,
        operator: str = DEFAULT_OPERATOR,
        calendar: WorkdayCalendar | None = None,
    ) -> None:
        self.store = store
        self.operator = operator
        self.calendar = calendar or WorkdayCalendar()
        self.topic = store.naming.supervision_topic

    # --- recording ------------------------------------------------------------------------

    def record(
        self,
        findings: Iterable[Finding],
        cleared: Iterable[tuple[str, str]] = (),
        now: dt.datetime | None = None,
    ) -> RecordResult:
        """Record each finding unless its episode is in the ledger; close the open violations
        of ``cleared`` (kind, subject) pairs, which the detector saw clear. Idempotent."""
        at = utc(now)
        new: list[int] = []
        closed: list[int] = []
        known = 0
        with self.store.connect() as conn, conn.begin():
            for f in findings:
                latest = self._latest_episode(conn, f.kind, f.subject)
                if latest is not None and (latest.state != "closed" or not f.recurring):
                    known += 1
                    continue
                episode = 1 if latest is None else latest.episode + 1
                vid = self._insert(conn, f, episode, at)
                new.append(vid)
            for kind, subject in sorted(set(cleared)):
                latest = self._latest_episode(conn, kind, subject)
                if latest is None or latest.state == "closed":
                    continue
                self._step(
                    conn,
                    latest.id,
                    "close",
                    DETECTOR_ACTOR,
                    at,
                    {"reason": "the detector saw the condition clear", "verified": "detector"},
                    new_state="closed",
                )
                closed.append(latest.id)
        return RecordResult(tuple(new), tuple(closed), known)

    def record_other(
        self,
        department: str,
        reason: str,
        actor: str,
        spec: CatalogSpec,
        subject: str | None = None,
        now: dt.datetime | None = None,
    ) -> Violation:
        """26(7): the operator records another violation of the measures, with its reason."""
        self._require_operator(actor, "record a violation")
        code = self._department_code(spec, department)
        text = _text(reason, "reason", "what the department did against which article")
        at = utc(now)
        finding = Finding(
            "other",
            code,
            subject or f"operator:{at.strftime('%Y%m%dT%H%M%S.%f')}",
            at,
            text,
            {"recorded_by": actor},
            source="operator",
        )
        result = self.record([finding], now=at)
        if not result.new:
            raise UserError(f"a violation with subject {finding.subject!r} is already recorded")
        return self.get(result.new[0])

    # --- the workflow ---------------------------------------------------------------------

    def notify(
        self, vid: int, actor: str, workdays: int, note: str, now: dt.datetime | None = None
    ) -> Violation:
        """通知整改: the operator notifies the department and sets the deadline."""
        self._require_operator(actor, "issue a rectification notice")
        if not 1 <= workdays <= 60:
            raise UserError(f"--workdays must be 1..60 working days, got {workdays}")
        text = _text(note, "note", "what the department must rectify")
        at = utc(now)
        deadline = self.calendar.add_workdays(china_day(at), workdays)
        detail: dict[str, Any] = {
            "note": text,
            "workdays": workdays,
            "due": deadline.due.isoformat(),
            "due_certain": deadline.certain,
        }
        if deadline.reason:
            detail["due_reason"] = deadline.reason
        with self.store.connect() as conn, conn.begin():
            self._step(
                conn,
                vid,
                "notify",
                actor,
                at,
                detail,
                due=deadline.due,
                due_certain=deadline.certain,
            )
        return self.get(vid)

    def respond(
        self, vid: int, actor: str, text: str, spec: CatalogSpec, now: dt.datetime | None = None
    ) -> Violation:
        """The department responsible says what it did."""
        v = self.get(vid)
        dept = spec.department(v.department)
        own = dept.id if dept is not None else v.department
        if actor != own:
            raise UserError(
                f"violation {vid} is {own}'s: only that department responds (--actor {own})"
            )
        what = _text(text, "response", "what the department did to rectify it")
        with self.store.connect() as conn, conn.begin():
            self._step(conn, vid, "respond", actor, utc(now), {"response": what})
        return self.get(vid)

    def close(self, vid: int, actor: str, reason: str, now: dt.datetime | None = None) -> Violation:
        """The operator verified the rectification (or decides it needs none) and closes it."""
        self._require_operator(actor, "close a violation")
        why = _text(reason, "reason", "what was verified")
        with self.store.connect() as conn, conn.begin():
            self._step(conn, vid, "close", actor, utc(now), {"reason": why, "verified": actor})
        return self.get(vid)

    def escalate(self, vid: int, actor: str, now: dt.datetime | None = None) -> Violation:
        """A notice past its deadline without a response goes into the report to the city."""
        self._require_operator(actor, "escalate")
        at = utc(now)
        with self.store.connect() as conn, conn.begin():
            self._step(
                conn,
                vid,
                "escalate",
                actor,
                at,
                {"to": "市人民政府 (the city government), in the yearly report"},
            )
        return self.get(vid)

    def escalate_overdue(self, actor: str, now: dt.datetime | None = None) -> list[Violation]:
        """Escalate every notice past its deadline (the sweep an operator runs daily)."""
        today = china_day(utc(now))
        due = [v for v in self.violations(state="notified") if v.overdue_on(today)]
        return [self.escalate(v.id, actor, now) for v in due]

    # --- reading --------------------------------------------------------------------------

    def get(self, vid: int) -> Violation:
        with self.store.connect() as conn:
            row = conn.execute(
                sa.select(SupervisionViolationRow).where(SupervisionViolationRow.id == vid)
            ).first()
        if row is None:
            raise ViolationNotFoundError(
                f"no violation {vid}; `govbus violations list` shows the ledger"
            )
        return _violation(row)

    def history(self, vid: int) -> list[LedgerEvent]:
        self.get(vid)
        with self.store.connect() as conn:
            rows = conn.execute(
                sa.select(SupervisionEventRow)
                .where(SupervisionEventRow.violation == vid)
                .order_by(SupervisionEventRow.id)
            ).all()
        return [
            LedgerEvent(r.id, r.violation, r.action, r.actor, utc(r.at), dict(r.detail))
            for r in rows
        ]

    def violations(
        self,
        department: str | None = None,
        kind: str | None = None,
        state: str | None = None,
        due_before: dt.date | None = None,
        occurred_from: dt.datetime | None = None,
        occurred_until: dt.datetime | None = None,
    ) -> list[Violation]:
        """Violations in id order, filtered; ``department`` is a code (see ``department_code``)."""
        q = sa.select(SupervisionViolationRow).order_by(SupervisionViolationRow.id)
        if department is not None:
            q = q.where(SupervisionViolationRow.department == department)
        if kind is not None:
            q = q.where(SupervisionViolationRow.kind == kind_of(kind).name)
        if state is not None:
            q = q.where(SupervisionViolationRow.state == state)
        if due_before is not None:
            q = q.where(SupervisionViolationRow.due < due_before)
        if occurred_from is not None:
            q = q.where(SupervisionViolationRow.occurred_at >= utc(occurred_from))
        if occurred_until is not None:
            q = q.where(SupervisionViolationRow.occurred_at < utc(occurred_until))
        with self.store.connect() as conn:
            return [_violation(r) for r in conn.execute(q).all()]

    def events(self, until: dt.datetime | None = None) -> list[LedgerEvent]:
        """Every step of every violation, in order (up to ``until``)."""
        q = sa.select(SupervisionEventRow).order_by(SupervisionEventRow.id)
        if until is not None:
            q = q.where(SupervisionEventRow.at < utc(until))
        with self.store.connect() as conn:
            return [
                LedgerEvent(r.id, r.violation, r.action, r.actor, utc(r.at), dict(r.detail))
                for r in conn.execute(q).all()
            ]

    def pending_outbox(self) -> int:
        """Ledger events not yet relayed to the topic."""
        with self.store.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(OutboxRow)
                    .where(OutboxRow.topic == self.topic, OutboxRow.published_at.is_(None))
                ).scalar_one()
            )

    @staticmethod
    def department_code(spec: CatalogSpec, department: str) -> str:
        """A department id or code, as its code (what the ledger stores)."""
        return Ledger._department_code(spec, department)

    # --- internals ------------------------------------------------------------------------

    @staticmethod
    def _department_code(spec: CatalogSpec, department: str) -> str:
        dept = spec.department_by_id(department) or spec.department(department)
        if dept is None:
            raise UserError(
                f"unknown department {department!r}: give its id or 统一社会信用代码 "
                "(`govbus catalog show` lists them)"
            )
        return dept.code

    def _require_operator(self, actor: str, what: str) -> None:
        if actor != self.operator:
            raise UserError(
                f"only the operator ({self.operator}, 领导小组办公室) may {what}; "
                f"--actor {actor!r} may not"
            )

    def _latest_episode(self, conn: sa.Connection, kind: str, subject: str) -> Any:
        return conn.execute(
            sa.select(SupervisionViolationRow)
            .where(SupervisionViolationRow.kind == kind, SupervisionViolationRow.subject == subject)
            .order_by(SupervisionViolationRow.episode.desc())
            .limit(1)
        ).first()

    def _insert(self, conn: sa.Connection, f: Finding, episode: int, at: dt.datetime) -> int:
        key = conn.execute(
            sa.insert(SupervisionViolationRow),
            {
                "kind": f.kind,
                "article": kind_of(f.kind).article,
                "subject": f.subject,
                "episode": episode,
                "department": f.department,
                "summary": f.summary,
                "evidence": dict(f.evidence),
                "source": f.source,
                "occurred_at": utc(f.at),
                "recorded_at": at,
                "state": "open",
                "due": None,
                "due_certain": None,
                "closed_at": None,
            },
        ).inserted_primary_key
        assert key is not None
        vid = int(key[0])
        actor = self.operator if f.source == "operator" else DETECTOR_ACTOR
        self._event(conn, vid, "recorded", actor, at, {"source": f.source})
        return vid

    def _step(
        self,
        conn: sa.Connection,
        vid: int,
        action: Action,
        actor: str,
        at: dt.datetime,
        detail: dict[str, Any],
        new_state: str | None = None,
        **values: Any,
    ) -> None:
        row = conn.execute(
            sa.select(SupervisionViolationRow)
            .where(SupervisionViolationRow.id == vid)
            .with_for_update()
        ).first()
        if row is None:
            raise ViolationNotFoundError(
                f"no violation {vid}; `govbus violations list` shows the ledger"
            )
        state = check_transition(vid, row.state, action, row.due, china_day(at))
        changes: dict[str, Any] = {"state": new_state or state, **values}
        if changes["state"] == "closed":
            changes["closed_at"] = at
        done = conn.execute(
            sa.update(SupervisionViolationRow)
            .where(SupervisionViolationRow.id == vid, SupervisionViolationRow.state == row.state)
            .values(**changes)
        )
        if done.rowcount != 1:  # another process moved it meanwhile
            raise UserError(f"violation {vid} changed meanwhile; look again and retry")
        self._event(conn, vid, action, actor, at, detail)

    def _event(
        self,
        conn: sa.Connection,
        vid: int,
        action: str,
        actor: str,
        at: dt.datetime,
        detail: dict[str, Any],
    ) -> None:
        conn.execute(
            sa.insert(SupervisionEventRow),
            {"violation": vid, "action": action, "actor": actor, "at": at, "detail": detail},
        )
        row = conn.execute(
            sa.select(SupervisionViolationRow).where(SupervisionViolationRow.id == vid)
        ).one()
        conn.execute(
            sa.insert(OutboxRow),
            {
                "created_at": at,
                "topic": self.topic,
                "key": f"violation:{vid}",
                "value": {
                    "event": {
                        "action": action,
                        "actor": actor,
                        "at": at.isoformat(),
                        "detail": detail,
                    },
                    "violation": _violation(row).to_json(),
                },
                "published_at": None,
            },
        )


def _text(value: str, name: str, what: str) -> str:
    text = " ".join(value.split())
    if len(text) < MIN_REASON:
        raise UserError(f"the {name} must say {what} (at least {MIN_REASON} characters)")
    return text
