"""Article 26's seven kinds of violation and the rectification workflow, as pure rules.

办法 第二十六条: a department that (1) does not compile or update its catalog as required,
(2) does not provide shared data on time, (3) does not answer share requests without reason,
(4) provides data inconsistent with its own, not updated or unusable, (5) uses shared data
beyond the stated purpose, (6) collects again what the platform already provides, or (7) does
something else against the measures, is notified by the steering group's office (通知整改) and
given a deadline to rectify; one not rectified in time is reported to the city government
(article 23 and 26 together).

Everything here is pure (no database, no Kafka): the kinds, a ``Finding`` (what a detector saw:
kind, responsible department, subject, evidence), the episode key that makes the ledger
idempotent, the detectors that work on values (26(1) from deadline statuses, 26(4) from dead
letter counts, 26(5) from usage-audit events against grants, 26(6) from the catalog), and the
state machine of rectification. ``govbus.supervise.ledger`` is the IO shell.

Episodes: a finding's ``subject`` names one episode of its kind — a trigger's deadline, a
request, a dispute, a freshness deadline, an audit window, a catalog declaration, a department
on a day. The ledger keeps one violation per (kind, subject, episode); a *condition* finding
(``recurring``: repeated collection, dead-letter rate) that comes back after its violation was
closed opens the next episode; an *event* finding (everything else) never reopens.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from govbus.catalog.rules import single_source_identities
from govbus.vocabulary.errors import Conflict, UserError
from govbus.vocabulary.spec import CatalogSpec, Resource
from stream_apps.projection.views import has_public_view

__all__ = [
    "KINDS",
    "STATES",
    "Finding",
    "Kind",
    "TransitionError",
    "audit_purpose_findings",
    "check_transition",
    "dead_letter_findings",
    "dispute_findings",
    "kind_of",
    "overdue_deadline_findings",
    "repeated_collection_findings",
]

State = Literal["open", "notified", "responded", "escalated", "closed"]
STATES: tuple[State, ...] = ("open", "notified", "responded", "escalated", "closed")
Action = Literal["notify", "respond", "close", "escalate"]


@dataclass(frozen=True)
class Kind:
    """One clause of article 26: its ledger name, clause number and the law's words."""

    name: str
    article: str
    title: str  # 办法 wording, Chinese
    meaning: str  # what the platform detects, English
    recurring: bool = False  # a condition that can come back after closing (next episode)


KINDS: tuple[Kind, ...] = (
    Kind(
        "catalog-not-updated",
        "26(1)",
        "未按要求编制或者更新政务信息资源目录",
        "catalog not compiled or not updated within 15 working days of a trigger (article 9)",
    ),
    Kind(
        "late-provision",
        "26(2)",
        "未按要求提供共享信息资源",
        "shared data not provided on time against its update cycle (freshness)",
    ),
    Kind(
        "unanswered-request",
        "26(3)",
        "无故不受理政务信息资源共享申请",
        "a share request not answered within 10 working days (article 17)",
    ),
    Kind(
        "inconsistent-data",
        "26(4)",
        "提供的共享信息资源与本部门所掌握信息不一致、未及时更新或者不可用",
        "a dispute confirmed or left overdue, or a dead-letter rate above the threshold",
        recurring=True,  # the dead-letter rate is a condition; disputes are unique subjects
    ),
    Kind(
        "purpose-misuse",
        "26(5)",
        "将共享信息资源用于履行职责以外的其他目的",
        "shared data used beyond the purpose stated in the grant (usage audit mismatch)",
    ),
    Kind(
        "repeated-collection",
        "26(6)",
        "重复采集可以通过共享方式获取的信息资源",
        "a department declares its own collection of an item another provider already provides",
        recurring=True,
    ),
    Kind(
        "other",
        "26(7)",
        "其他违反本办法规定的行为",
        "recorded by the operator with a reason",
    ),
)
_BY_NAME = {k.name: k for k in KINDS}


def kind_of(name: str) -> Kind:
    """The kind called ``name`` (a ledger name or its article, e.g. ``26(3)``)."""
    for k in KINDS:
        if name in (k.name, k.article):
            return k
    known = ", ".join(f"{k.name} ({k.article})" for k in KINDS)
    raise UserError(f"unknown violation kind {name!r}; the kinds of article 26 are: {known}")


@dataclass(frozen=True)
class Finding:
    """What a detector saw: ``department`` (code) is responsible for ``subject`` of ``kind``."""

    kind: str
    department: str  # 统一社会信用代码 of the department responsible
    subject: str  # names the episode within the kind
    at: dt.datetime  # when the violation happened (or was first seen)
    summary: str  # one line a person reads
    evidence: Mapping[str, Any] = field(default_factory=dict)  # JSON: where to look
    source: str = "detector"  # what saw it: detector name, topic, or the operator

    def __post_init__(self) -> None:
        kind_of(self.kind)
        if not self.subject:
            raise UserError(f"a {self.kind} finding needs a subject (the episode it names)")

    @property
    def recurring(self) -> bool:
        return _BY_NAME[self.kind].recurring and self.subject.startswith(RECURRING_PREFIXES)


