"""The detectors on the real broker: what the stream apps, the SDKs and the usage audit wrote to
topics becomes violations in the ledger, once.

The test writes the records those components write (a freshness and an overdue-dispute record
on ``govbus.violations``, a dispute resolved ``corrected`` on ``disputes.<code>``, published and
dead-lettered records, a usage-audit event for a purpose no grant names) in its own namespace on
the session broker, as the admin, and runs ``detect`` over them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

from govbus.broker import admin as kafka_admin
from govbus.catalog.store import CatalogStore
from govbus.subscribe.audit import AuditEvent
from govbus.supervise.ledger import Ledger
from govbus.supervise.sources import detect
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.spec import CatalogSpec, InfoItem
from tests.factories import person_resource
from tests.integration.fixtures import Exchange, produce_one

NOW = dt.datetime.now(CHINA_TZ)


def test_topics_become_violations_once(exchange: Exchange, tmp_path: Path) -> None:
    provider, user = exchange.department("rsj", 1), exchange.department("mzj", 2)
    resource = person_resource(
        (
            InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),
            InfoItem("就业状态", "employment_status", "C", 10),
        ),
        code=f"30101/{provider.code}-000001",  # a department resource (class digit 3)
        provider=provider.code,
        abstract="test",
        category=("人口",),
        share_type="conditional",
        purposes=("administrative-basis",),
        share_conditions="仅用于核定社会救助对象",
        share_methods=("system-integration",),
    )
    # Catalogued since 2024, updated daily, never published: late by the freshness rules.
    silent = dataclasses.replace(resource, code=f"30101/{provider.code}-000002", name="静默资源")
    exchange.spec = CatalogSpec((provider, user), (resource, silent))
    n = exchange.naming
    topics = [
        n.violations_topic,
        n.dispute_topic(resource.code),
        n.resource_topic(resource.code),
        n.dlq_topic(provider.id),
        n.audit_topic,
    ]
    for topic in topics:
        kafka_admin.create_topic(exchange.admin, topic, partitions=1)
    settings = exchange.settings
    producer = kafka_clients.producer(
        settings, settings.admin_username, kafka_clients.admin_password_of(settings)
    )
    at = NOW.isoformat()
    late = {
        "kind": "late-provision",
        "article": "26(2)",
        "department": provider.code,
        "resource_code": resource.code,
        "subject": f"{resource.code}@2026-11-01",
        "at": at,
        "detail": "due by 2026-11-01 and nothing came",
    }
    overdue = {**late, "kind": "inconsistent-data", "article": "26(4)", "subject": "d-overdue"}
    for value in (late, overdue, late):  # at least once: the repeat is one violation
        produce_one(producer, n.violations_topic, json.dumps(value).encode())
    resolved = {
        "dispute_id": "d-corrected",
        "resource_code": resource.code,
        "key": "k1",
        "state": "resolved",
        "outcome": "corrected",
        "provider": provider.code,
        "note": "已更正",
        "updated_at": at,
    }
    rejected = {**resolved, "dispute_id": "d-rejected", "outcome": "rejected"}
    for value in (resolved, rejected):
        produce_one(producer, n.dispute_topic(resource.code), json.dumps(value).encode())
    for i in range(8):
        produce_one(producer, n.resource_topic(resource.code), b"{}", f"k{i}".encode())
    for _ in range(2):  # 2 of 10: 20% dead-lettered
        produce_one(producer, n.dlq_topic(provider.id), b"{}")
    event = AuditEvent(
        user.id,
        resource.code,
        "work-reference",
        None,
        3,
        {0: (0, 2)},
        NOW - dt.timedelta(hours=1),
        NOW,
    ).sealed()
    produce_one(producer, n.audit_topic, event.to_json(), user.id.encode())
    producer.flush(30)

    store = CatalogStore(f"sqlite:///{tmp_path}/catalog.db", naming=n)
    try:
        store.migrate()
        store.apply(exchange.spec, "a", "test")
        ledger = Ledger(store, exchange.id("dsjj"))
        found = detect(settings, store, NOW, threshold=0.1)
        kinds = sorted((f.kind, f.subject) for f in found.findings)
        assert kinds == sorted(
            [
                ("late-provision", late["subject"]),
                ("late-provision", late["subject"]),
                ("inconsistent-data", "d-overdue"),
                ("inconsistent-data", "d-corrected"),
                ("inconsistent-data", f"dead-letters:{provider.code}"),
                ("purpose-misuse", f"audit:{event.hash}"),
                # due by the end of 2024-01-02 (1 working day after 发布日期): 00:00 on the 3rd
                ("late-provision", f"{silent.code}@2024-01-03"),
            ]
        )
        misuse = next(f for f in found.findings if f.kind == "purpose-misuse")
        assert misuse.department == user.code and "no approved share request" in misuse.summary
        first = ledger.record(found.findings, found.cleared, NOW)
        assert len(first.new) == 6  # the repeated freshness record is one violation
        again = detect(settings, store, NOW, threshold=0.1)
        assert ledger.record(again.findings, again.cleared, NOW).new == ()
        # Above a higher threshold the dead-letter condition is seen clear and closed.
        relaxed = detect(settings, store, NOW, threshold=0.5)
        closed = ledger.record(relaxed.findings, relaxed.cleared, NOW).closed
        assert [ledger.get(v).subject for v in closed] == [f"dead-letters:{provider.code}"]
    finally:
        store.dispose()
