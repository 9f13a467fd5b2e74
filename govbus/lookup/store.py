"""The current state the lookup service answers from: per topic partition, key -> record.

A value is kept as the message's bytes (Avro single-object encoding) and decoded when asked
(about 20 µs), not as decoded Python objects (several small objects per item, and work for the
garbage collector): ``benchmarks.lookup_bench`` measures the memory per million keys (about
500 MiB for a 10-item population resource, docs/lookup.md). A
tombstone removes the key; a DELETE envelope is kept and answered as "not found" (decoding is
deferred to the read). The under-verification flags (article 19) come from
``gov.<code>.status`` (keyed by record key, JSON ``{"under_verification": bool}``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from govbus.vocabulary.spec import Resource
from govbus.vocabulary.wire import SchemaCatalog, decode_single_object


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
        envelope = decode_single_object(value, self.schemas, reader=self.resource)
        if envelope.get("op") == "DELETE" or envelope.get("payload") is None:
            return None
        return Found(
            key=key,
            payload=envelope["payload"],
            provider=envelope["provider"],
            catalog_version=int(envelope["catalog_version"]),
            event_time=envelope["event_time"],
            partition=partition,
            offset=offset,
            under_verification=any(key in flags for flags in self.flags.values()),
        )

    def __len__(self) -> int:
        return sum(len(p.records) for p in self.partitions.values())