# Subjects of condition findings start with one of these (a dispute id never does).
RECURRING_PREFIXES = ("dead-letters:", "item:")


# --- the workflow -------------------------------------------------------------------------------


class TransitionError(Conflict):
    """The step does not fit the violation's state; the message says what would."""


_ALLOWED: dict[Action, tuple[State, ...]] = {
    "notify": ("open",),
    "respond": ("notified", "escalated"),
    "close": ("open", "notified", "responded", "escalated"),
    "escalate": ("notified",),
}
_NEXT: dict[Action, State] = {
    "notify": "notified",
    "respond": "responded",
    "close": "closed",
    "escalate": "escalated",
}


def check_transition(
    violation: int, state: str, action: Action, due: dt.date | None, today: dt.date
) -> State:
    """The state after ``action``, or :class:`TransitionError` saying why it cannot happen.

    通知整改 (notify) opens rectification with a deadline; the department responds (responded);
    the operator (or the detector, seeing the condition clear) closes; a notice past its
    deadline without a response is escalated into the report to the city government.
    """
    allowed = _ALLOWED[action]
    if state not in allowed:
        hints = {
            "notify": "only an open violation gets a notice",
            "respond": "a department responds to a notice (`govbus violations notify` first)",
            "close": "it is closed already",
            "escalate": "only a notified violation without a response is escalated",
        }
        raise TransitionError(
            f"violation {violation} is {state}: cannot {action} ({hints[action]})"
        )
    if action == "escalate" and due is not None and today <= due:
        raise TransitionError(
            f"violation {violation}: its rectification deadline {due.isoformat()} has not "
            f"passed (today is {today.isoformat()}); escalate after it"
        )
    return _NEXT[action]


# --- detectors on values --------------------------------------------------------------------


@dataclass(frozen=True)
class DeadlineView:
    """An article 9 deadline as ``govbus.catalog.deadlines`` reports it."""

    trigger: int
    department: str
    due: dt.date
    state: str  # open | met | overdue
    met_by_version: int | None


def overdue_deadline_findings(
    statuses: Iterable[DeadlineView], at: dt.datetime
) -> tuple[list[Finding], set[str]]:
    """26(1): each overdue catalog deadline is a finding; met deadlines are returned as the
    subjects whose violation (if one was recorded while overdue) the detector saw clear."""
    found: list[Finding] = []
    cleared: set[str] = set()
    for s in statuses:
        subject = f"trigger:{s.trigger}:{s.department}"
        if s.state == "overdue":
            found.append(
                Finding(
                    "catalog-not-updated",
                    s.department,
                    subject,
                    at,
                    f"catalog not updated by {s.due.isoformat()} after trigger {s.trigger} "
                    "(15 working days, article 9)",
                    {"trigger": s.trigger, "due": s.due.isoformat()},
                )
            )
        elif s.state == "met":
            cleared.add(subject)
    return found, cleared


INCONSISTENT_OUTCOMES = ("confirmed", "corrected")


def dispute_findings(states: Iterable[Mapping[str, Any]]) -> list[Finding]:
    """26(4) "inconsistent": a dispute resolved ``confirmed`` or ``corrected`` (article 19) —
    the provider's data differed from what it holds. ``states`` are the dispute states of the
    ``disputes.<code>`` topics in topic order; the last state of each dispute counts. The
    subject is the dispute id, as for an overdue dispute: one dispute is one violation."""
    last: dict[str, Mapping[str, Any]] = {}
    for state in states:
        if "dispute_id" in state:
            last[str(state["dispute_id"])] = state
    out = []
    for dispute_id, st in sorted(last.items()):
        outcome = st.get("outcome")
        if st.get("state") != "resolved" or outcome not in INCONSISTENT_OUTCOMES:
            continue
        out.append(
            Finding(
                "inconsistent-data",
                str(st["provider"]),
                dispute_id,
                dt.datetime.fromisoformat(str(st["updated_at"])),
                f"dispute {dispute_id} on {st['resource_code']} key {st['key']} resolved "
                f"{outcome}: the data provided differed from the provider's own "
                "(articles 19, 26(4))",
                {
                    "dispute": dispute_id,
                    "resource_code": st["resource_code"],
                    "key": st["key"],
                    "outcome": outcome,
                    "note": st.get("note"),
                },
                source="disputes",
            )
        )
    return out


