"""The outbox relay against the real broker: every catalog event arrives, in order per key, and a
crash between publishing and marking republishes instead of losing anything."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

from govbus.catalog.model import OutboxRow
from govbus.catalog.outbox import OutboxRelay, RelayError
from govbus.catalog.store import CatalogStore
from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, load_yaml
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.config import Settings
from govbus.vocabulary.naming import Naming
from govbus.vocabulary.spec import CatalogSpec, InfoItem

pytestmark = pytest.mark.kafka

HOUSEHOLD = "10101/1132040001410015XY-000001"
CIVIL = "1132040001410023XJ"
RETIRED = "10202/11320412MB0183134R-000001"  # 武进区个体工商户登记信息: no resource refers to it


@dataclasses.dataclass(frozen=True)
class Event:
    key: str
    version: int
    op: str
    outbox_id: int


@pytest.fixture
def naming() -> Naming:
    return Naming(f"t{uuid.uuid4().hex[:8]}.")


@pytest.fixture
def topic_name(naming: Naming) -> str:
    """The test's catalog topic: the store writes its events for it (the relay's default)."""
    return naming.catalog_topic


@pytest.fixture
def store(tmp_path: Path, naming: Naming) -> Iterator[CatalogStore]:
    s = CatalogStore(f"sqlite:///{tmp_path}/catalog.db", naming=naming)
    s.migrate()
    yield s
    s.dispose()


def versions() -> list[CatalogSpec]:
    """Three catalogs: the sample, then changes to one resource and one department, then more."""
    v1 = load_yaml(SAMPLE_CATALOG_PATH)
    household = v1.resource(HOUSEHOLD)
    assert household is not None
    former = InfoItem(name="曾用名", code="former_name", data_type="C", length=50)
    v2 = dataclasses.replace(
        v1,
        resources=tuple(
            dataclasses.replace(r, items=(*r.items, former)) if r.code == HOUSEHOLD else r
            for r in v1.resources
        ),
        departments=tuple(
            dataclasses.replace(d, name="常州市民政局（更名）") if d.code == CIVIL else d
            for d in v1.departments
        ),
    )
    v3 = dataclasses.replace(
        v2,
        resources=tuple(
            dataclasses.replace(r, name="人口户籍信息") if r.code == HOUSEHOLD else r
            for r in v2.resources
            if r.code != RETIRED
        ),
    )
    return [v1, v2, v3]


def outbox_events(store: CatalogStore) -> list[Event]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(OutboxRow).order_by(OutboxRow.id)).all()
    return [Event(r.key, r.value["version"], r.value["op"], r.id) for r in rows]


def unpublished(store: CatalogStore) -> int:
    with store.engine.connect() as conn:
        query = sa.select(sa.func.count()).where(OutboxRow.published_at.is_(None))
        return int(conn.execute(query).scalar_one())


def admin_relay(store: CatalogStore, settings: Settings, topic: str) -> OutboxRelay:
    relay = OutboxRelay.for_settings(store, settings)
    assert relay.topic == topic  # the store's catalog topic
    return relay


def read_topic(settings: Settings, admin: AdminClient, topic: str) -> list[Event]:
    """Every message in the topic, each partition in offset order."""
    partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
    consumer = kafka_clients.consumer(
        settings,
        settings.admin_username,
        kafka_clients.admin_password_of(settings),
        group_id=f"{topic}.reader",
        **{"enable.partition.eof": True},
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    events: list[Event] = []
    at_end: set[int] = set()
    give_up = time.monotonic() + 60  # only ends a hung read; nothing asserts on time
    try:
        while len(at_end) < len(partitions):
            assert time.monotonic() < give_up, f"reading {topic} did not reach the end"
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                assert error.code() == KafkaError._PARTITION_EOF, error.str()
                partition = msg.partition()
                assert partition is not None
                at_end.add(partition)
                continue
            key, raw = msg.key(), msg.value()
            assert isinstance(key, bytes) and isinstance(raw, bytes)
            value: dict[str, Any] = json.loads(raw)
            outbox_id = dict(msg.headers() or [])["govbus-outbox-id"]
            assert isinstance(outbox_id, bytes)
            events.append(Event(key.decode(), value["version"], value["op"], int(outbox_id)))
    finally:
        consumer.close()
    return events


def per_key(events: list[Event]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for e in events:
        out[e.key].append(e.version)
    return dict(out)


def test_relay_publishes_every_event_in_order_per_key(
    store: CatalogStore, kafka_settings: Settings, admin: AdminClient, topic_name: str
) -> None:
    for n, spec in enumerate(versions(), start=1):
        assert store.apply(spec, "alice", f"version {n}") == n
    expected = outbox_events(store)
    relay = admin_relay(store, kafka_settings, topic_name)
    relay.ensure_topic(admin)
    config = admin.describe_configs([ConfigResource("topic", topic_name)])
    (future,) = config.values()
    assert future.result(timeout=30)["cleanup.policy"].value == "compact"

    assert relay.run_once() == len(expected)
    assert unpublished(store) == 0
    assert relay.run_once() == 0
    relay.close()

    seen = read_topic(kafka_settings, admin, topic_name)
    assert sorted(seen, key=lambda e: e.outbox_id) == expected  # each exactly once
    assert per_key(seen) == per_key(expected)
    assert per_key(seen)[HOUSEHOLD] == [1, 2, 3]
    assert per_key(seen)[f"department:{CIVIL}"] == [1, 2]
    assert [e.op for e in seen if e.key == RETIRED] == ["upsert", "delete"]


class CrashesBeforeMarking(OutboxRelay):
    """Fault injection: the process dies after the broker acknowledged, before the UPDATE."""

    def _mark_published(self, conn: sa.Connection, ids: list[int]) -> None:
        raise RuntimeError("simulated crash between publishing and marking published")


def test_crash_between_publish_and_mark_republishes_and_loses_nothing(
    store: CatalogStore, kafka_settings: Settings, admin: AdminClient, topic_name: str
) -> None:
    v1, v2, v3 = versions()
    store.apply(v1, "alice", "v1")
    store.apply(v2, "alice", "v2")
    crashing = CrashesBeforeMarking.for_settings(store, kafka_settings, topic=topic_name)
    crashing.ensure_topic(admin)
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing.run_once()
    crashing.close()
    published_before_crash = outbox_events(store)
    assert unpublished(store) == len(published_before_crash)  # the marks were rolled back

    store.apply(v3, "alice", "v3")
    expected = outbox_events(store)
    fresh = admin_relay(store, kafka_settings, topic_name)
    assert fresh.run_once() == len(expected)
    assert unpublished(store) == 0
    fresh.close()

    seen = read_topic(kafka_settings, admin, topic_name)
    assert len(seen) == len(published_before_crash) + len(expected)  # duplicates, no gaps
    first_seen: dict[tuple[str, int], Event] = {}
    for e in seen:
        first_seen.setdefault((e.key, e.version), e)
    deduplicated = list(first_seen.values())
    assert sorted(deduplicated, key=lambda e: e.outbox_id) == expected
    assert per_key(deduplicated) == per_key(expected)
    # Compaction keeps the last event per key: it must be the newest version.
    last = {e.key: e.version for e in seen}
    assert last == {key: versions_[-1] for key, versions_ in per_key(expected).items()}


def test_undelivered_events_stay_unpublished(
    store: CatalogStore, kafka_settings: Settings, admin: AdminClient, topic_name: str
) -> None:
    store.apply(versions()[0], "alice", "v1")
    password = kafka_clients.admin_password_of(kafka_settings)

    def short_timeout_producer() -> Any:
        extra = {"message.timeout.ms": 5000}
        return kafka_clients.producer(
            kafka_settings, kafka_settings.admin_username, password, **extra
        )

    relay = OutboxRelay(store, short_timeout_producer, topic_name)
    # The topic does not exist and the broker does not create topics on demand.
    with pytest.raises(RelayError, match=r"stay unpublished and are retried"):
        relay.run_once()
    assert unpublished(store) == len(outbox_events(store))

    relay.ensure_topic(admin)
    assert relay.run_once() == len(outbox_events(store))
    assert unpublished(store) == 0
    relay.close()
