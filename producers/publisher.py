"""A providing department publishes a resource's records: validated, keyed, Avro on the wire.

One data, one source: only the resource's provider (提供部门) may publish it. The broker's ACLs
enforce that; ``Publisher`` checks it first so the refusal says which department provides the
resource instead of an authorization error code.

Each record is validated against the catalog (producers/validate.py):

- a valid record is wrapped in the envelope (provider, resource code, catalog version, op
  UPSERT, event time, trace id) and produced to ``gov.<code>``, keyed by its
  one-data-one-source key (``record_key``), so the compacted topic keeps one current record
  per key;
- an invalid record goes, as JSON, to the department's dead-letter topic ``dlq.<id>`` with
  every rule it breaks (and its ``_origin``, if it has one: where it came from, e.g. a
  front-end table and primary key). The record is kept as given, personal identifiers
  included: it is needed to fix it, and only the department (and the platform operator) can
  read its DLQ.

Deletes are tombstones (null value) with the record key.

Delivery is checked, never assumed: after producing, the producer is flushed and every
delivery report collected. A failed delivery is listed in the report and ``PublishError`` is
raised at the end naming the first failure's reason (e.g. TOPIC_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import functools
import json
import multiprocessing
import os
import queue
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from govbus.vocabulary import metrics, wire
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.errors import UserError
from govbus.vocabulary.schemas import EncodeError, timestamp
from govbus.vocabulary.session import DepartmentSession
from govbus.vocabulary.spec import Department, Resource
from govbus.vocabulary.textfiles import resolve_encoding
from producers.validate import (
    RecordError,
    avro_payload,
    record_key,
    validate_key,
    validate_record,
)

__all__ = [
    "DeliveryFailure",
    "PublishError",
    "PublishReport",
    "Publisher",
    "RecordsFileError",
    "TraceIds",
    "coerce_csv_row",
    "read_records",
]

FLUSH_TIMEOUT = 60.0
METRICS_EVERY = 1000
# Records produced between two polls for delivery reports: a poll per record costs more than
# the reports it serves; the reports wait at most this many records (and flush serves the rest).
POLL_EVERY = 64
HEADER_SOURCE = "govbus-source"


class PublishError(UserError, RuntimeError):
    """Publishing is refused or a delivery failed; ``report`` holds what happened, if anything
    was produced."""

    def __init__(self, message: str, report: PublishReport | None = None) -> None:
        super().__init__(message)
        self.report = report


class RecordsFileError(UserError):
    """A records file cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class DeliveryFailure:
    """A record the broker did not acknowledge."""

    position: int | None  # record position (from 1); None when not known (a flush timeout)
    topic: str
    reason: str  # the Kafka error name and text, e.g. "TOPIC_AUTHORIZATION_FAILED: ..."


@dataclass
class PublishReport:
    resource: str
    delivered: int = 0
    dead_lettered: list[RecordError] = field(default_factory=list)
    failed: list[DeliveryFailure] = field(default_factory=list)

    @property
    def dead_lettered_records(self) -> int:
        return len({e.position for e in self.dead_lettered})


@dataclass
class _Pending:
    """Delivery reports of one publish call, filled by the producer's callbacks.

    Records and bytes are counted here and added to the metrics every ``METRICS_EVERY``
    deliveries and at the end (a counter update per record costs more than producing it).
    """

    report: PublishReport
    department: str
    produced: int = 0
    reported: int = 0
    uncounted_records: int = 0
    uncounted_bytes: int = 0
    latency: Any = None  # the resource's labelled DELIVERY_LATENCY child

    def __post_init__(self) -> None:
        self.latency = metrics.DELIVERY_LATENCY.labels(self.report.resource)

    def delivered(self, position: int, size: int, err: KafkaError | None, msg: Message) -> None:
        """Delivery report of a record of the resource topic (``size``: its value's bytes)."""
        self.reported += 1
        if err is not None:
            self.report.failed.append(DeliveryFailure(position, msg.topic() or "", _reason(err)))
            return
        self.report.delivered += 1
        # librdkafka's own measure: from produce() to the broker's acknowledgement.
        latency = msg.latency()
        if latency is not None:
            self.latency.observe(latency)
        self.uncounted_records += 1
        self.uncounted_bytes += size
        if self.uncounted_records >= METRICS_EVERY:
            self.count()

    def count(self) -> None:
        """Add the deliveries not yet counted to the metrics."""
        if self.uncounted_records:
            labels = (self.report.resource, self.department)
            metrics.RECORDS_PUBLISHED.labels(*labels).inc(self.uncounted_records)
            metrics.BYTES_PUBLISHED.labels(*labels).inc(self.uncounted_bytes)
            self.uncounted_records = self.uncounted_bytes = 0


