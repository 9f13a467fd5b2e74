"""Where the detectors look: the database and the broker, read into the values the rules take.

``detect(...)`` gathers every kind article 26 names from the system's own records and hands the
findings to the ledger:

- 26(1) the catalog's article 9 deadlines (``govbus.catalog.deadlines``): overdue ones, and met
  ones to close;
- 26(2) ``late-provision`` and 26(4) overdue disputes (``inconsistent-data``): the records the
  freshness and disputes stream apps wrote to ``govbus.violations``; and 26(2) seen here too,
  with the freshness app's own rules (``stream_apps.freshness.rules``) on each resource topic's
  newest record (or, never published, its 发布日期) of each resource the app has not reported:
  a resource is found late even while the app is not running, and one the app watches keeps the
  app's episodes only;
- 26(3) the share-request sweep's ``share_violation`` rows; a request answered since is closed;
- 26(4) disputes resolved ``confirmed`` or ``corrected`` (the ``disputes.<code>`` topics);
- 26(4) the dead-letter rate: per provider department, records in its dead-letter topic
  ``dlq.<id>`` against records in its resource topics (offset ranges: every record ever
  written, whatever compaction kept), above ``threshold``;
- 26(5) the usage audit (``govbus.audit``) against the grants of approved share requests (what
  the subscriber reported), and the broker's own access evidence: the ``undeclared-use`` records
  ``govbus access check`` writes to ``govbus.violations`` for reads no audit declares;
- 26(6) the catalog itself (``rules.repeated_collection_findings``).

The broker is read with the admin's credentials and no consumer group (nothing is committed).
A topic that does not exist yet (its stream app never ran) holds nothing; any other broker
error is raised.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from govbus.catalog.deadlines import deadlines
from govbus.catalog.store import CatalogStore
from govbus.share.model import ShareGrantRow, ShareRequestRow, ShareViolationRow
from govbus.subscribe.audit import read_audit
from govbus.subscribe.evidence import KIND as ACCESS_EVIDENCE_KIND
from govbus.supervise.model import SupervisionViolationRow as V
from govbus.supervise.rules import (
    AuditUse,
    DeadlineView,
    Finding,
    GrantedPurpose,
    audit_purpose_findings,
    dead_letter_findings,
    dispute_findings,
    overdue_deadline_findings,
    repeated_collection_findings,
)
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.clock import CHINA_TZ, china_day, utc
from govbus.vocabulary.config import Settings
from govbus.vocabulary.errors import ServiceUnavailable
from govbus.vocabulary.naming import Naming
from govbus.vocabulary.spec import CatalogSpec, Resource
from stream_apps.freshness.rules import deadline, violation_event

__all__ = [
    "DEFAULT_DEAD_LETTER_THRESHOLD",
    "Detection",
    "detect",
    "detect_from_database",
]

DEFAULT_DEAD_LETTER_THRESHOLD = 0.05  # 5% of a provider's records dead-lettered
_TIMEOUT = 10.0


@dataclass(frozen=True)
class Detection:
    findings: tuple[Finding, ...]
    cleared: tuple[tuple[str, str], ...]


def detect_from_database(store: CatalogStore, now: dt.datetime) -> Detection:
    """26(1), 26(3) and 26(6): what the database alone shows."""
    spec = store.current()
    statuses = [
        DeadlineView(s.trigger, s.department, s.due, s.state, s.met_by_version)
        for s in deadlines(store, today=china_day(now))
    ]
    catalog, met = overdue_deadline_findings(statuses, now)
    requests, answered = _unanswered_requests(store)
    repeated = repeated_collection_findings(spec, now)
    cleared = {("catalog-not-updated", s) for s in met} | {
        ("unanswered-request", s) for s in answered
    }
    # A repeated-collection declaration no longer in the catalog is cleared.
    cleared |= {("repeated-collection", s) for s in _open_subjects(store, "repeated-collection")}
    cleared -= {(f.kind, f.subject) for f in repeated}
    return Detection((*catalog, *requests, *repeated), tuple(sorted(cleared)))


def detect(
    settings: Settings,
    store: CatalogStore,
    now: dt.datetime,
    threshold: float = DEFAULT_DEAD_LETTER_THRESHOLD,
) -> Detection:
    """Every kind: the database's, then the broker's topics."""
    spec = store.current()
    base = detect_from_database(store, now)
    naming = store.naming
    consumer = kafka_clients.consumer(
        settings,
        settings.admin_username,
        kafka_clients.admin_password_of(settings),
        naming.app_user("supervise"),
        **{"enable.partition.eof": True},
    )
    try:
        topic = [_topic_finding(v) for v in _values(consumer, naming.violations_topic)]
        # Where the freshness app reports a resource, its episodes stand; the detector's own
        # count from 发布日期 (the app counts from its watch start) would be a second one.
        watched = {
            f.evidence.get("resource_code") for f in topic if f and f.kind == "late-provision"
        }
        topic += [
            _topic_finding(v)
            for r in spec.resources
            if r.code not in watched
            and (v := _late(r, _newest(consumer, naming.resource_topic(r.code)), now))
        ]
        disputes = dispute_findings(
            state
            for r in spec.resources
            for state in _values(consumer, naming.dispute_topic(r.code))
        )
        counts = {
            d.code: (
                sum(
                    _written(consumer, naming.resource_topic(r.code))
                    for r in spec.resources
                    if r.provider == d.code
                ),
                _written(consumer, naming.dlq_topic(d.id)),
            )
            for d in spec.departments
        }
    finally:
        consumer.close()
    dead = dead_letter_findings(counts, threshold, china_day(now), now)
    open_dead = {
        s for s in _open_subjects(store, "inconsistent-data") if s.startswith("dead-letters:")
    }
    cleared = set(base.cleared) | {("inconsistent-data", s) for s in open_dead}
    cleared -= {(f.kind, f.subject) for f in dead}
    misuse = audit_purpose_findings(_audit_uses(settings, spec, naming), _grants(store), spec)
    found = (f for f in topic if f is not None)
    findings = (*base.findings, *found, *disputes, *dead, *misuse)
    return Detection(findings, tuple(sorted(cleared)))


# --- the database -------------------------------------------------------------------------


def _unanswered_requests(store: CatalogStore) -> tuple[list[Finding], set[str]]:
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(ShareViolationRow, ShareRequestRow.state, ShareRequestRow.resource)
            .join(ShareRequestRow, ShareRequestRow.id == ShareViolationRow.request)
            .order_by(ShareViolationRow.id)
        ).all()
    found, answered = [], set()
    for row in rows:
        subject = f"request:{row.request}"
        found.append(
            Finding(
                "unanswered-request",
                row.department,
                subject,
                utc(row.at),
                f"share request {row.request} for {row.resource} not answered by "
                f"{row.detail.get('due')} (10 working days, article 17)",
                {"request": row.request, **row.detail},
                source="share-sweep",
            )
        )
        if row.state != "pending":
            answered.add(subject)
    return found, answered


def _open_subjects(store: CatalogStore, kind: str) -> set[str]:
    with store.connect() as conn:
        return set(
            conn.execute(sa.select(V.subject).where(V.kind == kind, V.state != "closed"))
            .scalars()
            .all()
        )


def _grants(store: CatalogStore) -> list[GrantedPurpose]:
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(
                ShareRequestRow.department,
                ShareRequestRow.resource,
                ShareRequestRow.purpose,
                ShareGrantRow.expires_at,
            ).join(ShareGrantRow, ShareGrantRow.request == ShareRequestRow.id)
        ).all()
    return [
        GrantedPurpose(
            r.department, r.resource, r.purpose, utc(r.expires_at) if r.expires_at else None
        )
        for r in rows
    ]


# --- the broker ---------------------------------------------------------------------------


def _audit_uses(settings: Settings, spec: CatalogSpec, naming: Naming) -> list[AuditUse]:
    codes = {d.id: d.code for d in spec.departments}
    uses = []
    for _, e in read_audit(settings, naming=naming):
        uses.append(
            AuditUse(
                codes.get(e.department, e.department),
                e.resource,
                e.purpose,
                e.record_count,
                e.window_start,
                e.window_end,
                e.hash,
            )
        )
    return uses


# Kinds other writers put on ``govbus.violations``, as the ledger's kinds: the broker-side
# access evidence (``govbus access check``, govbus.subscribe.evidence) reports a read no usage
# audit declares as ``undeclared-use``, which is article 26(5).
_TOPIC_KINDS = {
    "late-provision": "late-provision",
    "inconsistent-data": "inconsistent-data",
    ACCESS_EVIDENCE_KIND: "purpose-misuse",
}


def _topic_finding(value: dict[str, object]) -> Finding | None:
    """A record of ``govbus.violations`` (freshness 26(2), disputes 26(4), access evidence
    26(5)) as a finding."""
    written = str(value.get("kind", ""))
    kind = _TOPIC_KINDS.get(written)
    if kind is None:
        return None
    at = dt.datetime.fromisoformat(str(value["at"]))
    subject = str(value["subject"])
    keys = ("resource_code", "subject", "article", "evidence")
    return Finding(
        kind,
        str(value["department"]),
        subject if kind == written else f"{written}:{subject}",
        utc(at),
        str(value.get("detail", ""))[:500],
        {k: value[k] for k in keys if k in value},
        source="govbus.violations",
    )


def _late(r: Resource, last: dt.datetime | None, now: dt.datetime) -> dict[str, object] | None:
    """The freshness app's violation record if ``r`` is late at ``now`` (last publish ``last``;
    never published: counted from its 发布日期)."""
    since = last or dt.datetime.combine(r.publish_date, dt.time(), CHINA_TZ)
    due = deadline(r.update_cycle, since)
    if due is None or now <= due.at:
        return None
    return violation_event(r, last, due, now)


def _newest(consumer: Consumer, topic: str) -> dt.datetime | None:
    """The timestamp of the newest record of ``topic`` (None: empty or missing)."""
    newest: dt.datetime | None = None
    for p in _partitions(consumer, topic):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=_TIMEOUT)
        if low >= high:
            continue
        consumer.assign([TopicPartition(topic, p, high - 1)])
        msg = consumer.poll(_TIMEOUT)
        consumer.unassign()
        if msg is None or msg.error() is not None:
            continue  # compaction removed it meanwhile, or the partition ended: nothing newer
        _, millis = msg.timestamp()
        at = dt.datetime.fromtimestamp(millis / 1000, dt.UTC)
        newest = at if newest is None or at > newest else newest
    return newest


def _partitions(consumer: Consumer, topic: str) -> list[int]:
    try:
        meta = consumer.list_topics(topic, timeout=_TIMEOUT).topics[topic]
    except KafkaException as exc:
        raise ServiceUnavailable(f"reading {topic}: {exc.args[0].str()}") from None
    if meta.error is not None:
        if meta.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            return []
        raise ServiceUnavailable(f"cannot read {topic}: {meta.error.str()}")
    return sorted(meta.partitions)


def _written(consumer: Consumer, topic: str) -> int:
    """How many records were ever written to ``topic`` (the sum of its high watermarks)."""
    total = 0
    for p in _partitions(consumer, topic):
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=_TIMEOUT)
        total += int(high)
    return total


def _values(consumer: Consumer, topic: str) -> Iterator[dict[str, object]]:
    """Every JSON record value of ``topic`` from the start (deleted keys skipped)."""
    for p in _partitions(consumer, topic):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=_TIMEOUT)
        if low >= high:
            continue
        consumer.assign([TopicPartition(topic, p, low)])
        while True:
            msg = consumer.poll(_TIMEOUT)
            if msg is None:
                raise ServiceUnavailable(f"reading {topic} partition {p}: no answer in {_TIMEOUT}s")
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    break
                raise ServiceUnavailable(f"reading {topic}: {err.str()}")
            raw = msg.value()
            if raw:
                try:
                    value = json.loads(raw)
                except ValueError:
                    value = None
                if isinstance(value, dict):
                    yield value
            if int(msg.offset() or 0) >= high - 1:
                break
        consumer.unassign()
