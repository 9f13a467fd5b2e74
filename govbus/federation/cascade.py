"""The catalog cascade (article 8): a district's catalog reaches the city's aggregate catalog.

A district platform's catalog changes leave through its transactional outbox as events on its
``govbus.catalog`` topic (govbus.catalog.outbox): ``{"op": "upsert"|"delete", "version": n,
"resource"|"department": {...}}``, keyed by resource code or ``department:<code>``, compacted.
An agreement with ``catalog: true`` mirrors that topic to the peer as
``<source>.govbus.catalog``; reading the copy from the start and keeping the last event per key
gives the source's current catalog (each key lives in one partition, in order). The city then
stores it as that district's part of its own catalog (``CatalogStore.apply(district=...)``,
checked against the rest of the city like any district import); the province keeps the city's
copy as its view of the city (``govbus catalog show --platform city``).
"""

from __future__ import annotations

import json
import time
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from govbus.vocabulary import kafka
from govbus.vocabulary.config import Settings
from govbus.vocabulary.errors import UserError
from govbus.vocabulary.spec import CatalogSpec

TIMEOUT = 10.0


class CascadeError(UserError):
    """The mirrored catalog cannot be read or used; the message says which and why."""


def fold(events: list[tuple[str, dict[str, Any]]]) -> CatalogSpec:
    """The catalog the events (in order per key) leave behind: the last event per key wins."""
    last: dict[str, dict[str, Any]] = {}
    for key, event in events:
        last[key] = event
    departments = [
        e["department"] for e in last.values() if e["op"] == "upsert" and "department" in e
    ]
    resources = [e["resource"] for e in last.values() if e["op"] == "upsert" and "resource" in e]
    return CatalogSpec.from_dict({"departments": departments, "resources": resources})


def read_events(consumer: Consumer, topic: str) -> list[tuple[str, dict[str, Any]]]:
    """Every event of ``topic`` up to its current end, in order per partition."""
    meta = consumer.list_topics(topic, timeout=TIMEOUT).topics.get(topic)
    if meta is None or meta.error is not None:
        raise CascadeError(
            f"no topic {topic} here yet: the peer's catalog arrives once an agreement with "
            "--catalog is active and `govbus federation run` has copied it"
        )
    ends: dict[int, int] = {}
    starts = []
    for partition in meta.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), TIMEOUT)
        if high > low:
            ends[partition] = high
            starts.append(TopicPartition(topic, partition, low))
    if not starts:
        return []
    consumer.assign(starts)
    events: list[tuple[str, dict[str, Any]]] = []
    done: set[int] = set()
    deadline = time.monotonic() + 60
    while len(done) < len(ends):
        if time.monotonic() > deadline:
            raise CascadeError(f"reading {topic} took over 60 s; is the cluster up?")
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        value, partition, offset = msg.value(), msg.partition(), msg.offset()
        assert partition is not None and offset is not None  # a fetched record has both
        if value is not None:
            key = (msg.key() or b"").decode("utf-8")
            try:
                events.append((key, json.loads(value)))
            except ValueError as exc:
                raise CascadeError(
                    f"{topic} partition {partition} offset {offset}: not a catalog event ({exc})"
                ) from exc
        if offset + 1 >= ends[partition]:
            done.add(partition)
    return events


def district_of(spec: CatalogSpec, platform: str) -> str:
    """The one division code of a district catalog's providers (the file may also name the
    city departments its resources are shared with)."""
    providers = {r.provider for r in spec.resources}
    regions = sorted({d.region for d in spec.departments if d.code in providers})
    if len(regions) != 1:
        raise CascadeError(
            f"the resources of {platform}'s catalog are provided from regions "
            f"{', '.join(regions) or 'none'}: a district platform's catalog holds one "
            "district's resources (article 8)"
        )
    return regions[0]


def mirrored_catalog(settings: Settings, peer: str) -> tuple[str, CatalogSpec]:
    """``peer``'s catalog as its mirrored catalog events on ``settings``' cluster leave it
    (read as the receiving platform's admin), and the topic it was read from."""
    consumer = kafka.consumer(
        settings, settings.admin_username, kafka.admin_password_of(settings), "admin.cascade"
    )
    topic = settings.naming.mirrored_topic(peer, settings.naming.catalog_topic)
    try:
        return topic, fold(read_events(consumer, topic))
    finally:
        consumer.close()
