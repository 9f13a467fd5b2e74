"""部门批量下载 (article 16): a resource's current state as a file, as of stated offsets.

``download`` reads, as the department itself (its SCRAM user: the broker's ACLs apply), every
partition of the resource's topic from its start to the high watermark it had when the
download began (the *stated offsets*, written to the manifest): the newest record per key
within those offsets is the snapshot, whatever is produced meanwhile. Deleted keys
(tombstones, DELETE envelopes) are left out. The department's view (``rights.view_for``)
decides the topic and the columns: ``full`` and ``granted`` for every item read ``gov.<code>``;
a grant for part of the items reads its grant view ``gov.<code>.items.<digest>`` (the only
topic of the resource the broker lets that department read: those items in clear, keyed like
the public view when the key is not among them); ``public`` reads the projection's
``gov.<code>.public``, already masked (the department needs no grant, and the broker lets it
read only that).

Files: ``csv`` (UTF-8 with a byte order mark, which Excel on a Chinese Windows opens
correctly; or GB18030 with ``encoding="gb18030"``), ``xlsx`` (one sheet per 1,000,000 rows),
``parquet`` (typed columns). Columns: ``key``, the visible items in catalog order, then
``provider``, ``catalog_version``, ``event_time``. Beside the file, ``<file>.manifest.json``
names the resource, catalog version, view, offsets, row count and the file's SHA-256; the
download is recorded in the department's own usage audit chain (article 18) with the same
offsets, row count and SHA-256.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from openpyxl import Workbook

from govbus.lookup.decode_pool import cell, csv_texts, decoded_rows, default_workers
from govbus.lookup.request import PURPOSES
from govbus.lookup.rights import View, view_for
from govbus.share.requests import ShareGrant
from govbus.subscribe.audit import (
    GENESIS,
    HEAD_READER_CONFIG,
    AuditEvent,
    GrantRef,
    last_event,
    write_event,
)
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.errors import ServiceUnavailable, UserError
from govbus.vocabulary.grants import granted_items
from govbus.vocabulary.session import DepartmentSession
from govbus.vocabulary.spec import CatalogSpec, InfoItem, Resource
from govbus.vocabulary.wire import SchemaCatalog
from stream_apps.projection.views import (
    grant_view_resource,
    grant_view_schema_catalog,
    public_view_resource,
    view_schema_catalog,
)

FORMATS = ("csv", "xlsx", "parquet")
ENCODINGS = ("utf-8-sig", "gb18030")
XLSX_SHEET_ROWS = 1_000_000  # a sheet holds 1,048,576 rows
_POLL = 10.0
_BATCH = 5000
# A download reads the whole topic: large fetches (1,000,000 records in 5.9 s instead of 7.0
# uncompressed; 1.7-1.8 s since the producers compress with lz4).
SNAPSHOT_READ_CONFIG: dict[str, Any] = {
    "enable.partition.eof": True,
    **kafka_clients.WHOLE_TOPIC_FETCHES,
}


class DownloadError(UserError):
    """The download is refused or cannot be made; the message says why and what to do."""


@dataclass(frozen=True)
class Manifest:
    resource: str
    resource_name: str
    department: str
    purpose: str
    view: str
    topic: str
    items: tuple[str, ...]
    catalog_version: int
    offsets: dict[int, tuple[int, int]]  # partition -> (from, to): records in [from, to)
    row_count: int
    format: str
    encoding: str | None
    file: str
    sha256: str
    created_at: str
    audit_event_hash: str = ""
    seconds: float = field(default=0.0, compare=False)
    # Where the seconds went (read, chain head, write, sha256, audit): said as progress and
    # printed by the benchmark; like ``seconds``, not part of the manifest file.
    phases: dict[str, float] = field(default_factory=dict, compare=False)

    def to_json(self) -> str:
        data = {k: v for k, v in self.__dict__.items() if k not in ("seconds", "phases")}
        data["offsets"] = {str(p): {"from": a, "to": b} for p, (a, b) in self.offsets.items()}
        data["items"] = list(self.items)
        return json.dumps(data, ensure_ascii=False, indent=1) + "\n"


# -- reading the snapshot -------------------------------------------------------------------------


def stated_offsets(consumer: Consumer, topic: str) -> dict[int, tuple[int, int]]:
    """Each partition's (low, high) watermarks now: the snapshot is what lies between."""
    meta = consumer.list_topics(topic, timeout=_POLL).topics.get(topic)
    err = meta.error if meta is not None else None
    if meta is None or err is not None:
        why = err.str() if err is not None else "no metadata"
        hint = ""
        if err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            hint = "; the broker does not let the department read it: run `govbus apply`"
        raise DownloadError(f"cannot read {topic}: {why}{hint}")
    out = {}
    for p in sorted(meta.partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=_POLL)
        out[p] = (int(low), int(high))
    return out


