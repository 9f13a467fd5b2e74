"""Broker-side access evidence (issue 11, deliverable 5): a department that reads with kcat
(no SDK, so no usage audit) is found from the broker's own authorizer log; one that reads
through the SDK is not."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
from pathlib import Path

import pytest

from govbus.broker.access import AccessLogTail, AccessRead
from govbus.broker.cluster import LocalCluster
from govbus.reconcile.desired import desired_state
from govbus.subscribe.audit import read_all
from govbus.subscribe.consumer import Subscriber
from govbus.subscribe.evidence import KIND, check, ship
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.config import Settings
from govbus.vocabulary.spec import CatalogSpec, InfoItem
from producers.publisher import Publisher
from tests.conftest import REPO
from tests.factories import person_resource
from tests.integration.fixtures import Exchange, citizen_id, produce_one

pytestmark = pytest.mark.kafka


def test_a_kcat_read_without_the_sdk_is_an_article_26_5_candidate(
    exchange: Exchange, kafka_settings: Settings, tmp_path: Path
) -> None:
    provider, reader = exchange.department("gaj", 1), exchange.department("mzj", 2)
    items = (InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),)
    by_kcat, by_sdk = (
        person_resource(items, code=f"10101/{provider.code}-{n:06d}", provider=provider.code)
        for n in (1, 2)
    )
    exchange.spec = CatalogSpec((provider, reader), (by_kcat, by_sdk))
    exchange.reconcile(desired_state(exchange.spec, partitions=1, naming=exchange.naming))
    produce_one(exchange.producer(provider.id), exchange.naming.resource_topic(by_kcat.code),
                b"not read as a record here", b"k")  # fmt: skip
    with Publisher(exchange.session(provider.id)) as publisher:
        assert publisher.publish(by_sdk.code, [{"citizen_id": citizen_id(1)}]).delivered == 1
    kcat_topic = exchange.naming.resource_topic(by_kcat.code)

    # 民政局 reads one resource with its own client: no usage audit.
    props = kafka_clients.client_properties(
        exchange.settings, reader.id, exchange.secrets(reader.id)
    )
    cmd = ["bash", str(REPO / "scripts" / "kcat.sh"), "-b", props.pop("bootstrap.servers")]
    cmd += [arg for k, v in props.items() for arg in ("-X", f"{k}={v}")]
    out = subprocess.run([*cmd, "-C", "-t", kcat_topic, "-o", "beginning", "-e"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "not read as a record here" in out.stdout, out.stderr
    # ... and the other through the SDK (audited).
    sub = Subscriber(exchange.session(reader.id), by_sdk.code, "work-reference")
    # Until the one record (a first group join on a just-started broker can take seconds).
    assert sub.run(lambda r: None, max_records=1, timeout=30) == 1 and sub.audit_events

    settings = dataclasses.replace(exchange.settings, namespace=exchange.naming.prefix)
    tail = AccessLogTail(LocalCluster(kafka_settings).access_logs(), tmp_path / "offsets.json")
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    assert ship(settings, tail) > 0
    shipped = [
        AccessRead.from_json(m.value()) for m in read_all(settings, settings.naming.access_topic)
    ]
    assert any(r.user == reader.id and r.topic == kcat_topic for r in shipped)
    found = check(settings, exchange.spec, since=start)
    assert [(v["kind"], v["article"], v["resource_code"], v["department"]) for v in found] == [
        (KIND, "26(5)", by_kcat.code, reader.code)
    ], found
    assert found[0]["subject"].startswith(f"{reader.id}:{kcat_topic}:")
    # The candidate is on the violations topic for the operator and the auditor.
    written = read_all(settings, settings.naming.violations_topic)
    assert any(m.key().decode() == f"{KIND}:{found[0]['subject']}" for m in written)
