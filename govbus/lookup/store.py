"""The current state the lookup service answers from: per topic partition, key -> record.

A value is kept as the message's bytes (Avro single-object encoding) and decoded when asked
(about 10 µs, see ``get``), not as decoded Python objects (several small objects per item, and
work for the garbage collector): ``benchmarks.lookup_bench`` measures the memory per million
keys (about 500 MiB for a 10-item population resource, docs/lookup.md). A tombstone removes the
key; a DELETE envelope is kept and answered as "not found" (decoding is deferred to the read).
The under-verification flags (article 19) come from ``gov.<code>.status`` (keyed by record key,
JSON ``{"under_verification": bool}``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from govbus.vocabulary.avro_rows import row_reader
from govbus.vocabulary.spec import Resource
from govbus.vocabulary.wire import (
    HEADER_SIZE,
    SchemaCatalog,
    decode_single_object,
    fingerprint,
    written_with,
)


@dataclass
class PartitionState:
    """One partition's records; ``loaded`` once its start-of-assignment end was reached."""

    records: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    target: int = 0  # the high watermark when assigned: loaded when the position reaches it
    loaded: bool = False


@dataclass(frozen=True)
class Found:
    """A record as the store holds it, decoded."""

    key: str
    payload: dict[str, Any]
    provider: str
    catalog_version: int
    event_time: dt.datetime
    partition: int
    offset: int
    under_verification: bool


class ResourceState:
    """One resource's records (``gov.<code>`` partitions) and flags (``gov.<code>.status``)."""

    def __init__(self, resource: Resource, schemas: SchemaCatalog) -> None:
        self.resource = resource
        self.schemas = schemas
        # Records of the resource's current schema are read by its compiled reader (~8 µs
        # instead of fastavro's ~25 µs, govbus.vocabulary.avro_rows); older ones by fastavro.
        self._codes = tuple(i.code for i in resource.items)
        own = fingerprint(resource)
        self._own = own if own in schemas else None
        self._read = row_reader(resource, self._codes)
        self.partitions: dict[int, PartitionState] = {}
        self.status: dict[int, PartitionState] = {}
        self.flags: dict[int, set[str]] = {}  # status partition -> keys under verification

    def put(self, partition: int, key: str, value: bytes | None, offset: int) -> None:
        records = self.partitions.setdefault(partition, PartitionState()).records
        if value is None:
            records.pop(key, None)
        else:
            records[key] = (value, offset)

    def put_status(self, partition: int, key: str, value: bytes | None) -> None:
        self.status.setdefault(partition, PartitionState())
        flags = self.flags.setdefault(partition, set())
        flagged = False
        if value is not None:
            try:
                flagged = bool(json.loads(value).get("under_verification"))
            except (ValueError, AttributeError):
                flagged = False  # not a status record: no flag rather than a wrong one
        if flagged:
            flags.add(key)
        else:
            flags.discard(key)

    def get(self, partition: int, key: str) -> Found | None:
        state = self.partitions.get(partition)
        held = state.records.get(key) if state is not None else None
        if held is None:
            return None
        value, offset = held
        if written_with(value, self._own):
            row = self._read(value, HEADER_SIZE)
            if row is None:  # a DELETE envelope
                return None
            *values, provider, version, event_time = row
            payload = dict(zip(self._codes, values, strict=True))
        else:
            envelope = decode_single_object(value, self.schemas, reader=self.resource)
            if envelope.get("op") == "DELETE" or envelope.get("payload") is None:
                return None
            payload, provider = envelope["payload"], envelope["provider"]
            version, event_time = envelope["catalog_version"], envelope["event_time"]
        return Found(
            key=key,
            payload=payload,
            provider=provider,
            catalog_version=int(version),
            event_time=event_time,
            partition=partition,
            offset=offset,
            under_verification=any(key in flags for flags in self.flags.values()),
        )

    def __len__(self) -> int:
        return sum(len(p.records) for p in self.partitions.values())
