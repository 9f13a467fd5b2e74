"""Usage audit (article 18: shared data is used only for the purpose stated): a hash chain.

Every subscriber reports, at an interval and when it stops, which records it handed to its
application: department, resource, stated purpose, the grant it relied on, how many records,
the offset range per partition and the time window. Events go to ``govbus.audit`` keyed by
the department id, so one partition holds a department's events in order.

A read under a grant (有条件共享) also records the grant's id and item set, the case number
(办件编号) the read serves and the end user (经办人) who asked for it, the way X-Road's
``Issue`` and ``UserId`` headers tie each exchange to a case and a person: the audit then says
not only which department used the data for which purpose, but for which case and by whom.
These fields enter the hash only when present, so events written before them still verify.

Tamper evidence: ``hash`` is the SHA-256 of the event's canonical JSON without ``hash``
(sorted keys, no whitespace, UTF-8), and that JSON includes ``prev_hash``, the hash of the
department's previous event (``GENESIS``, 64 zeros, for its first). Changing, removing or
reordering an event breaks the link to the next one, which ``verify_chain`` reports.

Several chains per department: a component that writes on a department's behalf (the lookup
service, govbus.lookup: one event per query) keeps a chain of its own, named by ``chain``
(e.g. ``lookup:<instance>``, also in the record's ``govbus-chain`` header), beside the
department's own (``chain`` None); each link is checked within its chain. ``query`` holds
what a single query adds as evidence (case number, end user, the keys asked HMAC-hashed, the
items returned). Both are hashed only when set, so events written before they existed keep
their hashes.

Chain head: a subscriber reads its department's last event back from the topic when it starts
(``last_event``), so the chain continues across restarts and machines without local state.
It reads only the partition the department's key is in: every writer places an event there
itself (``placement``) and names the partition count it placed it by in the
``govbus-partitions`` header, so an event found there with today's count is the newest (a later
one would have been placed there too). Other partitions are read only when the count has
changed since (the reconciler grows topics) or events without the header are what is found.
That needs READ (+DESCRIBE) on ``govbus.audit`` besides WRITE; events hold no personal data,
only who used which resource how much. The chain has one writer per department at a time:
two subscribers of one department running at once each continue from the head they read and
fork the chain, which ``verify_chain`` reports as a broken link. Removing the newest events
leaves a valid (shorter) chain; only a copy of the head kept elsewhere detects that.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.config import Settings
from govbus.vocabulary.errors import ServiceUnavailable
from govbus.vocabulary.naming import NAMING, Naming
from govbus.vocabulary.partitioning import partition_of

log = logging.getLogger(__name__)
GENESIS = "0" * 64
# The Kafka header naming a component's chain (e.g. ``lookup:<instance>``) on its events, so a
# reader looking for another chain's head skips them unparsed; the department's own chain has
# none. Events written before it are parsed instead.
CHAIN_HEADER = "govbus-chain"
# The Kafka header naming the audit topic's partition count an event was placed by (its
# partition: its key's under that count); ``last_event`` trusts its home partition only for
# events placed by the count the topic has now.
PARTITIONS_HEADER = "govbus-partitions"
# The settings of a consumer made to read chain heads (``last_event``): it reads the audit
# partition backwards in small windows, assigning each, and librdkafka prefetches an assigned
# partition far past the window (up to 100,000 messages; here fetches of up to 10 MB where the
# caller's consumer reads a whole topic), all of which is fetched and discarded per window.
# With so short a queue librdkafka pauses fetching for ``fetch.queue.backoff.ms`` (1 s) each
# time it fills, and a fetch at the partition's end waits ``fetch.wait.max.ms`` (0.5 s) at the
# broker: scanning past 100,000 events of other chains took 46.6 s; without both waits 1.2 and
# 1.5 s in two measurements then, 0.41 s on a faster machine later (docs/lookup.md).
HEAD_READER_CONFIG: dict[str, Any] = {
    "enable.partition.eof": True,
    "queued.min.messages": 1000,
    "max.partition.fetch.bytes": 256 * 2**10,
    "fetch.max.bytes": 2**20,
    "fetch.queue.backoff.ms": 0,
    "fetch.wait.max.ms": 10,
}
_READ_TIMEOUT = 10.0


class AuditError(ServiceUnavailable):
    """The audit topic could not be read or holds something that is not an audit event."""


@dataclass(frozen=True)
class GrantRef:
    """The approved share request a conditional subscription relied on."""

    resource: str
    expires_at: dt.datetime | None = None
    id: int | None = None  # the share grant's id (None: a grant made by hand, in tests)
    items: tuple[str, ...] = ()  # the approved items (empty: every item)


@dataclass(frozen=True)
class AuditEvent:
    department: str  # department id (its principal)
    resource: str  # 政务信息资源代码
    purpose: str
    grant: GrantRef | None
    record_count: int
    # partition -> (first offset, last offset) of the records handed to the application
    ranges: Mapping[int, tuple[int, int]]
    window_start: dt.datetime
    window_end: dt.datetime
    prev_hash: str = GENESIS
    hash: str = field(default="", compare=True)
    chain: str | None = None  # None: the department's own chain
    query: Mapping[str, Any] | None = None  # a lookup's or download's evidence
    case_number: str | None = None  # 办件编号 of the case the read serves
    end_user: str | None = None  # 经办人: who in the department asked for the data

    @property
    def chain_id(self) -> tuple[str, str | None]:
        return (self.department, self.chain)

    def body(self) -> dict[str, Any]:
        """The hashed content: everything but ``hash``, in JSON types."""
        grant: dict[str, Any] | None = None
        if self.grant is not None:
            expiry = self.grant.expires_at
            grant = {
                "resource": self.grant.resource,
                "expires_at": expiry.isoformat() if expiry else None,
            }
            if self.grant.id is not None:
                grant["id"] = self.grant.id
            if self.grant.items:
                grant["items"] = list(self.grant.items)
        optional = {
            name: value
            for name, value in (("case_number", self.case_number), ("end_user", self.end_user))
            if value is not None
        }
        out: dict[str, Any] = {
            **optional,
            "department": self.department,
            "resource": self.resource,
            "purpose": self.purpose,
            "grant": grant,
            "record_count": self.record_count,
            # JSON keys are text; the first/last pair stays a list.
            "ranges": {str(p): [first, last] for p, (first, last) in self.ranges.items()},
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "prev_hash": self.prev_hash,
        }
        if self.chain is not None:
            out["chain"] = self.chain
        if self.query is not None:
            out["query"] = dict(self.query)
        return out

    def compute_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.body())).hexdigest()

    def sealed(self) -> AuditEvent:
        """This event with its hash set."""
        return replace(self, hash=self.compute_hash())

    def to_json(self) -> bytes:
        return canonical_json({**self.body(), "hash": self.hash})

    @staticmethod
    def from_json(data: bytes | str) -> AuditEvent:
        try:
            d = json.loads(data)
            grant = d["grant"]
            return AuditEvent(
                department=d["department"],
                resource=d["resource"],
                purpose=d["purpose"],
                grant=None
                if grant is None
                else GrantRef(
                    grant["resource"],
                    dt.datetime.fromisoformat(grant["expires_at"]) if grant["expires_at"] else None,
                    id=None if grant.get("id") is None else int(grant["id"]),
                    items=tuple(str(i) for i in grant.get("items", ())),
                ),
                record_count=int(d["record_count"]),
                ranges={int(p): (int(r[0]), int(r[1])) for p, r in d["ranges"].items()},
                window_start=dt.datetime.fromisoformat(d["window_start"]),
                window_end=dt.datetime.fromisoformat(d["window_end"]),
                prev_hash=d["prev_hash"],
                hash=d["hash"],
                chain=d.get("chain"),
                query=d.get("query"),
                case_number=d.get("case_number"),
                end_user=d.get("end_user"),
            )
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise AuditError(f"not an audit event ({type(exc).__name__}: {exc})") from None


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8 without escapes: one byte form per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def verify_chain(events: Iterable[AuditEvent | tuple[int, AuditEvent]]) -> list[str]:
    """Problems in each department's chain, in topic order; [] when every link holds.

    ``events`` are audit events in the order they were written, optionally as (offset, event)
    pairs (as ``read_audit`` returns them) so a problem names the offset. Per department only
    the first broken link is reported: everything after it fails to link as a consequence.
    """
    heads: dict[tuple[str, str | None], str] = {}
    broken: set[tuple[str, str | None]] = set()
    problems: list[str] = []
    for n, item in enumerate(events):
        offset, event = item if isinstance(item, tuple) else (None, item)
        where = f"offset {offset}" if offset is not None else f"event #{n}"
        chain = event.chain_id
        dept = event.department if event.chain is None else f"{event.department} ({event.chain})"
        if chain in broken:
            continue
        problem = None
        expected_prev = heads.get(chain, GENESIS)
        if event.compute_hash() != event.hash:
            problem = (
                f"department {dept}: audit event at {where} ({event.resource}, window "
                f"{event.window_start.isoformat()}..{event.window_end.isoformat()}) was "
                "modified: its content does not match its hash"
            )
        elif event.prev_hash != expected_prev:
            what = "its first event" if expected_prev == GENESIS else "the previous event"
            problem = (
                f"department {dept}: audit chain broken at {where} ({event.resource}, window "
                f"{event.window_start.isoformat()}..{event.window_end.isoformat()}): "
                f"prev_hash {event.prev_hash[:12]}… does not match {what} "
                f"({expected_prev[:12]}…); an event before it was removed, reordered or "
                "altered, or two subscribers of the department wrote at once"
            )
        if problem:
            problems.append(problem)
            broken.add(chain)
        else:
            heads[chain] = event.hash
    return problems


# --- reading the topic --------------------------------------------------------------------------


def _check(msg: Any) -> bool:
    """True for a record; False for end-of-partition; raises a broker error."""
    err = msg.error()
    if err is None:
        return True
    if err.code() == KafkaError._PARTITION_EOF:
        return False
    raise AuditError(f"reading {msg.topic()}: {err.str()}")


def _partitions(client: Consumer | Producer, topic: str) -> list[int]:
    try:
        meta = client.list_topics(topic, timeout=_READ_TIMEOUT).topics[topic]
    except KafkaException as exc:
        raise AuditError(f"reading {topic}: {exc.args[0].str()}") from None
    if meta.error is not None:
        raise AuditError(
            f"cannot read {topic}: {meta.error.str()} (the reconciler creates it and grants "
            "every department READ, WRITE and DESCRIBE on it)"
        )
    return sorted(meta.partitions)


def _read_range(consumer: Consumer, topic: str, partition: int, start: int, end: int) -> list[Any]:
    """Messages of [start, end) of one partition (fewer if some were removed)."""
    if start >= end:
        return []
    consumer.assign([TopicPartition(topic, partition, start)])
    out = []
    while True:
        msg = consumer.poll(_READ_TIMEOUT)
        if msg is None:
            raise AuditError(
                f"reading {topic} partition {partition}: no answer within {_READ_TIMEOUT}s"
            )
        if not _check(msg):
            break
        offset = int(msg.offset() or 0)
        if offset < end:
            out.append(msg)
        if offset >= end - 1:
            break
    consumer.unassign()
    return out


def _watermarks(consumer: Consumer, topic: str, partition: int) -> tuple[int, int]:
    try:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=_READ_TIMEOUT
        )
    except KafkaException as exc:
        raise AuditError(f"reading {topic} partition {partition}: {exc.args[0].str()}") from None
    return int(low), int(high)


def _events(msgs: Iterable[Any]) -> list[tuple[int, AuditEvent]]:
    out = []
    for msg in msgs:
        try:
            out.append((int(msg.offset()), AuditEvent.from_json(msg.value())))
        except AuditError as exc:
            raise AuditError(
                f"{msg.topic()} partition {msg.partition()} offset {msg.offset()}: {exc}"
            ) from None
    return out


def _own_events(
    msgs: Iterable[Any], department: str, chain: str | None
) -> list[tuple[AuditEvent, int | None]]:
    """The department's audit events of ``chain`` among ``msgs``, in order, each with the
    partition count it was placed by (``_placed_by``).

    Every writer keys an event by its department, and a component's chain names itself in the
    ``CHAIN_HEADER`` header, so records of other departments and other chains are not parsed
    (a download's chain head was found behind tens of thousands of the department's lookup
    events, each parsed). A record under the department's key that is not an event of it is
    skipped with a warning: every principal may write to the audit topic, and one record that
    is not an event must not stop a department's reads and lookups (its chain continues from
    its last real event; ``govbus audit verify`` reports the record by its offset)."""
    own_key = department.encode()
    wanted = (chain or "").encode()
    out = []
    for msg in msgs:
        if msg.key() != own_key:
            continue
        named = dict(msg.headers() or ()).get(CHAIN_HEADER)
        if named is not None and named != wanted:
            continue
        try:
            event = AuditEvent.from_json(msg.value())
        except AuditError as exc:
            log.warning(
                "%s partition %s offset %s is under department %s's key but %s; skipped",
                msg.topic(), msg.partition(), msg.offset(), department, exc,
            )  # fmt: skip
            continue
        if event.department == department and event.chain == chain:
            out.append((event, _placed_by(msg)))
    return out


def placement(
    client: Consumer | Producer, department: str, topic: str, chain: str | None = None
) -> dict[str, Any]:
    """Where the department's next event goes, as produce arguments: the partition its key is
    in under the topic's partition count now, and the headers naming that count (and the chain,
    if not the department's own), so ``last_event`` finds it reading that partition only."""
    count = len(_partitions(client, topic))
    headers = [(PARTITIONS_HEADER, str(count).encode())]
    if chain is not None:
        headers.append((CHAIN_HEADER, chain.encode()))
    return {"partition": partition_of(department, count), "headers": headers}


