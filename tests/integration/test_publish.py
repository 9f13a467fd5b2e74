"""A providing department publishes through the SDK against the real broker.

Valid records reach the resource topic, Avro single-object encoded with provenance and keyed by
the one-data-one-source key; an invalid one reaches the department's dead-letter topic with its
position, item and rule; deletes are tombstones; a department that is not the provider is
refused before anything is produced; a delivery the broker refuses is reported, never lost.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Message, TopicPartition
from confluent_kafka.admin import AdminClient

from govbus.broker import admin as kafka_admin
from govbus.catalog.store import CatalogStore
from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, load_yaml
from govbus.cli.publish import register
from govbus.vocabulary import acls, metrics, wire
from govbus.vocabulary.config import Settings
from govbus.vocabulary.identifiers import uscc_check_char
from govbus.vocabulary.naming import NAMING
from govbus.vocabulary.spec import CatalogSpec, Department, InfoItem, Resource
from producers.publisher import Publisher, PublishError
from tests.conftest import Department as User
from tests.factories import PROVIDER as CODE_A
from tests.factories import person_resource
from tests.integration.fixtures import Exchange
from tests.integration.fixtures import citizen_id as citizen
from tests.prometheus_text import by_series

pytestmark = pytest.mark.kafka

CST = dt.timezone(dt.timedelta(hours=8))
CODE_B = "11320400MB0147045" + uscc_check_char("11320400MB0147045")
ITEMS = (
    InfoItem("公民身份号码", "citizen_id", "C", 18, required=True, sensitivity="sensitive"),
    InfoItem("姓名", "citizen_name", "C", 50, required=True),
    InfoItem("月救助金额（元）", "subsidy", "Y"),
    InfoItem("出生日期", "birth_date", "D"),
)
CATALOG_VERSION = 5


def resource(serial: str) -> Resource:
    """A population resource of 市民政局 (CODE_A)."""
    return person_resource(ITEMS, code=f"10101/{CODE_A}-{serial}", name=f"人口信息{serial}")


@pytest.fixture
def exchange(exchange: Exchange, admin: AdminClient) -> Exchange:
    """The shared fixture, its topics and ACLs made by hand: the provider ``prov`` (市民政局)
    may write its first resource's topic and its dead-letter topic, and only read the second's
    (``unwritable``); ``other`` (市卫健委) is registered, provides nothing and has no user."""
    provider = exchange.id("prov")
    exchange.add_user(provider)
    exchange.spec = CatalogSpec(
        departments=(
            Department(provider, CODE_A, "市民政局", "city", "320400"),
            Department(exchange.id("other"), CODE_B, "市卫健委", "city", "320400"),
        ),
        resources=(resource("000001"), resource("000002")),
    )
    dlq = exchange.naming.dlq_topic(provider)
    topics = [topic(exchange), exchange.naming.resource_topic(unwritable(exchange).code), dlq]
    for name in topics:
        kafka_admin.create_topic(admin, name, partitions=1)
    kafka_admin.create_acls(
        admin,
        acls.producer_acls(provider, topics[0])
        + acls.consumer_acls(provider, topics[0])
        + acls.producer_acls(provider, dlq)
        + acls.consumer_acls(provider, dlq)
        # READ only: it may look at the unwritable topic, not write it.
        + acls.consumer_acls(provider, topics[1])
        + acls.group_prefix_acls(provider, f"{provider}."),
    )
    return exchange


def topic(ex: Exchange) -> str:
    """The first resource's: it exists and the provider may write it."""
    return ex.naming.resource_topic(ex.resource.code)


def unwritable(ex: Exchange) -> Resource:
    """Its topic exists, but the provider holds no WRITE ACL on it."""
    return ex.spec.resources[1]


def publishing(ex: Exchange, dept_id: str | None = None, password: str | None = None) -> Publisher:
    session = ex.session(
        dept_id or ex.id("prov"), password=password, catalog_version=CATALOG_VERSION
    )
    return Publisher(session)


def consume(ex: Exchange, topic: str, want: int) -> list[Message]:
    """``want`` records of ``topic``, read as the provider (30 s at most)."""
    return ex.messages(ex.id("prov"), topic, want)


def end_offset(ex: Exchange, topic: str) -> int:
    consumer = ex.consumer(ex.id("prov"))
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)[1])
    finally:
        consumer.close()


