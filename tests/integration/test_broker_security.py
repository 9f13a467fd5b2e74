"""The first security facts, against the real broker: who may write, who may read, who may connect.

A topic's WRITE and READ ACLs name only department A. A may produce and consume; B is refused
with a topic authorization failure on both; a wrong password and an unauthenticated client
cannot connect at all.
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import KafkaError, KafkaException

from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.config import Settings
from tests.conftest import Department
from tests.integration.fixtures import consume_until, produce_one

pytestmark = pytest.mark.kafka


def _group(dept: Department) -> str:
    return f"{dept.user}.{uuid.uuid4().hex[:6]}"


def test_owner_produces_and_consumes(
    kafka_settings: Settings, owned_topic: tuple[str, Department, Department]
) -> None:
    topic, a, _ = owned_topic
    producer = kafka_clients.producer(kafka_settings, a.user, a.password)
    for i in range(3):
        produce_one(producer, topic, f"record-{i}".encode())
    consumer = kafka_clients.consumer(kafka_settings, a.user, a.password, _group(a))
    try:
        got = consume_until(consumer, topic, want=3)
    finally:
        consumer.close()
    assert got == [b"record-0", b"record-1", b"record-2"]


def test_other_department_cannot_produce(
    kafka_settings: Settings, owned_topic: tuple[str, Department, Department]
) -> None:
    topic, _, b = owned_topic
    producer = kafka_clients.producer(kafka_settings, b.user, b.password)
    with pytest.raises(KafkaException) as refused:
        produce_one(producer, topic, b"not mine to write")
    assert refused.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_other_department_cannot_consume(
    kafka_settings: Settings, owned_topic: tuple[str, Department, Department]
) -> None:
    topic, a, b = owned_topic
    produce_one(kafka_clients.producer(kafka_settings, a.user, a.password), topic, b"secret")
    consumer = kafka_clients.consumer(kafka_settings, b.user, b.password, _group(b))
    try:
        with pytest.raises(KafkaException) as refused:
            consume_until(consumer, topic, want=1)
    finally:
        consumer.close()
    assert refused.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_other_department_cannot_use_the_owners_consumer_group(
    kafka_settings: Settings, owned_topic: tuple[str, Department, Department]
) -> None:
    topic, a, b = owned_topic
    consumer = kafka_clients.consumer(kafka_settings, b.user, b.password, _group(a))
    try:
        with pytest.raises(KafkaException) as refused:
            consume_until(consumer, topic, want=1)
    finally:
        consumer.close()
    assert refused.value.args[0].code() in (
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
    )


def test_wrong_password_fails_authentication(
    kafka_settings: Settings, owned_topic: tuple[str, Department, Department]
) -> None:
    _, a, _ = owned_topic
    seen = kafka_clients.probe(
        kafka_clients.client_config(kafka_settings, a.user, a.password + "-wrong")
    )
    assert seen.brokers == 0
    assert seen.authentication_failed, seen.errors


def test_unknown_user_fails_authentication(kafka_settings: Settings) -> None:
    seen = kafka_clients.probe(
        kafka_clients.client_config(kafka_settings, f"nobody-{uuid.uuid4().hex[:6]}", "x")
    )
    assert seen.brokers == 0
    assert seen.authentication_failed, seen.errors


def test_unauthenticated_connection_is_refused(kafka_settings: Settings) -> None:
    conf = {"bootstrap.servers": kafka_clients.bootstrap_of(kafka_settings)}
    seen = kafka_clients.probe({**conf, "security.protocol": "PLAINTEXT"})
    assert seen.brokers == 0
    assert seen.errors, "a client without SASL got an answer from the broker"
