"""A download's rows from its snapshot's records; for CSV, decoded and written by worker processes.

Decoding and formatting were most of a download's time (fastavro and the conversion to China
time, ~37 µs per 10-item record here; now ~8 µs with the compiled reader of
``govbus.vocabulary.avro_rows``, ~13 µs with the CSV text), and a Python process decodes on one
core. For a CSV file the sorted snapshot is cut into chunks of
``CHUNK`` records; ``workers`` processes each turn a chunk into its CSV text, and this process
only encodes and writes the texts, in order (the file is sorted by key, as with one process).
Workers return text, not rows: rows would be pickled there and unpickled here, on the one
core this process has (measured with spawned workers: returning rows, 2 workers 31,000 rows/s
against one process's 39,000). At most two chunks per worker are in flight, so the texts
coming back do not pile up.

Worker processes are forked on Linux: a spawned worker imports the parent's main module again
(``govbus`` and every command's imports, seconds per worker; measured on 200,000 rows, 2
spawned workers returning text 35,000 rows/s, one process 36,000, 2 forked workers 49,000).
Forking is safe here because the download has closed its Kafka consumer before (no
librdkafka thread holds a lock the child could need), the children only decode and format,
and they leave with ``os._exit`` (nothing inherited is closed twice). A forked worker also
inherits the snapshot: it is told where its chunk starts and reads the records from memory
shared with this process, instead of having them pickled to it through a pipe (1,000,000
rows: 41,000 → 44,000 rows/s, the same file). Elsewhere workers are spawned and sent their
chunks. A snapshot smaller than ``PARALLEL_FROM`` records is written by this process alone:
the workers' start would cost more than they save. xlsx and parquet take the decoded rows
(``decoded_rows``) here.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from govbus.vocabulary.avro_rows import row_reader
from govbus.vocabulary.spec import Resource
from govbus.vocabulary.wire import (
    HEADER_SIZE,
    MAGIC,
    SchemaCatalog,
    decode_single_object,
    fingerprint,
    written_with,
)

__all__ = ["CHUNK", "PARALLEL_FROM", "cell", "csv_texts", "decoded_rows", "default_workers"]

CHUNK = 5_000
PARALLEL_FROM = 50_000
FORK = sys.platform == "linux"  # fork the workers (see above); elsewhere spawn them

Chunk = list[tuple[str, bytes]]


def cell(value: Any) -> Any:
    """A value as a file's cell: None empty, times ISO 8601, binary hex, money exact."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


class _Decoder:
    """One chunk of (key, record bytes) to rows: ``[key, *items, provider, version, time]``;
    deleted keys (DELETE envelopes) left out."""

    def __init__(self, schemas: SchemaCatalog, reader: Resource, items: Sequence[str]) -> None:
        self.schemas = schemas
        self.reader = reader
        self.items = tuple(items)
        # Records of the reader's own schema (nearly all) are read by its compiled row reader,
        # 3-4x faster than fastavro; older schemas need resolution, left to fastavro. (A
        # catalog without the reader's schema reads nothing: each record fails as unknown.)
        own = fingerprint(reader)
        self.own = own if own in schemas else None
        self.read_row = row_reader(reader, self.items)

    def __call__(self, chunk: Chunk) -> list[list[Any]]:
        out = []
        items, schemas, reader = self.items, self.schemas, self.reader
        own, read_row = self.own, self.read_row
        for key, value in chunk:
            if written_with(value, own):
                row = read_row(value, HEADER_SIZE)
                if row is not None:
                    row.insert(0, key)
                    out.append(row)
                continue
            env = decode_single_object(value, schemas, reader=reader)
            payload = env.get("payload")
            if env.get("op") == "DELETE" or payload is None:
                continue
            out.append([key, *(payload.get(c) for c in items), env["provider"],
                        int(env["catalog_version"]), env["event_time"]])  # fmt: skip
        return out


class _CsvWriter:
    """One chunk to its CSV text and row count; ``convert``: the columns passed through
    ``cell`` (the csv module writes the others as wanted)."""

    def __init__(self, decode: _Decoder, convert: Sequence[int]) -> None:
        self.decode = decode
        self.convert = tuple(convert)

    def __call__(self, chunk: Chunk) -> tuple[str, int]:
        rows = self.decode(chunk)
        for values in rows:
            for i in self.convert:
                values[i] = cell(values[i])
        text = io.StringIO()
        csv.writer(text).writerows(rows)
        return text.getvalue(), len(rows)