def write_event(producer: Producer, topic: str, event: AuditEvent) -> str | None:
    """Append ``event`` (of the department's own chain) where ``placement`` puts it and wait
    for the broker's acknowledgement: None, or why it was not written."""
    try:
        placed = placement(producer, event.department, topic)
    except AuditError as exc:
        return str(exc)
    return kafka_clients.produce_and_wait(
        producer, topic, event.department.encode(), event.to_json(), **placed
    )


def last_event(
    consumer: Consumer, department: str, topic: str, batch: int = 50, chain: str | None = None
) -> AuditEvent | None:
    """The department's newest audit event (of ``chain``; None: its own), read backwards from
    the end of the partition its key is in.

    Key partitioning puts a department's events in that one partition while the topic's
    partition count stays as it is. An event found there placed by today's count is the newest.
    None found there is an answer too when every partition's first record was placed by today's
    count (the count never changed while they were written); otherwise (events of before the
    ``govbus-partitions`` header, or a topic grown since) every partition is read back and the
    newest window wins.
    """
    partitions = _partitions(consumer, topic)
    count = len(partitions)
    home = partition_of(department, count)
    newest, placed_by = _newest_in(consumer, topic, home, department, chain, batch)
    if newest is not None and placed_by == count:
        return newest
    if newest is None and all(
        _placed_by(first) == count
        for p in partitions
        for first in _read_range(consumer, topic, p, *_first_offset(consumer, topic, p))
    ):
        return None
    found = [newest] if newest is not None else []
    for p in partitions:
        if p != home and (elsewhere := _newest_in(consumer, topic, p, department, chain, batch)[0]):
            found.append(elsewhere)
    return max(found, key=lambda e: e.window_end, default=None)