def latest_values(
    consumer: Consumer,
    topic: str,
    offsets: dict[int, tuple[int, int]],
    progress: Callable[[int], None] | None = None,
) -> dict[str, bytes | None]:
    """key -> newest value (None: deleted) of the records within the stated offsets."""
    pending = {p for p, (low, high) in offsets.items() if high > low}
    latest: dict[str, bytes | None] = {}
    if not pending:
        return latest
    consumer.assign([TopicPartition(topic, p, offsets[p][0]) for p in sorted(pending)])
    read = 0
    while pending:
        batch = kafka_clients.arrived(consumer, _BATCH, _POLL)
        if not batch:
            raise ServiceUnavailable(
                f"reading {topic}: no record within {_POLL:.0f} s while partitions "
                f"{sorted(pending)} were not read to their stated offsets"
            )
        for msg in batch:
            err = msg.error()
            p = int(msg.partition() or 0)
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    pending.discard(p)
                    continue
                raise DownloadError(f"reading {topic} partition {p}: {err.str()}")
            offset = int(msg.offset() or 0)
            high = offsets[p][1]
            if offset >= high:
                pending.discard(p)
                continue
            raw = msg.key()
            if raw is not None:
                latest[raw.decode("utf-8", "replace")] = msg.value()
            read += 1
            if offset >= high - 1:
                pending.discard(p)
        if progress is not None:
            progress(read)
    consumer.unassign()
    return latest


# -- writing the file -----------------------------------------------------------------------------


def columns(view: View) -> list[str]:
    return ["key", *view.items, "provider", "catalog_version", "event_time"]


def text_columns(view: View, resource: Resource) -> list[int]:
    """Columns whose values the csv module would not write as wanted: timestamps (ISO 8601 with
    a ``T``, as the lookup answers) and binary items (hex), besides ``event_time``. ``None`` is
    written empty, dates ISO, money exactly (``str``) by the csv module itself."""
    out = [len(view.items) + 3]  # event_time
    for n, code in enumerate(view.items, start=1):
        item = resource.item(code)
        if item is not None and code not in view.masked and item.data_type in ("T", "G"):
            out.append(n)
    return out


def write_csv(
    path: Path, header: list[str], texts: Iterable[tuple[str, int]], encoding: str
) -> int:
    """Write the header and the rows' CSV texts (``decode_pool.csv_texts``); the row count."""
    n = 0
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerow(header)
        for text, rows in texts:
            fh.write(text)
            n += rows
    return n


def write_xlsx(path: Path, header: list[str], rows: Iterator[list[Any]]) -> int:
    book = Workbook(write_only=True)
    sheet, n, in_sheet = None, 0, XLSX_SHEET_ROWS
    for values in rows:
        if in_sheet >= XLSX_SHEET_ROWS:
            sheet = book.create_sheet(f"data{n // XLSX_SHEET_ROWS + 1}")
            sheet.append(header)
            in_sheet = 0
        assert sheet is not None
        sheet.append([cell(v) for v in values])
        n += 1
        in_sheet += 1
    if sheet is None:
        book.create_sheet("data1").append(header)
    book.save(path)
    return n


def _arrow_type(item: InfoItem | None, masked: bool) -> Any:
    import pyarrow as pa  # 0.1 s: only a parquet download pays for it

    if item is None or masked:
        return pa.string()
    return {
        "I": pa.int64(), "N": pa.float64(), "F": pa.float64(), "B": pa.float64(),
        "L": pa.bool_(), "D": pa.date32(), "T": pa.timestamp("ms", tz="Asia/Shanghai"),
        "G": pa.binary(),
    }.get(item.data_type, pa.string())  # fmt: skip