# The variant nibble of an RFC 4122 UUID: 10xx, from any hex digit (its two low bits kept).
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


class TraceIds:
    """Random (version 4) UUIDs as text, the envelope's ``trace_id``: what ``str(uuid.uuid4())``
    gives, from the same 122 random bits, made 256 at a time (``uuid.uuid4`` costs a system
    call and an int conversion per id, more than encoding a record)."""

    def __init__(self) -> None:
        self._ids: list[str] = []

    def __call__(self) -> str:
        if not self._ids:
            h = os.urandom(16 * 256).hex()
            self._ids = [
                f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-4{h[i + 13 : i + 16]}-"
                f"{_VARIANT[h[i + 16]]}{h[i + 17 : i + 20]}-{h[i + 20 : i + 32]}"
                for i in range(0, len(h), 32)
            ]
        return self._ids.pop()


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)  # exact: money must not become a float
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return str(value)


def _reason(err: KafkaError) -> str:
    return f"{err.name()}: {err.str()}"


def _produce(
    producer: Producer,
    topic: str,
    key: bytes,
    value: bytes | None,
    headers: wire.Headers,
    on_delivery: Callable[[KafkaError | None, Message], None],
) -> None:
    """``producer.produce``, waiting while the local queue is full; raises KafkaException when
    the client refuses the record itself (e.g. a message too large)."""
    while True:
        try:
            producer.produce(topic, value, key, headers=headers, on_delivery=on_delivery)
            return
        except BufferError:  # local queue full: serve delivery reports to make room
            producer.poll(0.1)


