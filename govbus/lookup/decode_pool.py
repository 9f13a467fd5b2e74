"""A download's rows from its snapshot's records, decoded in worker processes when there are many.

Decoding is most of a download's time (fastavro, ~26 µs per 10-item record; measured in
``benchmarks.lookup_bench``: the raw snapshot read is 7x faster than the download), and a
Python process decodes on one core. So the sorted snapshot is cut into chunks of ``CHUNK``
records that ``workers`` processes decode while this one writes the file; at most two chunks
per worker are in flight, so neither the records sent nor the rows coming back pile up, and
chunks come back in order (the file is sorted by key, as with one process).

Worker processes are spawned (never forked: the parent holds librdkafka's threads) and import
only this module and the decoder (~0.2 s), not the rest of govbus. A snapshot smaller than
``PARALLEL_FROM`` records is decoded here: the workers' start would cost more than they save.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from govbus.vocabulary.spec import Resource
from govbus.vocabulary.wire import HEADER_SIZE, MAGIC, SchemaCatalog, decode_single_object

__all__ = ["CHUNK", "PARALLEL_FROM", "decoded_rows", "default_workers"]

CHUNK = 5_000
PARALLEL_FROM = 50_000

Chunk = list[tuple[str, bytes]]


class _Decoder:
    """One chunk of (key, record bytes) to rows: ``[key, *items, provider, version, time]``;
    deleted keys (DELETE envelopes) left out."""

    def __init__(self, schemas: SchemaCatalog, reader: Resource, items: Sequence[str]) -> None:
        self.schemas = schemas
        self.reader = reader
        self.items = tuple(items)

    def __call__(self, chunk: Chunk) -> list[list[Any]]:
        out = []
        items, schemas, reader = self.items, self.schemas, self.reader
        for key, value in chunk:
            env = decode_single_object(value, schemas, reader=reader)
            payload = env.get("payload")
            if env.get("op") == "DELETE" or payload is None:
                continue
            out.append([key, *(payload.get(c) for c in items), env["provider"],
                        int(env["catalog_version"]), env["event_time"]])  # fmt: skip
        return out


_worker: _Decoder | None = None


def _start_worker(schemas: SchemaCatalog, reader: Resource, items: Sequence[str]) -> None:
    global _worker
    _worker = _Decoder(schemas, reader, items)


def _decode_in_worker(chunk: Chunk) -> list[list[Any]]:
    assert _worker is not None, "the pool's initializer did not run"
    return _worker(chunk)


def default_workers() -> int:
    """One per core (up to 4): this process, writing the file, needs less than decoding."""
    return max(1, min(4, (os.cpu_count() or 1)))


def decoded_rows(
    latest: dict[str, bytes | None],
    schemas: SchemaCatalog,
    reader: Resource,
    items: Sequence[str],
    *,
    workers: int = 1,
    parallel_from: int = PARALLEL_FROM,
) -> Iterator[list[Any]]:
    """The snapshot's rows in key order (see ``_Decoder``), decoded by ``workers`` processes
    when there are at least ``parallel_from`` records."""
    keys = sorted(k for k, v in latest.items() if v is not None)
    chunks = (
        [(k, latest[k]) for k in keys[start : start + CHUNK]]
        for start in range(0, len(keys), CHUNK)
    )
    if workers <= 1 or len(keys) < parallel_from:
        decode = _Decoder(schemas, reader, items)
        for chunk in chunks:
            yield from decode(chunk)  # type: ignore[arg-type]
        return
    # Only the writer schemas the snapshot uses travel to the workers, not a whole catalog.
    used = {v[len(MAGIC) : HEADER_SIZE] for v in latest.values() if v is not None}
    needed = SchemaCatalog({fp: r for fp, r in schemas.by_fingerprint.items() if fp in used})
    with ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(needed, reader, tuple(items)),
    ) as pool:
        flight: deque[Future[list[list[Any]]]] = deque()
        for chunk in chunks:
            flight.append(pool.submit(_decode_in_worker, chunk))  # type: ignore[arg-type]
            if len(flight) >= 2 * workers:
                yield from flight.popleft().result()
        while flight:
            yield from flight.popleft().result()
