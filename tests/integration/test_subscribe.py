"""Subscribing against the real broker: refusals, provenance, at-least-once, evolution, audit.

Department A provides three resources (unconditional, conditional, not shared); B consumes.
Topics are the resources' ``gov.<code>`` names plus a unique suffix; ACLs are what the
reconciler would grant for the unconditional resource (B: READ) plus WRITE+READ+DESCRIBE on
``govbus.audit`` for both, which subscribers need to continue and extend their audit chain.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AclOperation, AdminClient

from govbus.broker import admin as kafka_admin
from govbus.cli.subscribe import register
from govbus.subscribe.audit import AuditError, read_audit, verify_chain
from govbus.subscribe.consumer import Record, SubscribeError, Subscriber
from govbus.vocabulary import acls, metrics
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.grants import Grant
from govbus.vocabulary.identifiers import uscc_check_char
from govbus.vocabulary.naming import NAMING
from govbus.vocabulary.quarantine import QuarantineEntry
from govbus.vocabulary.spec import CatalogSpec, Department, InfoItem, Resource
from govbus.vocabulary.wire import encode_single_object
from tests.factories import PROVIDER as CODE_A
from tests.factories import person_resource
from tests.integration.fixtures import Exchange, create_audit_topic, poll_messages

pytestmark = pytest.mark.kafka

CST = dt.timezone(dt.timedelta(hours=8))
CODE_B = "11320400MB0147045" + uscc_check_char("11320400MB0147045")
CITIZEN_ID = InfoItem("公民身份号码", "citizen_id", "C", 18, required=True)
NAME = InfoItem("姓名", "citizen_name", "C", 50, required=True)
PHONE = InfoItem("联系电话", "phone", "C", 20)  # optional: added in the newer version


def resource(serial: str, share_type: str, items: tuple[InfoItem, ...]) -> Resource:
    return person_resource(
        items,
        code=f"10101/{CODE_A}-{serial}",
        name=f"人口信息{serial}",
        share_type=share_type,
        share_conditions="仅用于办理社会保障业务" if share_type == "conditional" else "",
        purposes=("administrative-basis",) if share_type == "conditional" else (),
        legal_basis="《中华人民共和国统计法》第二十五条" if share_type == "none" else "",
    )


def catalog(ex: Exchange, with_phone: bool) -> CatalogSpec:
    """The current catalog (the open resource has the optional phone item), or the version
    before (no phone item)."""
    items = (CITIZEN_ID, NAME, PHONE) if with_phone else (CITIZEN_ID, NAME)
    return CatalogSpec(
        departments=(
            Department(ex.id("prov"), CODE_A, "市公安局", "city", "320400"),
            Department(ex.id("cons"), CODE_B, "市人社局", "city", "320400"),
        ),
        resources=(
            resource("000001", "unconditional", items),
            resource("000002", "conditional", (CITIZEN_ID, NAME)),
            resource("000003", "none", (CITIZEN_ID, NAME)),
        ),
    )


@pytest.fixture
def exchange(exchange: Exchange, admin: AdminClient) -> Exchange:
    """The shared fixture, its topics and ACLs made by hand: A (``prov``) provides, B
    (``cons``) consumes the open resource, both audit in the namespace's audit topic."""
    a, b = exchange.id("prov"), exchange.id("cons")
    for user in (a, b):
        exchange.add_user(user)
    exchange.spec = catalog(exchange, with_phone=True)
    topic = open_topic(exchange)
    kafka_admin.create_topic(admin, topic, partitions=2)
    create_audit_topic(admin, exchange.naming.audit_topic, (a, b))
    kafka_admin.create_acls(
        admin,
        acls.producer_acls(a, topic)
        + acls.consumer_acls(b, topic)
        + acls.group_prefix_acls(a, f"{a}.")
        + acls.group_prefix_acls(b, f"{b}."),
    )
    return exchange