class Publisher:
    """Publishes records of the resources ``department_id`` provides.

    ``naming`` gives the topic names, ``gov.<code>`` and the dead-letter topic ``dlq.<id>``
    (tests pass a namespace of their own). Use as a context manager, or call ``close``.
    """

    def __init__(
        self, session: DepartmentSession, *, producer_config: dict[str, Any] | None = None
    ) -> None:
        self.session = session
        self.department: Department = session.department(PublishError, "publishing")
        self.spec = session.spec
        self.catalog_version = session.catalog_version
        self.naming = session.naming
        self.dlq = session.naming.dlq_topic(session.department_id)
        self._config = dict(producer_config or {})
        self._producer: Producer | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            self._producer = self.session.producer(**self._config)
        return self._producer

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(FLUSH_TIMEOUT)
            self._producer = None

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- checks ----------------------------------------------------------------------------------

    def catalogued(self, resource_code: str) -> Resource:
        """The resource of the session's catalog version; else PublishError."""
        resource = self.spec.resource(resource_code)
        if resource is None:
            raise PublishError(
                f"resource {resource_code} is not in catalog version {self.catalog_version}; "
                "check the 政务信息资源代码 (`govbus catalog search`)"
            )
        return resource

    def resource(self, resource_code: str) -> Resource:
        """The resource, if this department provides it; else PublishError saying who does."""
        resource = self.catalogued(resource_code)
        if resource.provider != self.department.code:
            provider = self.spec.department(resource.provider)
            who = f"{provider.name} ({provider.id})" if provider else resource.provider
            raise PublishError(
                f"department {self.department.id} ({self.department.name}) may not publish "
                f"resource {resource.code} {resource.name}: one data, one source — its provider "
                f"is {who}; nothing was produced"
            )
        return resource

    # --- publishing ------------------------------------------------------------------------------

    def publish(
        self,
        resource_code: str,
        records: Iterable[Mapping[str, Any]],
        *,
        source: str = "api",
        workers: int = 1,
    ) -> PublishReport:
        """Validate and produce ``records`` (positions count from 1); see the module doc.

        ``workers`` > 1 validates and encodes in that many processes, each record's key
        always in the same one, so per-key order holds (``publish_in_workers``); the report
        is one for all of them.
        """
        if workers > 1:
            return publish_in_workers(
                self.session,
                self.resource(resource_code),  # refused here, before any process starts
                enumerate(records, start=1),
                workers=workers,
                source=source,
                producer_config=self._config,
            )
        return self.publish_numbered(resource_code, enumerate(records, start=1), source=source)

    def publish_numbered(
        self,
        resource_code: str,
        records: Iterable[tuple[int, Mapping[str, Any]]],
        *,
        source: str = "api",
    ) -> PublishReport:
        """``publish`` of (position, record) pairs: the positions the report names."""
        resource, topic, pending, headers = self._start(resource_code, source)
        provider, version = self.department.code, self.catalog_version
        trace_id = TraceIds()
        where = f"resource {resource.code} {resource.name}: envelope"
        for position, record in records:
            errors = validate_record(resource, record, position)
            if not errors:
                try:
                    event_time = record.get("_event_time")
                    value = wire.encode_upsert(
                        resource,
                        provider=provider,
                        catalog_version=version,
                        event_time=timestamp(event_time, f"{where} field event_time")
                        if event_time
                        else dt.datetime.now(CHINA_TZ),
                        trace_id=trace_id(),
                        payload=avro_payload(resource, record),
                    )
                except (EncodeError, ValueError, TypeError) as exc:
                    # A gap between validation and the schema; fastavro raises ValueError or
                    # TypeError for a value of the wrong type.
                    message = f"record {position}: rule data-type — {exc}"
                    errors = [RecordError(position, None, "data-type", message)]
            if errors:
                self._dead_letter(resource, record, position, errors, source, pending)
                continue
            self._produce(pending, position, topic, record_key(resource, record), value, headers)
        return self._finish(pending)

    def delete(
        self, resource_code: str, keys: Iterable[Mapping[str, Any]], *, source: str = "api"
    ) -> PublishReport:
        """Produce tombstones for the records with these keys (mappings of the key items)."""
        resource, topic, pending, base_headers = self._start(resource_code, source)
        for position, key in enumerate(keys, start=1):
            errors = validate_key(resource, key, position)
            if errors:
                self._dead_letter(resource, key, position, errors, source, pending)
                continue
            self._produce(pending, position, topic, record_key(resource, key), None, base_headers)
        return self._finish(pending)

    def reject(
        self,
        resource_code: str,
        rejected: Iterable[tuple[int, Mapping[str, Any], list[RecordError]]],
        *,
        source: str = "api",
    ) -> PublishReport:
        """Dead-letter records the caller found unusable before validation, e.g. a front-end
        table's row with a text column that does not decode (connectors/): each (position,
        record, errors) goes to the department's dead-letter topic as ``publish`` sends an
        invalid record; the report counts them, and raises if one was not acknowledged."""
        resource, _topic, pending, _headers = self._start(resource_code, source)
        for position, record, errors in rejected:
            self._dead_letter(resource, record, position, errors, source, pending)
        return self._finish(pending)

    def _start(
        self, resource_code: str, source: str
    ) -> tuple[Resource, str, _Pending, wire.Headers]:
        """The resource (provider checked), its topic, an empty report, the common headers."""
        resource = self.resource(resource_code)
        headers: wire.Headers = [
            *wire.headers(resource, self.catalog_version),
            (HEADER_SOURCE, source.encode()),
        ]
        pending = _Pending(PublishReport(resource.code), self.department.id)
        return resource, self.naming.resource_topic(resource.code), pending, headers

    def _dead_letter(
        self,
        resource: Resource,
        record: Mapping[str, Any],
        position: int,
        errors: list[RecordError],
        source: str,
        pending: _Pending,
    ) -> None:
        for error in errors:
            metrics.VALIDATION_FAILURES.labels(resource.code, error.rule).inc()
        pending.report.dead_lettered.extend(errors)
        letter = {
            "resource": resource.code,
            "resource_name": resource.name,
            "department": self.department.id,
            "catalog_version": self.catalog_version,
            "source": source,
            "position": position,
            "errors": [{"item": e.item, "rule": e.rule, "message": e.message} for e in errors],
            "record": {k: v for k, v in record.items() if k != "_origin"},
        }
        if "_origin" in record:  # where it came from, e.g. a front-end table and primary key
            letter["origin"] = record["_origin"]
        value = json.dumps(letter, ensure_ascii=False, default=_json_default).encode()

        def counted(err: KafkaError | None, _msg: Message | None) -> None:
            if err is None:
                metrics.DEAD_LETTERS.labels(self.department.id, resource.code).inc()
            else:
                pending.report.failed.append(DeliveryFailure(position, self.dlq, _reason(err)))

        self._send(pending, self.dlq, resource.code.encode(), value, [], counted)

    def _produce(
        self,
        pending: _Pending,
        position: int,
        topic: str,
        key: bytes,
        value: bytes | None,
        headers: wire.Headers,
    ) -> None:
        """Produce a record (None: a tombstone) to the resource topic; reports to ``pending``."""
        producer = self.producer
        size = len(value) if value else 0
        try:
            _produce(
                producer, topic, key, value, headers,
                functools.partial(pending.delivered, position, size),
            )  # fmt: skip
        except KafkaException as exc:  # refused locally, e.g. a message too large
            pending.report.failed.append(DeliveryFailure(position, topic, _reason(exc.args[0])))
            return
        pending.produced += 1
        if pending.produced % POLL_EVERY == 0:
            producer.poll(0)

    def _send(
        self,
        pending: _Pending,
        topic: str,
        key: bytes,
        value: bytes | None,
        headers: wire.Headers,
        callback: Callable[[KafkaError | None, Message | None], None],
    ) -> None:
        def reported(err: KafkaError | None, msg: Message) -> None:
            pending.reported += 1
            callback(err, msg)

        try:
            _produce(self.producer, topic, key, value, headers, reported)
        except KafkaException as exc:  # refused locally, e.g. a message too large
            callback(exc.args[0], None)
            return
        pending.produced += 1
        self.producer.poll(0)

    def _finish(self, pending: _Pending) -> PublishReport:
        left = self.producer.flush(FLUSH_TIMEOUT)
        pending.count()
        report = pending.report
        unreported = pending.produced - pending.reported
        if left or unreported:
            report.failed.append(
                DeliveryFailure(
                    None,
                    "",
                    f"{max(left, unreported)} record(s) not acknowledged within "
                    f"{FLUSH_TIMEOUT:.0f} s (is the broker reachable?)",
                )
            )
        return _delivered_or_raise(report)