def people(n: int) -> list[dict[str, Any]]:
    return [
        {
            "citizen_id": citizen(i),
            "citizen_name": f"张{i}",
            "subsidy": Decimal(f"{100 + i}.50"),
            "birth_date": "1990-01-01",
        }
        for i in range(1, n + 1)
    ]


def sample(name: str, labels: dict[str, str]) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_valid_records_are_published_and_the_invalid_one_dead_lettered(exchange: Exchange) -> None:
    code, dept = exchange.resource.code, exchange.id("prov")
    records = people(5)
    records[2]["citizen_id"] = records[2]["citizen_id"][:17] + (
        "0" if records[2]["citizen_id"][17] != "0" else "1"
    )  # wrong check digit
    records[0]["_event_time"] = dt.datetime(2025, 3, 1, 9, 0, tzinfo=CST)
    published_before = sample(
        "govbus_records_published_total", {"resource": code, "department": dept}
    )
    dead_before = sample("govbus_dead_letters_total", {"resource": code, "department": dept})

    with publishing(exchange) as publisher:
        report = publisher.publish(code, records, source="test")

    assert report.delivered == 4
    assert [(e.position, e.item, e.rule) for e in report.dead_lettered] == [
        (3, "citizen_id", "citizen-id")
    ]
    assert report.failed == []

    got = consume(exchange, topic(exchange), want=4)
    catalog = wire.SchemaCatalog.build(exchange.spec)
    envelopes = [wire.decode_single_object(m.value(), catalog) for m in got]
    expected = [r for n, r in enumerate(records) if n != 2]
    assert [m.key() for m in got] == [r["citizen_id"].encode() for r in expected]
    assert [e["payload"]["citizen_name"] for e in envelopes] == ["张1", "张2", "张4", "张5"]
    assert envelopes[0]["payload"]["subsidy"] == Decimal("101.50")
    assert envelopes[0]["payload"]["birth_date"] == dt.date(1990, 1, 1)
    for envelope in envelopes:
        assert envelope["provider"] == CODE_A
        assert envelope["resource_code"] == code
        assert envelope["catalog_version"] == CATALOG_VERSION
        assert envelope["op"] == "UPSERT"
    assert envelopes[0]["event_time"] == dt.datetime(2025, 3, 1, 9, 0, tzinfo=CST)
    assert len({e["trace_id"] for e in envelopes}) == 4
    headers = dict(got[0].headers() or [])
    assert headers["govbus-schema"] == wire.envelope_name(exchange.resource).encode()
    assert headers["govbus-catalog-version"] == b"5"

    (letter_msg,) = consume(exchange, exchange.naming.dlq_topic(dept), want=1)
    letter = json.loads(letter_msg.value())
    assert letter["resource"] == code
    assert letter["position"] == 3
    assert [(e["item"], e["rule"]) for e in letter["errors"]] == [("citizen_id", "citizen-id")]
    assert letter["errors"][0]["message"].startswith("record 3, item citizen_id (公民身份号码)")
    # Kept as given (the department needs it to fix the record); only it can read its DLQ.
    assert letter["record"]["citizen_id"] == records[2]["citizen_id"]
    assert letter["record"]["subsidy"] == "103.50"

    labels = {"resource": code, "department": dept}
    assert sample("govbus_records_published_total", labels) == published_before + 4
    assert sample("govbus_dead_letters_total", labels) == dead_before + 1


def test_delete_arrives_as_a_tombstone_with_the_key(exchange: Exchange) -> None:
    code = exchange.resource.code
    with publishing(exchange) as publisher:
        publisher.publish(code, people(1))
        report = publisher.delete(code, [{"citizen_id": citizen(1).lower()}])
    assert report.delivered == 1
    upsert, tombstone = consume(exchange, topic(exchange), want=2)
    assert tombstone.value() is None
    assert tombstone.key() == upsert.key() == citizen(1).encode()


def test_a_department_that_is_not_the_provider_is_refused_before_producing(
    exchange: Exchange,
) -> None:
    # Its password is wrong on purpose: connecting at all would fail differently.
    publisher = publishing(exchange, exchange.id("other"), "never-used")
    with pytest.raises(PublishError) as refused:
        publisher.publish(exchange.resource.code, people(1))
    message = str(refused.value)
    assert f"department {exchange.id('other')}" in message
    assert exchange.resource.code in message
    assert f"its provider is 市民政局 ({exchange.id('prov')})" in message
    assert end_offset(exchange, topic(exchange)) == 0