def open_topic(ex: Exchange) -> str:
    """The unconditional resource's (the catalog's first)."""
    return ex.naming.resource_topic(ex.resource.code)


def subscriber(
    ex: Exchange, label: str, code: str, purpose: str, grants: Iterable[Grant] = (), **kw: Any
) -> Subscriber:
    """Department ``label``'s subscriber; it knows the catalog version before the current."""
    return Subscriber(
        ex.session(ex.id(label), grants=grants),
        code,
        purpose,
        history=[catalog(ex, with_phone=False)],
        **kw,
    )


def publish(ex: Exchange, res: Resource, payloads: list[dict[str, Any] | None]) -> None:
    """A's records, keyed by citizen id; None produces a tombstone for the previous key."""
    producer: Producer = ex.producer(ex.id("prov"))
    errors: list[KafkaError] = []
    last_key = b""
    for n, payload in enumerate(payloads):
        if payload is None:
            value = None
        else:
            last_key = payload["citizen_id"].encode()
            value = encode_single_object(
                res,
                {
                    "provider": res.provider,
                    "resource_code": res.code,
                    "catalog_version": 3,
                    "op": "UPSERT",
                    "event_time": dt.datetime(2025, 3, 1, 9, 0, n, tzinfo=CST),
                    "trace_id": f"trace-{n}",
                    "payload": payload,
                },
            )
        producer.produce(
            open_topic(ex),
            key=last_key,
            value=value,
            partition=0,  # one partition keeps the test's order of records
            on_delivery=lambda err, _m: err and errors.append(err),
        )
    assert producer.flush(30) == 0
    if errors:
        raise KafkaException(errors[0])


def people(n: int, start: int = 0) -> list[dict[str, Any] | None]:
    return [
        {"citizen_id": f"3204021990010{i:05d}", "citizen_name": f"张{i}", "phone": None}
        for i in range(start, start + n)
    ]


def test_consumer_gets_records_with_provenance(exchange: Exchange) -> None:
    publish(exchange, exchange.resource, [*people(3), None])
    got: list[Record] = []
    sub = subscriber(exchange, "cons", exchange.resource.code, "work-reference")
    assert sub.run(got.append, max_records=4, timeout=30) == 4
    assert [r.value["citizen_name"] if r.value else None for r in got] == [
        "张0",
        "张1",
        "张2",
        None,
    ]
    first = got[0]
    assert first.key == "320402199001000000"
    assert (first.provider, first.resource_code) == (CODE_A, exchange.resource.code)
    assert first.catalog_version == 3
    assert first.event_time == dt.datetime(2025, 3, 1, 9, 0, 0, tzinfo=CST)
    assert first.trace_id == "trace-0"
    assert [(r.partition, r.offset) for r in got] == [(0, 0), (0, 1), (0, 2), (0, 3)]
    tombstone = got[3]
    assert tombstone.value is None and tombstone.key == "320402199001000002"


def test_conditional_resource_without_grant_is_refused_with_how_to_apply(
    exchange: Exchange,
) -> None:
    conditional = exchange.spec.resources[1]
    with pytest.raises(SubscribeError) as refused:
        subscriber(exchange, "cons", conditional.code, "administrative-basis")
    message = str(refused.value)
    assert f"govbus request {conditional.code} --department {exchange.id('cons')}" in message
    assert "有条件共享" in message


