"""``Publisher.publish(workers=N)`` on the real broker: one report, per-key order kept.

Records of one key are dealt to one worker process, which produces them in order to the key's
partition; the report merges every worker's deliveries and dead letters (in record order).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from govbus.vocabulary import wire
from govbus.vocabulary.identifiers import citizen_id_check_digit
from govbus.vocabulary.spec import CatalogSpec, InfoItem, Resource, ResourceKey
from producers.publisher import Publisher
from tests.integration.fixtures import Exchange

pytestmark = pytest.mark.kafka
PARTITIONS = 3


def _citizen(n: int) -> str:
    body = f"320402{19800101 + n % 28:08d}{n % 1000:03d}"
    return body + citizen_id_check_digit(body)


def _spec(ex: Exchange) -> CatalogSpec:
    gaj = ex.department("gaj", 1)
    resource = Resource(
        code=f"10101/{gaj.code}-000001",
        name="人口基本信息",
        provider=gaj.code,
        abstract="test",
        format="database",
        category=("人口",),
        items=(
            InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),
            InfoItem("版本", "version", "I"),
        ),
        key=ResourceKey(("citizen_id",), "natural-person"),
        share_type="unconditional",
        update_cycle="daily",
        publish_date=dt.date(2026, 1, 1),
    )
    return CatalogSpec((gaj,), (resource,))


def test_two_workers_keep_each_keys_order_and_report_once(exchange: Exchange) -> None:
    exchange.spec = _spec(exchange)
    exchange.reconcile(exchange.desired(partitions=PARTITIONS))
    gaj = exchange.dept("gaj")
    keys = [_citizen(n) for n in range(40)]
    # Every key 25 times, versions 1..25 in record order, interleaved across keys.
    records: list[dict[str, object]] = [
        {"citizen_id": key, "version": version} for version in range(1, 26) for key in keys
    ]
    bad = {7: "320402198001010001", 500: "not-a-citizen-id", 999: "320402198001010002"}
    for position, value in bad.items():
        records[position - 1] = {"citizen_id": value, "version": 0}
    with Publisher(exchange.session(gaj.id, catalog_version=1)) as publisher:
        report = publisher.publish(exchange.resource.code, records, workers=2)
    assert report.delivered == len(records) - len(bad)
    assert sorted({e.position for e in report.dead_lettered}) == sorted(bad)
    assert [e.position for e in report.dead_lettered] == sorted(
        e.position for e in report.dead_lettered
    )

    topic = exchange.naming.resource_topic(exchange.resource.code)
    schemas = wire.SchemaCatalog.build(exchange.spec)
    seen: dict[str, list[int]] = {}
    for msg in exchange.messages(gaj.id, topic, report.delivered, seconds=60):
        value = wire.decode_single_object(msg.value(), schemas)["payload"]
        seen.setdefault(value["citizen_id"], []).append(value["version"])
    assert sum(len(v) for v in seen.values()) == report.delivered
    skipped = {(p - 1) % len(keys): (p - 1) // len(keys) + 1 for p in bad}
    for n, key in enumerate(keys):
        want = [v for v in range(1, 26) if skipped.get(n) != v]
        assert seen[key] == want, key  # every version, in the order published
    letters = exchange.consume(gaj.id, exchange.naming.dlq_topic(gaj.id), len(bad))
    assert sorted(json.loads(v)["position"] for v in letters) == sorted(bad)
