"""Where a department's usage audit chain head is read: the partition its key is in, the others
only when the topic's partition count has changed since its events were placed."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewPartitions

from govbus.broker import admin as kafka_admin
from govbus.subscribe.audit import (
    GENESIS,
    HEAD_READER_CONFIG,
    PARTITIONS_HEADER,
    AuditEvent,
    last_event,
    placement,
)
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.partitioning import partition_of
from tests.integration.fixtures import Exchange, eventually

pytestmark = pytest.mark.kafka

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=CHINA_TZ)


class RecordingConsumer(Consumer):
    """A real consumer that notes each (partition, offset) it is assigned: where a read went."""

    def __init__(self, conf: dict[str, Any]) -> None:
        super().__init__(conf)
        self.assigned: list[tuple[int, int]] = []

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned.extend((tp.partition, tp.offset) for tp in partitions)
        super().assign(partitions)


@pytest.fixture
def head_reader(exchange: Exchange) -> Iterator[RecordingConsumer]:
    conf = kafka_clients.admin_config(exchange.settings)
    conf.update({"group.id": exchange.id("head"), "enable.auto.commit": False})
    conf.update(HEAD_READER_CONFIG)
    consumer = RecordingConsumer(conf)
    yield consumer
    consumer.close()


@pytest.fixture
def admin_producer(exchange: Exchange) -> Iterator[Producer]:
    settings = exchange.settings
    producer = kafka_clients.producer(
        settings, settings.admin_username, kafka_clients.admin_password_of(settings)
    )
    yield producer
    producer.flush(10)


def audit_topic(exchange: Exchange, producer: Producer, partitions: int) -> str:
    """The exchange's audit topic made with ``partitions``, once the producer sees it so."""
    topic = exchange.naming.audit_topic
    kafka_admin.create_topic(exchange.admin, topic, partitions=partitions)
    seen(producer, topic, partitions)
    return topic


def seen(client: Producer | Consumer, topic: str, partitions: int) -> None:
    def counted() -> bool:
        meta = client.list_topics(topic, timeout=10).topics[topic]
        return meta.error is None and len(meta.partitions) == partitions

    eventually(counted, f"{topic} seen with {partitions} partitions")


def event(department: str, n: int, prev: str = GENESIS) -> AuditEvent:
    at = T0 + dt.timedelta(minutes=n)
    return AuditEvent(
        department=department, resource="R", purpose="administrative-basis", grant=None,
        record_count=n, ranges={}, window_start=at, window_end=at, prev_hash=prev,
    ).sealed()  # fmt: skip


def write(producer: Producer, topic: str, e: AuditEvent, **placed: Any) -> None:
    """``e`` acknowledged, placed as given (by default as every govbus writer places it)."""
    placed = placed or placement(producer, e.department, topic)
    reason = kafka_clients.produce_and_wait(
        producer, topic, e.department.encode(), e.to_json(), **placed
    )
    assert reason is None, reason


def others_everywhere(
    exchange: Exchange, producer: Producer, topic: str, count: int, each: int = 10
) -> None:
    """Events of other departments in every partition, ``each`` in each, so a read of a
    partition that is not needed would show."""
    written = dict.fromkeys(range(count), 0)
    headers = [(PARTITIONS_HEADER, str(count).encode())]  # as ``placement`` names the count
    for n in itertools.count():
        other = exchange.id(f"other{n}")
        home = partition_of(other, count)
        if written[home] < each:
            e = event(other, 0)
            producer.produce(
                topic, key=other.encode(), value=e.to_json(), partition=home, headers=headers
            )
            written[home] += 1
        if min(written.values()) >= each:
            break
    assert producer.flush(30) == 0


def test_the_head_is_read_in_its_department_partition_alone(
    exchange: Exchange, admin_producer: Producer, head_reader: RecordingConsumer
) -> None:
    topic = audit_topic(exchange, admin_producer, 3)
    others_everywhere(exchange, admin_producer, topic, 3)
    dept = exchange.id("reader")
    first = event(dept, 1)
    write(admin_producer, topic, first)
    second = event(dept, 2, first.hash)
    write(admin_producer, topic, second)
    others_everywhere(exchange, admin_producer, topic, 3)  # newer events of others behind it

    got = last_event(head_reader, dept, topic)

    assert got == second
    home = partition_of(dept, 3)
    assert {p for p, _ in head_reader.assigned} == {home}


def test_a_chain_without_events_is_answered_from_each_partition_s_first_record(
    exchange: Exchange, admin_producer: Producer, head_reader: RecordingConsumer
) -> None:
    topic = audit_topic(exchange, admin_producer, 3)
    # More than a backward read's first window (50), so reading a partition back would show.
    others_everywhere(exchange, admin_producer, topic, 3, each=120)
    dept = exchange.id("newcomer")

    assert last_event(head_reader, dept, topic) is None
    home = partition_of(dept, 3)
    elsewhere = {(p, o) for p, o in head_reader.assigned if p != home}
    assert elsewhere and all(offset == 0 for _, offset in elsewhere)  # their first records only


def test_after_the_topic_grew_the_head_is_found_where_it_was_placed_before(
    exchange: Exchange, admin_producer: Producer, head_reader: RecordingConsumer
) -> None:
    topic = audit_topic(exchange, admin_producer, 2)
    # A department whose key moves to another partition when the topic grows to 3.
    dept = next(
        d for n in itertools.count() if partition_of(d := exchange.id(f"mover{n}"), 2)
        != partition_of(d, 3)
    )  # fmt: skip
    before = event(dept, 1)
    write(admin_producer, topic, before)
    assert (PARTITIONS_HEADER, b"2") in placement(admin_producer, dept, topic)["headers"]
    kafka_admin.wait_for(
        exchange.admin.create_partitions([NewPartitions(topic, 3)]), f"growing {topic}"
    )
    seen(head_reader, topic, 3)
    seen(admin_producer, topic, 3)

    # Its home partition now holds nothing of it: the head is found in the old one.
    assert last_event(head_reader, dept, topic) == before
    assert partition_of(dept, 2) in {p for p, _ in head_reader.assigned}

    after = event(dept, 2, before.hash)
    write(admin_producer, topic, after)  # placed by the count of 3: in its new home
    head_reader.assigned.clear()
    assert last_event(head_reader, dept, topic) == after
    assert {p for p, _ in head_reader.assigned} == {partition_of(dept, 3)}


def test_events_written_before_the_header_are_looked_for_everywhere(
    exchange: Exchange, admin_producer: Producer, head_reader: RecordingConsumer
) -> None:
    """An event of the department in its home partition but without the header does not end
    the read: a newer one placed elsewhere (by an older count) is still found."""
    topic = audit_topic(exchange, admin_producer, 3)
    dept = exchange.id("old")
    home = partition_of(dept, 3)
    older, newer = event(dept, 1), event(dept, 2)
    write(admin_producer, topic, older, partition=home)
    write(admin_producer, topic, newer, partition=(home + 1) % 3)

    assert last_event(head_reader, dept, topic) == newer