def test_a_refused_delivery_raises_with_the_broker_reason(exchange: Exchange) -> None:
    with publishing(exchange) as publisher, pytest.raises(PublishError) as failed:
        publisher.publish(unwritable(exchange).code, people(2))
    assert "TOPIC_AUTHORIZATION_FAILED" in str(failed.value)
    report = failed.value.report
    assert report is not None
    assert report.delivered == 0
    assert sorted(f.position or 0 for f in report.failed) == [1, 2]
    assert all("TOPIC_AUTHORIZATION_FAILED" in f.reason for f in report.failed)


def test_cli_publishes_a_file_and_exits_2_for_dead_letters(
    kafka_settings: Settings,
    admin: AdminClient,
    department: Callable[[str], User],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`govbus publish` with the sample catalog, its 公安局 played by a test user."""
    provider = department("cli")
    sample = load_yaml(SAMPLE_CATALOG_PATH)
    police = next(d for d in sample.departments if d.id == "cz-gaj")
    spec = dataclasses.replace(
        sample,
        departments=tuple(
            dataclasses.replace(d, id=provider.user) if d is police else d
            for d in sample.departments
        ),
    )
    res = next(
        r for r in spec.resources if r.provider == police.code and r.key.items == ("citizen_id",)
    )
    settings = dataclasses.replace(kafka_settings, catalog_dsn=f"sqlite:///{tmp_path / 'c.db'}")
    store = CatalogStore(settings.resolved_catalog_dsn)
    store.migrate()
    version = store.apply(spec, "test", "publish CLI test")
    store.dispose()
    topic, dlq = NAMING.resource_topic(res.code), NAMING.dlq_topic(provider.user)
    for name in (topic, dlq):
        kafka_admin.create_topic(admin, name, partitions=1)
    kafka_admin.create_acls(
        admin,
        acls.producer_acls(provider.user, topic) + acls.producer_acls(provider.user, dlq),
    )
    records = tmp_path / "people.jsonl"
    bad = citizen(2)[:17] + ("0" if citizen(2)[17] != "0" else "1")
    lines = [{"citizen_id": c, "citizen_name": "王五"} for c in (citizen(1), bad, citizen(3))]
    records.write_text("\n".join(json.dumps(r) for r in lines) + "\n", encoding="utf-8")
    secret = tmp_path / "pw"
    secret.write_text(provider.password + "\n", encoding="utf-8")
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(
        ["publish", "--department", provider.user, "--resource", res.code, str(records),
         "--password-file", str(secret)]
    )  # fmt: skip
    try:
        assert args.handler(args, settings) == 2
    finally:
        for name in (topic, dlq):
            kafka_admin.delete_topic(admin, name)
    out = capsys.readouterr().out
    assert f"(catalog version {version})" in out
    assert "delivered 2\n" in out
    assert f"dead-lettered 1 (to topic {dlq})" in out
    assert "record 2, item citizen_id (公民身份号码): rule citizen-id — " in out


def test_metrics_endpoint_serves_what_a_publish_counted(exchange: Exchange) -> None:
    code, dept = exchange.resource.code, exchange.id("prov")
    latency = {"resource": code}
    latency_before = sample("govbus_delivery_latency_seconds_count", latency)
    with publishing(exchange) as publisher:
        report = publisher.publish(code, people(3), source="test")
    assert report.delivered == 3

    server, _ = metrics.serve(0, "127.0.0.1")  # port 0: a free one
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=30) as response:
            body = response.read().decode()
    finally:
        server.shutdown()
    served = by_series(body)
    labels = tuple(sorted({"resource": code, "department": dept}.items()))
    assert served[("govbus_records_published_total", labels)] == 3
    # 3 Avro records with envelope: more than 3 x 100 bytes, and what the registry holds.
    published_bytes = served[("govbus_bytes_published_total", labels)]
    assert published_bytes > 300
    assert published_bytes == sample("govbus_bytes_published_total", dict(labels))
    count = served[("govbus_delivery_latency_seconds_count", (("resource", code),))]
    assert count == latency_before + 3
