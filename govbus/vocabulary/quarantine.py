"""Quarantine: a record on a resource topic that no reader can use is set aside, never a stop.

The broker checks who writes a resource topic (only its provider), not what it writes: a
provider's own client (kcat, a hand-made producer) can put bytes there that are no govbus
record. Every reader — the consumer SDK (govbus.subscribe.consumer), the projector and the
verifier (stream_apps/) — that meets such a record writes a ``QuarantineEntry`` to
``govbus.quarantine`` and goes on with the next record. The entry keeps the record itself (key,
value, headers, base64) and says where it was (topic, partition, offset), whose it is
(``provider``: the department code of the writer — the resource's provider, or the holder of
an observation topic), who found it (``reader``) and why (``reason``). Article 26(4) counts data
that cannot be used against its provider: ``govbus_quarantined_records_total{provider,
resource,reader}`` and the topic itself are that count.

The topic is compacted by ``<topic>:<partition>:<offset>``: readers that meet the same record
(every subscriber of the resource does) write the same key, so one entry per bad record stays
(the latest reader's), and nothing expires. Every principal may write it (``User:*``: every
reader must be able to); only the platform operator and the auditor read it (it holds the
records' bytes). An entry is the reader's claim: whoever reviews it can check it against the
source topic at that offset while the record is there.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from confluent_kafka import Producer
from prometheus_client import Counter

from govbus.vocabulary.kafka import produce_and_wait
from govbus.vocabulary.metrics import REGISTRY

__all__ = ["QUARANTINED", "QuarantineEntry", "quarantine_key", "send_quarantined"]

QUARANTINED = Counter(
    "govbus_quarantined_records",
    "Records a reader set aside on govbus.quarantine because they are no usable record "
    "(article 26(4): counted against the provider that wrote them)",
    ["provider", "resource", "reader"],
    registry=REGISTRY,
)


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class QuarantineEntry:
    """One record set aside: where, whose, who found it, why, and the record itself."""

    topic: str
    partition: int
    offset: int
    provider: str  # 统一社会信用代码 of the department that wrote it
    resource: str  # the resource code the topic carries ("" for a holder's observation topic)
    reader: str  # the principal (department id or platform app) that found it
    reason: str
    key_b64: str | None
    value_b64: str | None
    headers: tuple[tuple[str, str | None], ...]  # header name -> base64 value
    found_at: str  # ISO-8601 UTC

    @staticmethod
    def of(
        *,
        topic: str,
        partition: int,
        offset: int,
        provider: str,
        resource: str,
        reader: str,
        reason: str,
        key: bytes | None,
        value: bytes | None,
        headers: Any = None,
        now: dt.datetime | None = None,
    ) -> QuarantineEntry:
        """An entry for the raw record (``headers`` as Kafka clients give them: pairs, or a
        mapping)."""
        items = headers.items() if isinstance(headers, Mapping) else (headers or [])
        pairs = tuple((str(name), _b64(bytes(v) if v is not None else None)) for name, v in items)
        at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat()
        return QuarantineEntry(
            topic, partition, offset, provider, resource, reader, reason,
            _b64(key), _b64(value), pairs, at,
        )  # fmt: skip

    @property
    def key(self) -> bytes:
        return quarantine_key(self.topic, self.partition, self.offset)

    def to_json(self) -> bytes:
        body = asdict(self)
        body["headers"] = [list(pair) for pair in self.headers]
        return json.dumps(body, ensure_ascii=False, sort_keys=True).encode()

    @staticmethod
    def from_json(data: bytes) -> QuarantineEntry:
        d = json.loads(data)
        d["headers"] = tuple((str(n), v) for n, v in d.get("headers", []))
        return QuarantineEntry(**d)

    def counted(self) -> QuarantineEntry:
        """Count it against the provider (once per reader that set it aside)."""
        QUARANTINED.labels(provider=self.provider, resource=self.resource, reader=self.reader).inc()
        return self


def quarantine_key(topic: str, partition: int, offset: int) -> bytes:
    return f"{topic}:{partition}:{offset}".encode()


def send_quarantined(producer: Producer, quarantine_topic: str, entry: QuarantineEntry) -> None:
    """Write the entry and wait for the broker's acknowledgement; raises OSError if refused
    (the caller then must not go past the record: nothing is lost)."""
    reason = produce_and_wait(producer, quarantine_topic, entry.key, entry.to_json())
    if reason is not None:
        raise OSError(
            f"{entry.topic} partition {entry.partition} offset {entry.offset} is no usable record "
            f"({entry.reason}) and could not be set aside on {quarantine_topic}: {reason}; every "
            f"reader needs WRITE on {quarantine_topic} (the reconciler grants it)"
        )
    entry.counted()