def write_parquet(
    path: Path, header: list[str], rows: Iterator[list[Any]], view: View, resource: Resource
) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = [pa.field("key", pa.string())]
    for code in view.items:
        item = resource.item(code)
        fields.append(pa.field(code, _arrow_type(item, code in view.masked)))
    fields += [
        pa.field("provider", pa.string()),
        pa.field("catalog_version", pa.int64()),
        pa.field("event_time", pa.timestamp("ms", tz="Asia/Shanghai")),
    ]
    schema = pa.schema(fields)
    money = {i for i, f in enumerate(fields) if f.type == pa.string()}
    n = 0
    with pq.ParquetWriter(path, schema) as writer:
        chunk: list[list[Any]] = []

        def flush() -> None:
            cols: list[Sequence[Any]] = (
                list(zip(*chunk, strict=True)) if chunk else [[] for _ in fields]
            )
            arrays = [
                pa.array([cell(v) if i in money and v is not None else v for v in col], f.type)
                for i, (f, col) in enumerate(zip(fields, cols, strict=True))
            ]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            chunk.clear()

        for values in rows:
            chunk.append(values)
            n += 1
            if len(chunk) >= 100_000:
                flush()
        if chunk or n == 0:
            flush()
    return n


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- the whole download ---------------------------------------------------------------------------