def dead_letter_findings(
    counts: Mapping[str, tuple[int, int]], threshold: float, day: dt.date, at: dt.datetime
) -> list[Finding]:
    """26(4) "unusable": department code -> (records delivered, records dead-lettered); a rate
    of dead letters above ``threshold`` (a fraction) is a finding, one per department while the
    condition lasts (subject ``dead-letters:<code>``)."""
    if not 0 <= threshold < 1:
        raise UserError(f"dead-letter threshold must be a fraction in [0, 1), got {threshold}")
    out = []
    for code, (delivered, dead) in sorted(counts.items()):
        total = delivered + dead
        if total == 0 or dead / total <= threshold:
            continue
        rate = dead / total
        out.append(
            Finding(
                "inconsistent-data",
                code,
                f"dead-letters:{code}",
                at,
                f"{dead} of {total} records ({rate:.1%}) went to the dead-letter topic, above "
                f"the {threshold:.1%} threshold: data the provider sends is unusable",
                {
                    "delivered": delivered,
                    "dead_lettered": dead,
                    "rate": round(rate, 6),
                    "threshold": threshold,
                    "measured_on": day.isoformat(),
                },
            )
        )
    return out


@dataclass(frozen=True)
class AuditUse:
    """One usage-audit event, reduced to what 26(5) needs."""

    department: str  # code of the consumer
    resource: str
    purpose: str
    records: int
    window_start: dt.datetime
    window_end: dt.datetime
    hash: str


@dataclass(frozen=True)
class GrantedPurpose:
    department: str  # code
    resource: str
    purpose: str
    expires_at: dt.datetime | None


def audit_purpose_findings(
    uses: Iterable[AuditUse], grants: Iterable[GrantedPurpose], spec: CatalogSpec
) -> list[Finding]:
    """26(5), from the usage audit until the broker-side access evidence lands: a conditional
    resource read for a purpose no grant of that department names, or after every such grant
    expired. Unconditional resources are open to any duty, so only their declared purposes
    count: a purpose outside the resource's ``purposes`` (when it lists any) is a finding.
    One finding per audit event (subject: its hash)."""
    by_key: dict[tuple[str, str], list[GrantedPurpose]] = {}
    for g in grants:
        by_key.setdefault((g.department, g.resource), []).append(g)
    out = []
    for use in uses:
        resource = spec.resource(use.resource)
        if resource is None or use.records == 0:
            continue
        problem = _purpose_problem(use, resource, by_key.get((use.department, use.resource), []))
        if problem is None:
            continue
        out.append(
            Finding(
                "purpose-misuse",
                use.department,
                f"audit:{use.hash}",
                use.window_end,
                f"{use.records} record(s) of {resource.name} ({resource.code}) read for "
                f"purpose {use.purpose!r}: {problem}",
                {
                    "audit_hash": use.hash,
                    "resource": use.resource,
                    "purpose": use.purpose,
                    "records": use.records,
                    "window": [use.window_start.isoformat(), use.window_end.isoformat()],
                    "evidence_source": "usage audit (govbus.audit)",
                },
                source="usage-audit",
            )
        )
    return out


def _purpose_problem(use: AuditUse, resource: Resource, grants: list[GrantedPurpose]) -> str | None:
    if resource.share_type == "unconditional":
        if resource.purposes and use.purpose not in resource.purposes:
            return f"the resource is shared for {', '.join(resource.purposes)} only"
        return None
    if not grants:
        if has_public_view(resource):
            return None  # without a grant the broker lets it read only the public view (art. 10)
        return "no approved share request of this department covers the resource"
    same = [g for g in grants if g.purpose == use.purpose]
    if not same:
        stated = ", ".join(sorted({g.purpose for g in grants}))
        return f"the grant(s) name purpose {stated}, not this one"
    if all(g.expires_at is not None and g.expires_at < use.window_end for g in same):
        return "every grant for this purpose had expired"
    return None


def repeated_collection_findings(spec: CatalogSpec, at: dt.datetime) -> list[Finding]:
    """26(6): a department declares its own collection of an item another provider already
    provides — the same subject and item (the one-data-one-source identity of
    ``govbus.catalog.rules.single_source_identities``: subject type, declared identifier, item
    code) in a resource of another provider — instead of being listed as a holder of the
    earlier resource (a declared copy with its source).

    The earlier resource (by publish date, then code) is the one the platform provides.
    ``catalog import`` refuses such a part today (rule ``single-source``), so this finds what
    was stored before that rule or around it; matching item *names* instead was tried and
    dropped: on the sample catalog it flagged a teacher's and a doctor's 发证日期 as one item.
    """
    first: dict[tuple[str, str, str], Resource] = {}
    out: list[Finding] = []
    for r in sorted(spec.resources, key=lambda r: (r.publish_date, r.code)):
        names = {i.code: i.name for i in r.items}
        for identity, code in single_source_identities(r):
            source = first.setdefault(identity, r)
            if source.provider == r.provider:
                continue
            if any(h.department == r.provider for h in source.holders):
                continue
            out.append(
                Finding(
                    "repeated-collection",
                    r.provider,
                    f"item:{r.code}/{code}",
                    at,
                    f"{r.name} ({r.code}) collects {names[code]} ({code}), which "
                    f"{source.name} ({source.code}) already provides; obtain it by sharing "
                    "and list the department as a holder there",
                    {
                        "resource": r.code,
                        "item": code,
                        "item_name": names[code],
                        "provided_by": source.provider,
                        "provided_in": source.code,
                    },
                    source="catalog",
                )
            )
    return out