_work: Callable[[Chunk], tuple[str, int]] | None = None


def _start_worker(
    schemas: SchemaCatalog, reader: Resource, items: Sequence[str], convert: Sequence[int]
) -> None:
    global _work
    _work = _CsvWriter(_Decoder(schemas, reader, items), convert)


def _in_worker(chunk: Chunk) -> tuple[str, int]:
    assert _work is not None, "the pool's initializer did not run"
    return _work(chunk)


# The snapshot and its sorted keys, for forked workers: set before the pool forks them, so a
# worker takes its chunk from the memory it shares with this process, told only where the
# chunk starts, instead of receiving the records through a pipe. One download at a time per
# process (a CLI command; the lookup service does not download).
_snapshot: tuple[dict[str, bytes | None], list[str]] | None = None


def _in_forked_worker(first: int) -> tuple[str, int]:
    assert _work is not None and _snapshot is not None, "not a worker forked by csv_texts"
    return _work(_chunk(*_snapshot, first))


def default_workers() -> int:
    """One per core (up to 4): this process, writing the texts, needs little of its own."""
    return max(1, min(4, os.cpu_count() or 1))


def _present(latest: dict[str, bytes | None]) -> list[str]:
    """The keys with a record, in key order (deleted keys, tombstones, left out)."""
    return sorted(k for k, v in latest.items() if v is not None)


def _chunk(latest: dict[str, bytes | None], keys: list[str], first: int) -> Chunk:
    """The records of ``keys[first:first + CHUNK]`` (``keys``: ``_present``)."""
    return [(k, v) for k in keys[first : first + CHUNK] if (v := latest[k]) is not None]


def _chunks(latest: dict[str, bytes | None], keys: list[str]) -> Iterator[Chunk]:
    """The records of ``keys`` (``_present``), ``CHUNK`` at a time."""
    for first in range(0, len(keys), CHUNK):
        yield _chunk(latest, keys, first)


def decoded_rows(
    latest: dict[str, bytes | None], schemas: SchemaCatalog, reader: Resource, items: Sequence[str]
) -> Iterator[list[Any]]:
    """The snapshot's rows in key order (see ``_Decoder``), decoded in this process."""
    decode = _Decoder(schemas, reader, items)
    for chunk in _chunks(latest, _present(latest)):
        yield from decode(chunk)


def csv_texts(
    latest: dict[str, bytes | None],
    schemas: SchemaCatalog,
    reader: Resource,
    items: Sequence[str],
    convert: Sequence[int],
    *,
    workers: int = 1,
    parallel_from: int = PARALLEL_FROM,
) -> Iterator[tuple[str, int]]:
    """The snapshot's CSV text (no header) in key order, a chunk at a time, with its row count;
    written by ``workers`` processes when there are at least ``parallel_from`` records."""
    keys = _present(latest)
    if workers <= 1 or len(keys) < parallel_from:
        write = _CsvWriter(_Decoder(schemas, reader, items), convert)
        yield from map(write, _chunks(latest, keys))
        return
    # Only the writer schemas the snapshot uses travel to the workers, not a whole catalog.
    used = {v[len(MAGIC) : HEADER_SIZE] for v in latest.values() if v is not None}
    needed = SchemaCatalog({fp: r for fp, r in schemas.by_fingerprint.items() if fp in used})
    global _snapshot
    fork = FORK
    _snapshot = (latest, keys) if fork else None
    try:
        with ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("fork" if fork else "spawn"),
            initializer=_start_worker,
            initargs=(needed, reader, tuple(items), tuple(convert)),
        ) as pool:
            jobs: Iterator[tuple[Callable[[Any], tuple[str, int]], Any]] = (
                ((_in_forked_worker, first) for first in range(0, len(keys), CHUNK))
                if fork
                else ((_in_worker, chunk) for chunk in _chunks(latest, keys))
            )
            yield from _in_order(pool, jobs, 2 * workers)
    finally:
        _snapshot = None


def _in_order(
    pool: ProcessPoolExecutor,
    jobs: Iterable[tuple[Callable[[Any], tuple[str, int]], Any]],
    in_flight: int,
) -> Iterator[tuple[str, int]]:
    flight: deque[Future[tuple[str, int]]] = deque()
    for work, job in jobs:
        flight.append(pool.submit(work, job))
        if len(flight) >= in_flight:
            yield flight.popleft().result()
    while flight:
        yield flight.popleft().result()