def test_conditional_resource_with_expired_grant_or_wrong_purpose_is_refused(
    exchange: Exchange,
) -> None:
    conditional = exchange.spec.resources[1]
    expired = Grant(CODE_B, conditional.code, dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(SubscribeError, match="govbus request"):
        subscriber(exchange, "cons", conditional.code, "administrative-basis", grants=[expired])
    valid = Grant(CODE_B, conditional.code, None, purpose="administrative-basis", grant_id=7)
    with pytest.raises(SubscribeError, match="purpose 'work-reference' is not allowed"):
        subscriber(exchange, "cons", conditional.code, "work-reference", grants=[valid])
    audited = {"case_number": "常民〔2026〕1号", "end_user": "王五"}
    sub = subscriber(
        exchange, "cons", conditional.code, "administrative-basis", grants=[valid], **audited
    )
    assert sub.grant == valid


def test_not_shared_resource_is_refused_except_to_its_provider(exchange: Exchange) -> None:
    closed = exchange.spec.resources[2]
    with pytest.raises(SubscribeError) as refused:
        subscriber(exchange, "cons", closed.code, "work-reference")
    assert "不予共享" in str(refused.value)
    assert "统计法" in str(refused.value)
    assert subscriber(exchange, "prov", closed.code, "work-reference").grant is None


def test_unregistered_department_is_refused(exchange: Exchange) -> None:
    with pytest.raises(SubscribeError, match="not registered"):
        Subscriber(
            exchange.session("nobody-here", password="x"),
            exchange.resource.code,
            "work-reference",
        )


def test_broker_refusal_surfaces_with_the_reason(exchange: Exchange, admin: AdminClient) -> None:
    # B without its READ ACL: the catalog allows it, the broker (not reconciled yet) does not.
    read = [
        a
        for a in acls.consumer_acls(exchange.id("cons"), open_topic(exchange))
        if a.operation == AclOperation.READ
    ]
    kafka_admin.delete_acls(admin, read)
    publish(exchange, exchange.resource, people(1))
    sub = subscriber(exchange, "cons", exchange.resource.code, "work-reference")
    with pytest.raises(SubscribeError) as refused:
        sub.run(lambda _r: None, max_records=1, timeout=30)
    assert "authorization" in str(refused.value).lower()
    assert open_topic(exchange) in str(refused.value)


def test_handler_failure_redelivers_the_record_after_restart(exchange: Exchange) -> None:
    publish(exchange, exchange.resource, people(5))
    seen: list[int] = []

    def fails_on_third(record: Record) -> None:
        if len(seen) == 2:
            raise RuntimeError("application down")
        seen.append(record.offset)

    first = subscriber(
        exchange, "cons", exchange.resource.code, "work-reference", group_suffix="retry"
    )
    with pytest.raises(RuntimeError, match="application down"):
        first.run(fails_on_third, timeout=30)
    assert seen == [0, 1]

    again: list[int] = []
    second = subscriber(
        exchange, "cons", exchange.resource.code, "work-reference", group_suffix="retry"
    )
    assert second.run(lambda r: again.append(r.offset), max_records=3, timeout=30) == 3
    # Nothing after the failed record was committed; the records the handler finished were.
    assert again == [2, 3, 4]


def test_records_of_an_older_schema_version_read_with_the_current_one(exchange: Exchange) -> None:
    old_resource = catalog(exchange, with_phone=False).resources[0]
    publish(exchange, old_resource, [{"citizen_id": "320402199001019999", "citizen_name": "李四"}])
    got: list[Record] = []
    subscriber(exchange, "cons", exchange.resource.code, "data-verification").run(
        got.append, max_records=1, timeout=30
    )
    assert got[0].value == {
        "citizen_id": "320402199001019999",
        "citizen_name": "李四",
        "phone": None,
    }


def test_record_of_an_unknown_newer_schema_stops_with_its_fingerprint(exchange: Exchange) -> None:
    newer = dataclasses.replace(
        exchange.resource, items=(*exchange.resource.items, InfoItem("住址", "address", "C", 200))
    )
    publish(exchange, newer, [{"citizen_id": "320402199001018888", "citizen_name": "王五"}])
    sub = subscriber(exchange, "cons", exchange.resource.code, "work-reference")
    with pytest.raises(SubscribeError, match="fingerprint") as refused:
        sub.run(lambda _r: None, max_records=1, timeout=30)
    assert "newer catalog" in str(refused.value)


def test_usage_is_audited_in_a_valid_chain(exchange: Exchange) -> None:
    publish(exchange, exchange.resource, people(7))
    kw: dict[str, Any] = {"group_suffix": "audit", "audit_every": 3, "commit_every": 2}
    sub = subscriber(exchange, "cons", exchange.resource.code, "business-collaboration", **kw)
    assert sub.run(lambda _r: None, max_records=5, timeout=30) == 5
    # A restart continues the chain from the head it reads back from the topic.
    sub2 = subscriber(exchange, "cons", exchange.resource.code, "business-collaboration", **kw)
    assert sub2.run(lambda _r: None, max_records=2, timeout=30) == 2

    events = read_audit(exchange.settings, exchange.id("cons"), exchange.naming)
    mine = [e for _, e in events]
    assert [e.record_count for e in mine] == [3, 2, 2]
    assert [dict(e.ranges) for e in mine] == [{0: (0, 2)}, {0: (3, 4)}, {0: (5, 6)}]
    assert {e.purpose for e in mine} == {"business-collaboration"}
    assert {e.resource for e in mine} == {exchange.resource.code}
    assert all(e.grant is None for e in mine)
    assert mine == [*sub.audit_events, *sub2.audit_events]
    assert verify_chain(events) == []
    # The chain really links: dropping the middle event is noticed.
    assert len(verify_chain([events[0], events[2]])) == 1


def test_a_record_that_is_not_an_audit_event_does_not_stop_the_chain(
    exchange: Exchange,
) -> None:
    """Every principal may write to the audit topic: junk under a department's key (or another
    key) is skipped when the chain head is read back, and `audit verify` names its offset."""
    publish(exchange, exchange.resource, people(4))
    kw: dict[str, Any] = {"group_suffix": "junk", "audit_every": 2, "commit_every": 2}
    sub = subscriber(exchange, "cons", exchange.resource.code, "work-reference", **kw)
    assert sub.run(lambda _r: None, max_records=2, timeout=30) == 2
    producer = exchange.producer(exchange.id("prov"))
    for key in (exchange.id("cons"), exchange.id("prov")):
        producer.produce(exchange.naming.audit_topic, key=key.encode(), value=b"\x00junk")
    assert producer.flush(30) == 0

    sub2 = subscriber(exchange, "cons", exchange.resource.code, "work-reference", **kw)
    assert sub2.run(lambda _r: None, max_records=2, timeout=30) == 2
    assert sub2.audit_events[0].prev_hash == sub.audit_events[-1].hash
    with pytest.raises(AuditError, match=r"offset 1: not an audit event"):
        read_audit(exchange.settings, exchange.id("cons"), exchange.naming)


def test_audit_verify_command_reports_ok_with_counts(
    exchange: Exchange, admin: AdminClient, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(exchange, exchange.resource, people(4))
    # The command reads the platform's audit topic (production names): audit there.
    create_audit_topic(admin, NAMING.audit_topic, (exchange.id("cons"),))
    sub = subscriber(exchange, "cons", exchange.resource.code, "work-reference", audit_every=2)
    sub.audit_topic = NAMING.audit_topic
    assert sub.run(lambda _r: None, max_records=4, timeout=30) == 4
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["audit", "verify", "--department", exchange.id("cons")])
    assert args.handler(args, exchange.settings) == 0
    assert (
        capsys.readouterr().out == f"OK {exchange.id('cons')}: 2 audit event(s), 4 record(s) used\n"
    )


def lag(sub: Subscriber, partition: int) -> float | None:
    return metrics.REGISTRY.get_sample_value(
        "govbus_consumer_lag",
        {"group": sub.group_id, "topic": sub.topic, "partition": str(partition)},
    )


def test_the_lag_gauge_counts_the_records_not_yet_handed_over(exchange: Exchange) -> None:
    # 50 records nobody consumed yet, all on partition 0; partition 1 stays empty.
    publish(exchange, exchange.resource, people(50))
    sub = subscriber(exchange, "cons", exchange.resource.code, "work-reference")
    assert sub.run(lambda _r: None, max_records=20, timeout=30) == 20
    assert (lag(sub, 0), lag(sub, 1)) == (30, 0)
    # The next run starts from the committed offset: 5 more handed over, 25 left.
    again = subscriber(exchange, "cons", exchange.resource.code, "work-reference")
    assert again.run(lambda _r: None, max_records=5, timeout=30) == 5
    assert lag(again, 0) == 25
    assert again.run(lambda _r: None, timeout=3) == 25
    assert lag(again, 0) == 0


def _raw(ex: Exchange, value: bytes) -> None:
    """The provider writes bytes that are no record with its own client (as with kcat)."""
    producer: Producer = ex.producer(ex.id("prov"))
    errors: list[KafkaError] = []
    producer.produce(open_topic(ex), key=b"junk", value=value, partition=0,
                     on_delivery=lambda err, _m: err and errors.append(err))  # fmt: skip
    assert producer.flush(30) == 0 and not errors


def test_an_invalid_record_is_quarantined_and_every_run_goes_past_it(
    exchange: Exchange, admin: AdminClient
) -> None:
    """Issue 11 (7): one non-Avro record no longer stops every subscriber at its offset."""
    cons = exchange.id("cons")
    quarantine = exchange.naming.quarantine_topic
    publish(exchange, exchange.resource, people(1))
    _raw(exchange, b"this is not an avro record")  # offset 1
    publish(exchange, exchange.resource, people(1, start=1))
    # Without WRITE on the quarantine topic the run stops AT the record, nothing skipped.
    with pytest.raises(SubscribeError, match="could not be set aside"):
        subscriber(exchange, "cons", exchange.resource.code, "work-reference",
                   group_suffix="q").run(lambda r: None, timeout=3)  # fmt: skip
    kafka_admin.create_topic(admin, quarantine, partitions=1, config={"cleanup.policy": "compact"})
    kafka_admin.create_acls(admin, acls.producer_acls(cons, quarantine))
    labels = {"provider": CODE_A, "resource": exchange.resource.code, "reader": cons}
    before = metrics.REGISTRY.get_sample_value("govbus_quarantined_records_total", labels) or 0.0
    got: list[Record] = []
    # The same group goes on from the bad record (offset 0 was handled and committed).
    sub = subscriber(exchange, "cons", exchange.resource.code, "work-reference", group_suffix="q")
    assert sub.run(got.append, timeout=3) == 1
    assert [r.offset for r in got] == [2] and sub.quarantined == 1
    # A second run of the group starts after it (the offset was committed), no error.
    assert subscriber(exchange, "cons", exchange.resource.code, "work-reference",
                      group_suffix="q").run(got.append, timeout=3) == 0  # fmt: skip
    # Another reader (a new group) quarantines it too and goes on: one entry per record.
    got.clear()
    assert subscriber(exchange, "cons", exchange.resource.code, "work-reference",
                      group_suffix="q2").run(got.append, timeout=3) == 2  # fmt: skip
    assert [r.offset for r in got] == [0, 2]
    after = metrics.REGISTRY.get_sample_value("govbus_quarantined_records_total", labels)
    assert after == before + 2
    reader = Consumer({**kafka_clients.admin_config(exchange.settings), "group.id": "q-check",
                       "auto.offset.reset": "earliest"})  # fmt: skip
    try:
        msg = poll_messages(reader, quarantine, 2, 10)[-1]
    finally:
        reader.close()
    entry = QuarantineEntry.from_json(msg.value())
    assert msg.key() == f"{open_topic(exchange)}:0:1".encode()
    assert (entry.topic, entry.partition, entry.offset) == (open_topic(exchange), 0, 1)
    assert (entry.provider, entry.resource, entry.reader) == (CODE_A, exchange.resource.code, cons)
    assert "not a valid record" in entry.reason
    assert base64.b64decode(entry.value_b64 or "") == b"this is not an avro record"
