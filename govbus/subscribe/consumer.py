"""A department subscribes to one resource: checks first, then at-least-once delivery.

Before anything reaches the broker the subscription is checked against the catalog (the
measures' share types): the department must be registered, the stated purpose one the
resource allows, a 不予共享 resource is read only by its provider, and a 有条件共享 resource
needs an approved, unexpired share request (``Grant``) given for the stated purpose (article
18: the purpose is bound to the grant, not only to the catalog), and the read names the case
number (办件编号) and the end user (经办人) it serves, which the usage audit records. The
broker's ACLs enforce who reads what (the reconciler derives them from the catalog and grants);
the checks here refuse early with an answer that says what to do.

Which topic: a grant for part of a resource's items opens only the grant view of that item set
(``gov.<code>.items.<digest>``, kept by the projector app; the broker refuses the full topic),
so the subscriber reads that topic, with that view's schema, by itself. Among several grants
for the stated purpose the one with the most items is used (then the longest-lasting).

Delivery is at least once: an offset is committed only after the handler returned for that
record (every ``commit_every`` records, at each audit event and at the end). A handler that
raises leaves its record uncommitted, so the next run delivers it again.

Records are Avro single-object encoded (govbus/vocabulary/wire.py). Each is read with the resource's
schema of the CURRENT catalog as reader and the schema it was written with (found by its
fingerprint among the current and earlier catalog versions) as writer, so producers may still
write an older version of the resource. A fingerprint we do not know means the producer uses a
newer catalog than ours: the run stops with that fingerprint named (consumers upgrade first).

Usage is audited (audit.py): which records were handed to the application, per audit window,
and at least one event per run (a session that got no record too), so every read session the
broker sees (govbus.subscribe.evidence) has its declared purpose.

A record that is no usable record of the resource (bytes that are no Avro single object, a
record of another resource) is set aside on ``govbus.quarantine`` with where, whose and why
(govbus/vocabulary/quarantine.py), counted against its provider, and passed (its offset is
committed): one bad record never stops a subscriber. If the quarantine write is refused the
run stops at that record (nothing is skipped unrecorded).

The consumer lag (``govbus_consumer_lag{group,topic,partition}``, govbus/vocabulary/metrics.py)
is set for every assigned partition every ``lag_interval`` s and when ``run`` returns: the
partition's high watermark minus the offset after the last record handed over (before the first,
the group's committed offset, or the partition's start when the group has none).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, get_args

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from govbus.subscribe.audit import GENESIS, AuditEvent, GrantRef, last_event, write_event
from govbus.subscribe.status import StatusError, VerificationStatus
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary import metrics
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.errors import GovbusError, UserError
from govbus.vocabulary.grants import Grant, granted_items
from govbus.vocabulary.quarantine import QuarantineEntry, send_quarantined
from govbus.vocabulary.session import DepartmentSession
from govbus.vocabulary.spec import CatalogSpec, Department, Purpose, Resource
from govbus.vocabulary.wire import SchemaCatalog, decode_single_object
from stream_apps.projection.views import (
    ViewError,
    grant_view_resource,
    grant_view_schema_catalog,
    key_is_public,
    public_view_resource,
    view_schema_catalog,
)

PURPOSES: tuple[str, ...] = get_args(Purpose)
VIEWS = ("public",)  # article 10 public views (stream_apps.projection.views)
_POLL = 0.5
_BATCH = 500


class SubscribeError(UserError, RuntimeError):
    """The subscription is refused or cannot go on; the message says why and what to do."""


class _Unusable(GovbusError):
    """The record is no usable record of the resource: quarantine it (the message: why)."""


@dataclass(frozen=True)
class Record:
    """One record as the application gets it: the payload and where it came from."""

    key: str | None
    value: dict[str, Any] | None  # the payload; None for a delete (tombstone)
    provider: str  # 统一社会信用代码 of the providing department
    resource_code: str
    catalog_version: int | None  # None for a bare tombstone (no envelope)
    event_time: dt.datetime | None
    trace_id: str | None
    partition: int
    offset: int
    under_verification: bool = False


Handler = Callable[[Record], None]


def _registered(
    spec: CatalogSpec, department_id: str, resource_code: str
) -> tuple[Department, Resource]:
    """The subscribing department and the resource, both in the catalog, or SubscribeError."""
    dept = spec.department_by_id(department_id)
    if dept is None:
        raise SubscribeError(
            f"department {department_id!r} is not registered in the catalog; register it (with "
            "its 统一社会信用代码) before subscribing"
        )
    resource = spec.resource(resource_code)
    if resource is None:
        raise SubscribeError(
            f"resource {resource_code} is not in the catalog (政务信息资源目录); find the code "
            "with `govbus catalog search` or `govbus catalog show`"
        )
    return dept, resource


def check_subscription(
    spec: CatalogSpec,
    department_id: str,
    resource_code: str,
    purpose: str,
    grants: Iterable[Grant] = (),
    now: dt.datetime | None = None,
) -> tuple[Department, Resource, Grant | None]:
    """The department, the resource and the grant relied on; raises SubscribeError if refused."""
    dept, resource = _registered(spec, department_id, resource_code)
    what = f"resource {resource.code} {resource.name}"
    own = resource.provider == dept.code
    if resource.share_type == "conditional" and not own:
        allowed: tuple[str, ...] = resource.purposes
    else:
        allowed = PURPOSES
    if purpose not in allowed:
        listed = ", ".join(allowed) if allowed else "none (the catalog lists no purpose)"
        raise SubscribeError(
            f"{what}: purpose {purpose!r} is not allowed (article 18: shared data is used "
            f"only for the stated purpose); allowed purposes: {listed}"
        )
    if own:
        return dept, resource, None
    if resource.share_type == "none":
        basis = resource.legal_basis or "not recorded in the catalog"
        raise SubscribeError(
            f"{what} is not shared (不予共享): legal basis {basis}; the provider can be asked "
            "for negotiation (协商) under the measures"
        )
    if resource.share_type == "unconditional":
        return dept, resource, None
    now = now or dt.datetime.now(dt.UTC)
    mine = [
        g
        for g in grants
        if g.department_code == dept.code and g.resource_code == resource.code and g.valid_at(now)
    ]
    if not mine:
        conditions = resource.share_conditions or "see the catalog"
        raise SubscribeError(
            f"{what} is shared on conditions (有条件共享: {conditions}) and {dept.name} "
            f"({dept.id}) holds no valid approved share request for "
            f"it; apply with `govbus request {resource.code} --department {dept.id} "
            f"--purpose {purpose} --duty <the duty it serves> --until <YYYY-MM-DD>` and "
            "subscribe once the provider approved it and `govbus apply` ran"
        )
    bound = [g for g in mine if g.purpose is None or g.purpose == purpose]
    if not bound:
        held = "; ".join(
            f"grant {g.grant_id if g.grant_id is not None else '(unnumbered)'}: purpose {g.purpose}"
            for g in mine
        )
        raise SubscribeError(
            f"{what}: purpose {purpose!r} is not the purpose any of {dept.name}'s grants for it "
            f"was given for ({held}); article 18: shared data is used only for the purpose "
            "approved: read with that purpose, or apply for a grant for this one with "
            f"`govbus request {resource.code} --department {dept.id} --purpose {purpose} ...`"
        )
    # The widest grant (most items; none named: all), then the one lasting longest.
    never = dt.datetime.max.replace(tzinfo=dt.UTC)
    grant = max(
        bound,
        key=lambda g: (
            len(resource.items) if not g.items else len(set(g.items)),
            g.expires_at or never,
        ),
    )
    return dept, resource, grant


_AUDIT_FIELD_MAX = 64


def check_audit_field(name: str, label: str, value: str | None, what: str) -> str:
    """A case number or end user, stripped; SubscribeError if missing or unusable."""
    text = (value or "").strip()
    flag = "--" + name.replace("_", "-")
    if not text:
        raise SubscribeError(
            f"{what}: a read under a grant must name its {label}, which the usage audit records "
            f"(article 18); pass {flag} (SDK: Subscriber(..., {name}=...))"
        )
    if len(text) > _AUDIT_FIELD_MAX or not text.isprintable():
        raise SubscribeError(
            f"{what}: {label} {text[:80]!r} is not usable: at most {_AUDIT_FIELD_MAX} printable "
            "characters"
        )
    return text


def check_view_subscription(
    spec: CatalogSpec, department_id: str, resource_code: str, purpose: str, view: str
) -> tuple[Department, Resource]:
    """The department and the view's derived resource; raises SubscribeError if refused.

    A public view is for every registered department (article 10): no share request needed,
    any purpose of the measures.
    """
    if view not in VIEWS:
        raise SubscribeError(f"unknown view {view!r}; known views: {', '.join(VIEWS)}")
    dept, resource = _registered(spec, department_id, resource_code)
    if purpose not in PURPOSES:
        raise SubscribeError(f"purpose {purpose!r} is not one of {', '.join(PURPOSES)}")
    try:
        return dept, public_view_resource(resource)
    except ViewError as exc:
        raise SubscribeError(f"{exc}; subscribe to the resource itself instead") from None


class _Window:
    """What was handed to the application since the last audit event."""

    def __init__(self) -> None:
        self.start = dt.datetime.now(CHINA_TZ)
        self.count = 0
        self.ranges: dict[int, tuple[int, int]] = {}
        self.opened = time.monotonic()

    def add(self, partition: int, offset: int) -> None:
        self.count += 1
        first, last = self.ranges.get(partition, (offset, offset))
        self.ranges[partition] = (min(first, offset), max(last, offset))


class Subscriber:
    """Consume one resource as one department, for one stated purpose."""

    def __init__(
        self,
        session: DepartmentSession,
        resource_code: str,
        purpose: str,
        *,
        group_suffix: str = "default",
        history: Iterable[CatalogSpec] = (),
        audit_every: int = 1000,
        audit_interval: float = 10.0,
        commit_every: int = 100,
        now: dt.datetime | None = None,
        view: str | None = None,
        verification_status: bool = False,
        lag_interval: float = 5.0,
        case_number: str | None = None,
        end_user: str | None = None,
        instance_id: str | None = None,
    ) -> None:
        """Checks the subscription (raises SubscribeError when refused); connects in ``run``.

        ``history`` are earlier catalog versions: their schemas decode records producers
        wrote before the current version. The session's ``naming`` gives the topic names (the
        resource's ``gov.<code>``, the audit topic); its ``grants`` open conditional resources.
        ``view="public"`` reads the resource's article 10 public view (``gov.<code>.public``)
        instead: no grant needed.

        With ``verification_status`` each Record's ``under_verification`` says whether the
        record has an open dispute (article 19), read from ``gov.<code>.status``.

        ``case_number`` (办件编号) and ``end_user`` (经办人) are required for a read under a
        grant and recorded in every audit event of the run (optional otherwise, recorded
        when given). A grant for part of the items is read from its grant view.

        ``instance_id`` makes the consumer a static group member (Kafka's
        ``group.instance.id``): restarted under the same id, it gets its partitions back at
        once instead of after the session timeout (45 s); a second consumer under the same id
        is fenced by the broker.
        """
        if view is not None and verification_status:
            # The status topic is keyed by the record's own key, which a view may pseudonymise.
            raise SubscribeError(
                "verification status is available for the resource itself, not for a view; "
                "subscribe without the view to see records under verification"
            )
        spec, naming, department_id = session.spec, session.naming, session.department_id
        if view is None:
            self.department, self.resource, self.grant = check_subscription(
                spec, department_id, resource_code, purpose, session.grants, now
            )
        else:
            self.department, self.resource = check_view_subscription(
                spec, department_id, resource_code, purpose, view
            )
            self.grant = None
        self.session = session
        self.purpose = purpose
        self.naming = naming
        self.group_suffix = group_suffix
        self.group_id = naming.group_prefix(department_id) + group_suffix
        self.instance_id = instance_id
        code = self.resource.code
        what = f"resource {code} {self.resource.name}"
        self.case_number, self.end_user = case_number, end_user
        if self.grant is not None:
            self.case_number = check_audit_field(
                "case_number", "case number (办件编号)", case_number, what
            )
            self.end_user = check_audit_field("end_user", "end user (经办人)", end_user, what)
        self.topic = naming.public_view_topic(code) if view else naming.resource_topic(code)
        self.schemas = (view_schema_catalog if view else SchemaCatalog.build)(spec, history)
        grant = self.grant
        items = granted_items(grant, self.resource) if grant is not None else None
        if grant is not None and items is not None:
            if not items:
                raise SubscribeError(
                    f"{what}: none of the items granted ({', '.join(grant.items)}) is in "
                    "the current catalog version; apply for the items it has now"
                )
            if verification_status and not key_is_public(self.resource, items):
                raise SubscribeError(
                    f"{what}: the grant covers items {', '.join(items)}, which do not include "
                    "the record key, so its view's keys are pseudonyms and the verification "
                    "status (keyed by the record key) cannot be matched; read without it"
                )
            self.topic = naming.grant_view_topic(code, items)
            self.schemas = grant_view_schema_catalog(spec, code, items, history)
            self.resource = grant_view_resource(self.resource, items)
        self.audit_topic = naming.audit_topic
        self.audit_every = audit_every
        self.audit_interval = audit_interval
        self.commit_every = commit_every
        self._head: str | None = None  # chain head, read from the audit topic on first run
        self._stopping = False
        self.audit_events: list[AuditEvent] = []  # emitted by this subscriber, for callers
        self.quarantine_topic = naming.quarantine_topic
        self.quarantined = 0  # records this subscriber set aside (all runs)
        self.status_topic = naming.status_topic(code) if verification_status else None
        self.lag_interval = lag_interval

    def stop(self) -> None:
        """Ask a running ``run`` to finish after the current record (e.g. from a signal)."""
        self._stopping = True

    # --- the loop --------------------------------------------------------------------------------

    def run(
        self,
        handler: Handler,
        max_records: int | None = None,
        timeout: float | None = None,
        *,
        before_commit: Callable[[], None] | None = None,
    ) -> int:
        """Hand records to ``handler`` until ``max_records`` or ``timeout`` s without a record.

        Returns how many records the handler processed. Raises SubscribeError on a broker
        refusal or an undecodable record, and re-raises what the handler raised; offsets of
        records the handler finished are committed in every case.

        ``before_commit`` is called before every offset commit, and the offsets are committed
        only if it returns: a handler that keeps records (e.g. a front-end agent's database
        transaction, connectors/sink.py) makes them durable there. With it, offsets are also
        committed whenever the records that had arrived are all handed over, so the handler
        keeps at most ``commit_every`` records, and a lone record is not kept waiting.
        """
        self._stopping = False
        status = self._status()  # first: nothing else is open if it cannot be read
        consumer = self._consumer()
        producer = self.session.producer()
        if self._head is None:
            self._head = self._read_head(consumer)
        window = _Window()
        audited_before = len(self.audit_events)
        done: dict[int, int] = {}  # partition -> next offset to commit
        pending = 0
        handled = 0
        idle_since = lag_at = time.monotonic()
        consumed = metrics.RECORDS_CONSUMED.labels(
            resource=self.resource.code, department=self.department.id
        )
        try:
            consumer.subscribe([self.topic])
            while not self._stopping and (max_records is None or handled < max_records):
                if timeout is not None and time.monotonic() - idle_since > timeout:
                    break
                want = _BATCH if max_records is None else min(_BATCH, max_records - handled)
                got = False
                arrived = kafka_clients.arrived(consumer, want, _POLL)
                for msg in arrived:
                    if self._stopping:
                        break  # the rest is neither handed over nor committed: read next run
                    if not self._check(msg):
                        continue
                    got = True
                    try:
                        record = self._record(msg)
                    except _Unusable as exc:
                        self._quarantine(producer, msg, str(exc))
                        done[int(msg.partition() or 0)] = int(msg.offset() or 0) + 1
                        self.quarantined += 1
                        continue
                    if status is not None:
                        record = replace(record, under_verification=status(record.key))
                    window.add(record.partition, record.offset)  # handed over: it counts as used
                    handler(record)
                    handled += 1
                    consumed.inc()
                    done[record.partition] = record.offset + 1
                    pending += 1
                    if pending >= self.commit_every:
                        self._commit(consumer, done, before_commit)
                        pending = 0
                    if (
                        window.count >= self.audit_every
                        or time.monotonic() - window.opened >= self.audit_interval
                    ):
                        self._commit(consumer, done, before_commit)
                        window = self._audit(producer, window)
                if before_commit is not None and pending and len(arrived) < want:
                    # Caught up (less arrived than asked for): commit what the handler keeps
                    # now, so a lone record is not kept waiting; while catching up, batches
                    # are gathered up to commit_every.
                    self._commit(consumer, done, before_commit)
                    pending = 0
                if status is not None:
                    self._poll_status(status)  # disputes opened or closed meanwhile
                if time.monotonic() - lag_at >= self.lag_interval:
                    self._record_lag(consumer, done)
                    lag_at = time.monotonic()
                if got:
                    idle_since = time.monotonic()
                elif window.count and time.monotonic() - window.opened >= self.audit_interval:
                    self._commit(consumer, done, before_commit)
                    window = self._audit(producer, window)
        finally:
            try:
                self._commit(consumer, done, before_commit)
                self._record_lag(consumer, done)
                # Every read session is audited, even one that got no record: the broker's
                # access evidence (govbus.subscribe.evidence) sees its fetches either way.
                if window.count or len(self.audit_events) == audited_before:
                    self._audit(producer, window)
            finally:
                consumer.close()
                if status is not None:
                    status.close()
        return handled

    def _status(self) -> VerificationStatus | None:
        """The records under verification, read to the end before the first record."""
        if self.status_topic is None:
            return None
        status = VerificationStatus(self.session, self.status_topic, self.group_suffix)
        try:
            status.load()
        except StatusError as exc:
            status.close()
            raise SubscribeError(str(exc)) from None
        return status

    def _poll_status(self, status: VerificationStatus) -> None:
        try:
            status.poll()
        except StatusError as exc:
            raise SubscribeError(str(exc)) from None

    def _consumer(self) -> Consumer:
        extra: dict[str, object] = {"enable.partition.eof": True}
        if self.instance_id:  # a static member: its restart takes its partitions back at once
            extra["group.instance.id"] = self.instance_id
        return self.session.consumer(self.group_suffix, **extra)

    def _check(self, msg: Message) -> bool:
        """True for a record, False for end-of-partition; a broker refusal raises."""
        err = msg.error()
        if err is None:
            return True
        if err.code() == KafkaError._PARTITION_EOF:
            return False
        raise SubscribeError(self._refusal(err))

    def _refusal(self, err: KafkaError) -> str:
        what = (
            f"department {self.department.id} reading resource {self.resource.code} "
            f"{self.resource.name} (topic {self.topic}, group {self.group_id})"
        )
        hint = ""
        if err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            hint = (
                "; the broker holds no READ ACL for the department on this topic: run the "
                "reconciler (`govbus apply`) after the share request was approved"
            )
        elif err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
            hint = f"; consumer groups of the department must start with {self.group_id!r}"
        elif err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            hint = "; the topic does not exist yet: run the reconciler (`govbus apply`)"
        return f"{what} refused by the broker: {err.str()}{hint}"

    def _record(self, msg: Message) -> Record:
        raw_key = msg.key()
        key = raw_key.decode("utf-8", "replace") if raw_key is not None else None
        partition, offset = int(msg.partition() or 0), int(msg.offset() or 0)
        value = msg.value()
        if value is None:  # a tombstone: the key's record was deleted
            return Record(
                key, None, self.resource.provider, self.resource.code, None, None, None,
                partition, offset,
            )  # fmt: skip
        envelope = self._decode(value, partition, offset)
        return Record(
            key=key,
            value=envelope["payload"],
            provider=envelope["provider"],
            resource_code=envelope["resource_code"],
            catalog_version=envelope["catalog_version"],
            event_time=envelope["event_time"],
            trace_id=envelope["trace_id"],
            partition=partition,
            offset=offset,
        )

    def _decode(self, data: bytes, partition: int, offset: int) -> dict[str, Any]:
        where = (
            f"resource {self.resource.code} {self.resource.name}, topic {self.topic} partition "
            f"{partition} offset {offset}"
        )
        try:
            decoded: dict[str, Any] = decode_single_object(data, self.schemas, reader=self.resource)
        except KeyError as exc:
            raise SubscribeError(
                f"{where}: written with schema fingerprint {exc.args[0]}, which no catalog "
                "version known here has: the producer uses a newer catalog; update the catalog "
                "(`govbus catalog import`) and subscribe again"
            ) from None
        except (ValueError, EOFError) as exc:
            raise _Unusable(f"not a valid record: {exc}") from None
        if decoded["resource_code"] != self.resource.code:
            raise _Unusable(f"the record says it is resource {decoded['resource_code']}")
        return decoded

    def _quarantine(self, producer: Any, msg: Message, reason: str) -> None:
        entry = QuarantineEntry.of(
            topic=self.topic,
            partition=int(msg.partition() or 0),
            offset=int(msg.offset() or 0),
            provider=self.resource.provider,
            resource=self.resource.code,
            reader=self.department.id,
            reason=reason,
            key=msg.key(),
            value=msg.value(),
            headers=msg.headers(),
        )
        try:
            send_quarantined(producer, self.quarantine_topic, entry)
        except OSError as exc:
            raise SubscribeError(f"resource {self.resource.code}: {exc}") from None

    def _commit(
        self,
        consumer: Consumer,
        done: dict[int, int],
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        if not done:
            return
        if before_commit is not None:
            before_commit()
        offsets = [TopicPartition(self.topic, p, o) for p, o in sorted(done.items())]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            raise SubscribeError(self._refusal(exc.args[0])) from None

    def _record_lag(self, consumer: Consumer, done: dict[int, int]) -> None:
        """Set the lag gauge of every partition assigned to this consumer (see the module doc).

        The high watermark is the one the last fetch response brought (no request), asked of
        the broker only for a partition not fetched yet; the committed offsets are asked only
        for partitions with no record handed over in this run.
        """
        try:
            assigned = [tp for tp in consumer.assignment() if tp.topic == self.topic]
            if not assigned:
                return
            untouched = [tp for tp in assigned if tp.partition not in done]
            committed = {
                tp.partition: tp.offset
                for tp in (consumer.committed(untouched, timeout=10) if untouched else [])
            }
            for tp in assigned:
                low, high = consumer.get_watermark_offsets(tp, cached=True) or (-1, -1)
                position = done.get(tp.partition, committed.get(tp.partition, -1))
                if high < 0 or (position < 0 and low < 0):
                    low, high = consumer.get_watermark_offsets(tp, timeout=10) or (-1, -1)
                if high < 0:
                    continue  # the broker did not answer: the next update sets it
                if position < 0:
                    position = low  # no offset yet: auto.offset.reset is earliest
                metrics.CONSUMER_LAG.labels(
                    group=self.group_id, topic=tp.topic, partition=str(tp.partition)
                ).set(max(0, high - position))
        except KafkaException:
            return  # a gauge is not worth failing the delivery for; the next update retries

    # --- audit -----------------------------------------------------------------------------------

    def _read_head(self, consumer: Consumer) -> str:
        try:
            event = last_event(consumer, self.department.id, self.audit_topic)
        except Exception as exc:
            raise SubscribeError(
                f"department {self.department.id}: cannot read its usage audit chain from "
                f"{self.audit_topic} ({exc}); every department needs READ, WRITE and DESCRIBE "
                "on it (the reconciler grants them)"
            ) from None
        return event.hash if event is not None else GENESIS

    def _audit(self, producer: Any, window: _Window) -> _Window:
        grant = self.grant
        event = AuditEvent(
            department=self.department.id,
            resource=self.resource.code,
            purpose=self.purpose,
            grant=GrantRef(
                grant.resource_code, grant.expires_at, id=grant.grant_id, items=grant.items
            )
            if grant
            else None,
            record_count=window.count,
            ranges=dict(window.ranges),
            window_start=window.start,
            window_end=dt.datetime.now(CHINA_TZ),
            prev_hash=self._head or GENESIS,
            case_number=self.case_number,
            end_user=self.end_user,
        ).sealed()
        reason = write_event(producer, self.audit_topic, event)
        if reason is not None:
            raise SubscribeError(
                f"department {self.department.id}: usage audit event for {self.resource.code} "
                f"not written to {self.audit_topic}: {reason}; every department needs WRITE "
                "and DESCRIBE on it (the reconciler grants them)"
            )
        self._head = event.hash
        self.audit_events.append(event)
        return _Window()