def _newest_in(
    consumer: Consumer, topic: str, partition: int, department: str, chain: str | None, batch: int
) -> tuple[AuditEvent | None, int | None]:
    """The newest event of the department's ``chain`` in one partition, read backwards in
    doubling windows, and the partition count it was placed by (None: not named)."""
    low, high = _watermarks(consumer, topic, partition)
    end, step = high, batch
    while end > low:
        start = max(low, end - step)
        mine = _own_events(_read_range(consumer, topic, partition, start, end), department, chain)
        if mine:
            return mine[-1]
        end, step = start, step * 2
    return None, None


def _first_offset(consumer: Consumer, topic: str, partition: int) -> tuple[int, int]:
    """[low, low + 1): the partition's first record (nothing for an empty partition)."""
    low, high = _watermarks(consumer, topic, partition)
    return low, min(low + 1, high)


def _placed_by(msg: Any) -> int | None:
    """The partition count named in a record's ``govbus-partitions`` header, if any."""
    named = dict(msg.headers() or ()).get(PARTITIONS_HEADER)
    try:
        return int(named) if named is not None else None
    except ValueError:
        return None


def read_audit(
    settings: Settings, department: str | None = None, naming: Naming = NAMING
) -> list[tuple[int, AuditEvent]]:
    """Every audit event (of one department, if given) with its offset, in topic order.

    Reads with the admin's credentials, without a consumer group (nothing is committed).
    """
    out = _events(read_all(settings, naming.audit_topic))
    if department is not None:
        out = [(o, e) for o, e in out if e.department == department]
    return out


def read_all(settings: Settings, topic: str) -> list[Any]:
    """Every message of ``topic`` as it is now, partition by partition, read with the admin's
    credentials without a consumer group (nothing is committed)."""
    consumer = kafka_clients.consumer(
        settings,
        settings.admin_username,
        kafka_clients.admin_password_of(settings),
        "govbus-audit-reader",
        **{"enable.partition.eof": True},
    )
    try:
        out: list[Any] = []
        for partition in _partitions(consumer, topic):
            low, high = _watermarks(consumer, topic, partition)
            out.extend(_read_range(consumer, topic, partition, low, high))
    finally:
        consumer.close()
    return out
