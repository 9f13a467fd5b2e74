"""The auditor principal (审计机关, article 24) on the real broker: it reads the usage audit and
nothing else, whatever ``User:*`` opens to every other principal; it writes nowhere."""

from __future__ import annotations

import datetime as dt

import pytest
from confluent_kafka import KafkaError, KafkaException

from govbus.reconcile.desired import desired_state
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.naming import AUDITOR
from govbus.vocabulary.spec import CatalogSpec, InfoItem
from tests.factories import person_resource
from tests.integration.fixtures import Exchange, produce_one

pytestmark = pytest.mark.kafka


def _first_error(ex: Exchange, user: str, topic: str) -> KafkaError | None:
    """The first error reading ``topic`` as ``user``; None once a record arrived."""
    consumer = ex.consumer(user)
    try:
        consumer.subscribe([topic])
        for _ in range(60):
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            err = msg.error()
            if err is None:
                return None
            if err.code() != KafkaError._PARTITION_EOF:
                return err
        raise AssertionError(f"neither a record nor an error reading {topic} as {user}")
    finally:
        consumer.close()


def test_the_auditor_reads_the_audit_only_and_writes_nowhere(exchange: Exchange) -> None:
    provider = exchange.department("gaj", 1)
    resource = person_resource(
        (InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),),
        code=f"10101/{provider.code}-000001", provider=provider.code,
        publish_date=dt.date(2024, 1, 1),
    )  # fmt: skip
    exchange.spec = CatalogSpec((provider,), (resource,))
    state = desired_state(exchange.spec, partitions=1, naming=exchange.naming)
    exchange.reconcile(state)
    auditor = exchange.naming.app_user(AUDITOR)
    topic = exchange.naming.resource_topic(resource.code)
    # The provider writes its (unconditional: User:* READ) resource and an audit event.
    produce_one(exchange.producer(provider.id), topic, b"a record", b"k")
    produce_one(exchange.producer(provider.id), exchange.naming.audit_topic, b"{}", b"k")

    assert _first_error(exchange, auditor, exchange.naming.audit_topic) is None
    refused = _first_error(exchange, auditor, topic)
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # Every other principal still reads the unconditional resource (the DENY is the auditor's).
    assert _first_error(exchange, provider.id, topic) is None
    # A plain (not idempotent) producer: the topic's own refusal. (An idempotent one is refused
    # earlier: with no WRITE on any topic it gets no producer id, CLUSTER_AUTHORIZATION_FAILED.)
    plain = kafka_clients.producer(exchange.settings, auditor, exchange.secrets(auditor),
                                   **{"enable.idempotence": False})  # fmt: skip
    with pytest.raises(KafkaException) as write:
        produce_one(plain, exchange.naming.audit_topic, b"{}", b"k")
    assert write.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