def _delivered_or_raise(report: PublishReport) -> PublishReport:
    """``report`` if every record was delivered; else PublishError naming the first failure."""
    if report.failed:
        first = report.failed[0]
        where = f"record {first.position}" if first.position else "a record"
        raise PublishError(
            f"resource {report.resource}: {len(report.failed)} record(s) not delivered "
            f"({report.delivered} delivered); first failure: {where} to topic "
            f"{first.topic or '?'}: {first.reason}",
            report,
        )
    return report


# --- publishing in worker processes --------------------------------------------------------------

_CHUNK = 500  # records per message to a worker: one pickle per record would cost more
_QUEUE_CHUNKS = 8  # chunks queued per worker before the reader waits (bounded memory)


def _shard(resource: Resource, record: Mapping[str, Any], workers: int) -> int:
    """The worker of a record: by its key, so every record of a key goes to one worker."""
    try:
        key = record_key(resource, record)
    except (KeyError, TypeError, ValueError):  # no valid key: dead-lettered wherever it goes
        key = repr(sorted(record.items(), key=lambda kv: str(kv[0]))).encode()
    return zlib.crc32(key) % workers


def _worker(
    session: DepartmentSession,
    resource_code: str,
    source: str,
    producer_config: dict[str, Any],
    inbox: Any,
    outbox: Any,
) -> None:
    """One worker process: publishes the chunks it is dealt until ``None``; sends its report."""

    def numbered() -> Iterator[tuple[int, Mapping[str, Any]]]:
        while (chunk := inbox.get()) is not None:
            yield from chunk

    try:
        with Publisher(session, producer_config=producer_config) as publisher:
            report = publisher.publish_numbered(resource_code, numbered(), source=source)
    except PublishError as exc:
        report = exc.report or PublishReport(
            resource_code, failed=[DeliveryFailure(None, "", str(exc))]
        )
        for _ in iter(inbox.get, None):  # drain, so the reader never blocks on a full queue
            pass
    outbox.put(report)