def download(
    session: DepartmentSession,
    resource_code: str,
    purpose: str,
    grants: Sequence[ShareGrant],
    output: Path,
    *,
    fmt: str = "csv",
    encoding: str = "utf-8-sig",
    history: Sequence[CatalogSpec] = (),
    progress: Callable[[str], None] | None = None,
    workers: int | None = None,
) -> Manifest:
    """Write the snapshot, its manifest and the audit event; returns the manifest.
    ``workers``: processes decoding the records (govbus.lookup.decode_pool; default one per
    core)."""
    started = time.monotonic()
    if fmt not in FORMATS:
        raise DownloadError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    if encoding not in ENCODINGS:
        raise DownloadError(f"unknown encoding {encoding!r}; one of {', '.join(ENCODINGS)}")
    spec, naming = session.spec, session.naming
    dept = session.department(DownloadError, "downloading")
    resource = spec.resource(resource_code)
    if resource is None:
        raise DownloadError(
            f"resource {resource_code} is not in the catalog; find its code with "
            "`govbus catalog search`"
        )
    if purpose not in PURPOSES:
        raise DownloadError(f"purpose {purpose!r} is not one of {', '.join(PURPOSES)}")
    try:
        view = view_for(dept, resource, purpose, grants)
    except UserError as exc:
        raise DownloadError(str(exc)) from None
    public = view.kind == "public"
    topic = (
        naming.public_view_topic(resource.code) if public else naming.resource_topic(resource.code)
    )
    reader = public_view_resource(resource) if public else resource
    schemas = (view_schema_catalog if public else SchemaCatalog.build)(spec, history)
    items = granted_items(view.grant.as_acl_grant(), resource) if view.grant else None
    if items is not None:
        # A grant for part of the items: the broker lets the department read only its grant
        # view (exactly those items, in clear; keyed like the public view when the key is not
        # among them), so the file holds those items and nothing else.
        if not items:
            raise DownloadError(
                f"resource {resource.code}: none of the items granted is in the current "
                "catalog version; apply for the items it has now"
            )
        topic = naming.grant_view_topic(resource.code, items)
        reader = grant_view_resource(resource, items)
        schemas = grant_view_schema_catalog(spec, resource.code, items, history)
        view = View("granted", items, {}, view.grant)
    window_start = dt.datetime.now(CHINA_TZ)
    workers = default_workers() if workers is None else workers
    say = progress or (lambda _m: None)
    phases: dict[str, float] = {}
    clock = time.monotonic()

    def phase(name: str) -> float:
        nonlocal clock
        now = time.monotonic()
        phases[name] = now - clock
        clock = now
        return phases[name]

    consumer = session.consumer("download", **SNAPSHOT_READ_CONFIG)
    try:
        offsets = stated_offsets(consumer, topic)
        say(f"snapshot of {topic} as of offsets "
            + ", ".join(f"p{p}:{h}" for p, (_, h) in offsets.items()))  # fmt: skip

        def read_so_far(n: int) -> None:
            if n % 100_000 < _BATCH:
                say(f"{n} records read")

        latest = latest_values(consumer, topic, offsets, read_so_far)
        say(f"{len(latest)} keys read in {phase('read'):.1f} s")
    except KafkaException as exc:
        raise DownloadError(f"reading {topic}: {exc.args[0].str()}") from None
    finally:
        consumer.close()
    head_reader = session.consumer("download-head", **HEAD_READER_CONFIG)
    try:
        head = last_event(head_reader, dept.id, naming.audit_topic)
    except KafkaException as exc:
        raise DownloadError(f"reading {naming.audit_topic}: {exc.args[0].str()}") from None
    finally:
        head_reader.close()
    say(f"the department's audit chain head read in {phase('chain head'):.1f} s")
    header = columns(view)
    # The file's items are the view's, as the topic read holds them: the public view's topic
    # is masked already, and the full and granted views mask nothing.
    output.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        texts = csv_texts(
            latest, schemas, reader, view.items, text_columns(view, reader), workers=workers
        )
        count = write_csv(output, header, _counted(texts, say), encoding)
    elif fmt == "xlsx":
        count = write_xlsx(output, header, decoded_rows(latest, schemas, reader, view.items))
    else:
        rows = decoded_rows(latest, schemas, reader, view.items)
        count = write_parquet(output, header, rows, view, reader)
    say(f"{count} rows written in {phase('write'):.1f} s")
    digest = sha256_of(output)
    phase("sha256")
    manifest = Manifest(
        resource=resource.code,
        resource_name=resource.name,
        department=dept.id,
        purpose=purpose,
        view=view.kind,
        topic=topic,
        items=view.items,
        catalog_version=session.catalog_version,
        offsets=offsets,
        row_count=count,
        format=fmt,
        encoding=encoding if fmt == "csv" else None,
        file=output.name,
        sha256=digest,
        created_at=window_start.isoformat(),
    )
    event = _audit(session, manifest, view, head, window_start)
    phase("audit")
    manifest = Manifest(**{**manifest.__dict__, "audit_event_hash": event.hash,
                           "seconds": time.monotonic() - started, "phases": phases})  # fmt: skip
    manifest_path(output).write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def _counted(
    texts: Iterable[tuple[str, int]], say: Callable[[str], None]
) -> Iterator[tuple[str, int]]:
    """``texts`` as they come, saying at every 100,000 rows how many were written."""
    n = 0
    for text, rows in texts:
        yield text, rows
        if (n + rows) // 100_000 > n // 100_000:
            say(f"{n + rows} rows written")
        n += rows


def manifest_path(output: Path) -> Path:
    return output.with_name(output.name + ".manifest.json")


def _audit(
    session: DepartmentSession,
    manifest: Manifest,
    view: View,
    head: AuditEvent | None,
    window_start: dt.datetime,
) -> AuditEvent:
    grant = view.grant
    event = AuditEvent(
        department=manifest.department,
        resource=manifest.resource,
        purpose=manifest.purpose,
        grant=GrantRef(grant.resource, grant.expires_at) if grant is not None else None,
        record_count=manifest.row_count,
        ranges={p: (a, b - 1) for p, (a, b) in manifest.offsets.items() if b > a},
        window_start=window_start,
        window_end=dt.datetime.now(CHINA_TZ),
        prev_hash=head.hash if head is not None else GENESIS,
        query={
            "kind": "download",
            "format": manifest.format,
            "file_sha256": manifest.sha256,
            "items": list(view.items),
            "view": view.kind,
            "topic": manifest.topic,
        },
    ).sealed()
    producer = session.producer()
    topic = session.naming.audit_topic
    reason = write_event(producer, topic, event)
    if reason is not None:
        raise ServiceUnavailable(
            f"the download's usage audit event was not written to {topic} "
            f"({reason}); the file {manifest.file} must not be used (article 18)"
        )
    return event