def publish_in_workers(
    session: DepartmentSession,
    resource: Resource,
    records: Iterable[tuple[int, Mapping[str, Any]]],
    *,
    workers: int,
    source: str = "api",
    producer_config: dict[str, Any] | None = None,
) -> PublishReport:
    """``Publisher.publish_numbered`` in ``workers`` processes; one report for all of them.

    Validation and Avro encoding are Python and hold the GIL: one process validates and
    encodes on one core. Here this process reads the records and deals them, by a hash of the
    record key, to ``workers`` processes, each with a ``Publisher`` (its own producer) on the
    same session. A key's records all go to one worker, in order, and its idempotent producer
    keeps them in order in the key's partition: per-key order holds, as with one process.

    Hand-written because neither confluent-kafka nor the standard library has a keyed pool:
    ``multiprocessing.Pool.imap`` deals chunks round-robin, which reorders a key's records.
    The workers start from a forkserver (a clean process: this one may hold Kafka clients,
    whose threads must not be forked) with the publisher module preloaded.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    inboxes = [context.Queue(_QUEUE_CHUNKS) for _ in range(workers)]
    outbox = context.Queue()
    config = dict(producer_config or {})
    processes = [
        context.Process(
            target=_worker,
            args=(session, resource.code, source, config, inbox, outbox),
            name=f"govbus-publish-{n}",
            daemon=True,
        )
        for n, inbox in enumerate(inboxes)
    ]
    for process in processes:
        process.start()
    chunks: list[list[tuple[int, Mapping[str, Any]]]] = [[] for _ in range(workers)]
    lost = 0  # records dealt to a worker that died
    try:
        for position, record in records:
            n = _shard(resource, record, workers)
            chunks[n].append((position, record))
            if len(chunks[n]) >= _CHUNK:
                lost += _deal(inboxes[n], chunks[n], processes[n])
                chunks[n] = []
        for n, chunk in enumerate(chunks):
            if chunk:
                lost += _deal(inboxes[n], chunk, processes[n])
    finally:
        for n, inbox in enumerate(inboxes):
            _deal(inbox, None, processes[n])
    reports: list[PublishReport] = []
    while len(reports) < workers:
        try:
            reports.append(outbox.get(timeout=1.0))
        except queue.Empty:
            if not any(p.is_alive() for p in processes) and outbox.empty():
                break
    for process in processes:
        process.join(FLUSH_TIMEOUT)
    merged = _merged(resource.code, reports)
    if lost:
        merged.failed.append(DeliveryFailure(None, "", f"{lost} record(s) dealt to a dead worker"))
    if len(reports) < workers:
        merged.failed.append(
            DeliveryFailure(None, "", f"{workers - len(reports)} worker process(es) died")
        )
    return _delivered_or_raise(merged)


def _deal(inbox: Any, chunk: list[Any] | None, process: Any) -> int:
    """Put a chunk (None: the end) in a worker's queue; the records lost if the worker died."""
    while True:
        try:
            inbox.put(chunk, timeout=1.0)
            return 0
        except queue.Full:
            if not process.is_alive():
                return len(chunk or ())


def _merged(resource_code: str, reports: list[PublishReport]) -> PublishReport:
    """The workers' reports as one, dead letters and failures in record order."""
    merged = PublishReport(resource_code)
    for report in reports:
        merged.delivered += report.delivered
        merged.dead_lettered.extend(report.dead_lettered)
        merged.failed.extend(report.failed)
    merged.dead_lettered.sort(key=lambda e: e.position)
    merged.failed.sort(key=lambda f: (f.position is None, f.position or 0))
    return merged


# --- records files ------------------------------------------------------------------------------


_TRUE = {"true", "1", "yes", "y", "t", "是"}
_FALSE = {"false", "0", "no", "n", "f", "否"}


def coerce_csv_row(resource: Resource, row: Mapping[str, str]) -> dict[str, Any]:
    """A CSV row's text cells as the item's Python values (for CSV only: JSON has types).

    Empty cells are left out (absent). Cells that do not parse stay text, so validation
    reports them with their record position and item. Dates, date-times and base64 stay text
    (validation accepts ISO and base64 text).
    """
    out: dict[str, Any] = {}
    for name, cell in row.items():
        if cell is None or cell.strip() == "":
            continue
        item = resource.item(name)
        value: Any = cell
        text = cell.strip()
        try:
            if item is None:
                pass
            elif item.data_type in ("N", "B", "F"):
                value = float(text)
            elif item.data_type == "I":
                value = int(text)
            elif item.data_type == "Y":
                value = decimal.Decimal(text)
            elif item.data_type == "L" and text.lower() in _TRUE | _FALSE:
                value = text.lower() in _TRUE
        except (ValueError, decimal.InvalidOperation):
            value = cell
        out[name] = value
    return out


def read_records(
    path: str | Path, resource: Resource | None = None, *, encoding: str | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(position, record) from a JSON lines (.jsonl/.ndjson/.json) or CSV (.csv) file.

    Positions count records from 1 (blank lines are not records), the same positions
    ``Publisher.publish`` reports. JSON numbers with a fraction become ``Decimal`` (exact
    money). A CSV header names item codes; with ``resource`` given its cells are coerced to the
    items' types (``coerce_csv_row``).

    ``encoding`` None detects UTF-8 (BOM or not) or GB18030/GBK, as Excel on a Chinese Windows
    saves CSV (govbus/vocabulary/textfiles.py). The file is checked when this is called, before
    any record is read: a missing, binary or undecodable file raises here, naming where.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson", ".json"):
        raise RecordsFileError(
            f"{path}: unknown records format {suffix or '(no suffix)'}; use .jsonl (one JSON "
            "object per line) or .csv (header of item codes)"
        )
    codec = resolve_encoding(path, encoding)
    if suffix == ".csv":
        return _csv_records(path, codec, resource)
    return _json_records(path, codec)


def _csv_records(
    path: Path, codec: str, resource: Resource | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding=codec, newline="") as fh:
        reader = csv.DictReader(fh)
        position = 0
        try:
            for position, row in enumerate(reader, start=1):
                if None in row:
                    raise RecordsFileError(
                        f"{path}: record {position} (line {reader.line_num}) has more cells "
                        "than the header has columns"
                    )
                yield position, (coerce_csv_row(resource, row) if resource else dict(row))
        except csv.Error as exc:
            raise RecordsFileError(
                f"{path} line {reader.line_num} (record {position + 1}): not valid CSV: {exc}"
            ) from None


def _json_records(path: Path, codec: str) -> Iterator[tuple[int, dict[str, Any]]]:
    position = 0
    with path.open(encoding=codec) as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            position += 1
            try:
                record = json.loads(line, parse_float=decimal.Decimal)
            except json.JSONDecodeError as exc:
                raise RecordsFileError(
                    f"{path} line {line_no} (record {position}): not valid JSON: {exc.msg} "
                    f"at column {exc.colno}"
                ) from None
            if not isinstance(record, dict):
                raise RecordsFileError(
                    f"{path} line {line_no} (record {position}): expected a JSON object of "
                    f"item codes, got a {type(record).__name__}"
                )
            yield position, record
