"""govbus-projector on the real broker: a conditional resource's public view (article 10).

The reconciler applies the catalog plus the app's needs in the test's namespace; the app runs
in-process as its own SCRAM user with only those ACLs.
"""

from __future__ import annotations

import datetime as dt
import decimal
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError

from govbus.subscribe.consumer import Record, SubscribeError, Subscriber
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.acls import consumer_acls, producer_acls
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.grants import Grant
from govbus.vocabulary.metrics import REGISTRY
from govbus.vocabulary.quarantine import QuarantineEntry
from govbus.vocabulary.spec import CatalogSpec, InfoItem, Resource
from govbus.vocabulary.topology import TopicSpec
from producers.publisher import Publisher
from stream_apps.projection import app as projection
from stream_apps.registry import AppContext
from tests.factories import person_resource
from tests.integration.faust_inprocess import InProcessWorker
from tests.integration.fixtures import Exchange, citizen_id, poll_messages, produce_one

pytestmark = pytest.mark.kafka

ITEMS = (
    InfoItem("公民身份号码", "citizen_id", "C", 18, required=True, shareable_to_all=True,
             mask="citizen-id"),
    InfoItem("姓名", "citizen_name", "C", 50, shareable_to_all=True, mask="name"),
    InfoItem("联系电话", "phone", "C", 11, shareable_to_all=True, mask="phone"),
    InfoItem("就业状态", "employment_status", "C", 20, shareable_to_all=True),
    InfoItem("创业补贴金额（元）", "subsidy", "Y"),
    InfoItem("失业登记日期", "registered_on", "D"),
)  # fmt: skip


def _resource(provider_code: str) -> Resource:
    return person_resource(
        ITEMS,
        code=f"20101/{provider_code}-000001",
        name="就业创业人员信息",
        provider=provider_code,
        abstract="test",
        category=("就业创业",),
        share_type="conditional",
        publish_date=dt.date(2024, 4, 15),
        share_conditions="仅限办理就业创业业务",
        purposes=("administrative-basis",),
    )


@pytest.fixture
def exchange(exchange: Exchange) -> Exchange:
    """The shared fixture: 人社局 provides the conditional resource, 民政局 holds no share
    request; the catalog, the app's needs and the reader's audit topic are reconciled."""
    provider, reader = exchange.department("rsj", 1), exchange.department("mzj", 2)
    exchange.spec = CatalogSpec((provider, reader), (_resource(provider.code),))
    desired = exchange.desired(stream_apps=[projection.needs(exchange.spec, context(exchange))])
    # The subscriber's usage audit topic, namespaced (the platform's is left out).
    audit = exchange.naming.audit_topic
    desired.topics[audit] = TopicSpec(1, -1, {"cleanup.policy": "delete"}, "audit")
    desired.add_acls(
        producer_acls(reader.id, audit) + consumer_acls(reader.id, audit),
        "the reader audits its usage",
    )
    exchange.reconcile(desired)
    return exchange


def context(ex: Exchange) -> AppContext:
    return AppContext(ex.naming, partitions=1)


def source(ex: Exchange) -> str:
    return ex.naming.resource_topic(ex.resource.code)


def view(ex: Exchange) -> str:
    return ex.naming.public_view_topic(ex.resource.code)


def app_id(ex: Exchange) -> str:
    return projection.needs(ex.spec, context(ex)).app_id


def worker(ex: Exchange) -> InProcessWorker:
    return InProcessWorker(
        lambda: projection.build(
            ex.settings, ex.spec, ex.secrets(app_id(ex)), context(ex), key_secret="test-view-key"
        )
    )


def subscriber(ex: Exchange, purpose: str, **kw: object) -> Subscriber:
    """The reader's, in a new group."""
    return Subscriber(
        ex.session(ex.id("mzj")),
        ex.resource.code,
        purpose,
        group_suffix=uuid.uuid4().hex[:6],
        **kw,
    )


def _read_view(exchange: Exchange, want: int, seconds: float = 60) -> list[Record]:
    """Records of the view, read by the department without a grant, through the SDK."""
    got: list[Record] = []
    # work-reference is not among the resource's purposes: the view is for any purpose.
    sub = subscriber(exchange, "work-reference", view="public")
    assert sub.topic == view(exchange)
    deadline = time.monotonic() + seconds
    while len(got) < want and time.monotonic() < deadline:
        sub.run(got.append, max_records=want - len(got), timeout=2)
    return got


def _projected(resource_code: str) -> float:
    value = REGISTRY.get_sample_value(
        "govbus_projection_records_total", {"resource": resource_code}
    )
    return value or 0.0


def test_view_carries_only_shareable_items_masked_and_everyone_reads_it(exchange: Exchange) -> None:
    ids = [citizen_id(n) for n in (1, 2)]
    records = [
        {"citizen_id": ids[0], "citizen_name": "欧阳娜娜", "phone": "13812345678",
         "employment_status": "创业", "subsidy": decimal.Decimal("5000.00"),
         "registered_on": dt.date(2024, 3, 1),
         "_event_time": dt.datetime(2025, 3, 1, 9, 0, tzinfo=CHINA_TZ)},
        {"citizen_id": ids[1], "citizen_name": "张三", "phone": None,
         "employment_status": "登记失业", "subsidy": None, "registered_on": None},
    ]  # fmt: skip
    before = _projected(exchange.resource.code)
    with Publisher(exchange.session(exchange.id("rsj"), catalog_version=7)) as publisher:
        assert publisher.publish(exchange.resource.code, records).delivered == 2
        assert publisher.delete(exchange.resource.code, [{"citizen_id": ids[1]}]).delivered == 1

    with worker(exchange):
        got = _read_view(exchange, want=3)

    assert [r.value is None for r in got] == [False, False, True]
    first, second, tombstone = got
    assert first.value == {
        "citizen_id": ids[0][:6] + "********" + ids[0][-4:],
        "citizen_name": "欧***",
        "phone": "138****5678",
        "employment_status": "创业",
    }
    assert second.value == {
        "citizen_id": ids[1][:6] + "********" + ids[1][-4:],
        "citizen_name": "张*",
        "phone": None,
        "employment_status": "登记失业",
    }
    # The envelope is the source's: provider, catalog version, event time, trace id.
    assert (first.provider, first.catalog_version) == (exchange.dept("rsj").code, 7)
    assert first.event_time == dt.datetime(2025, 3, 1, 9, 0, tzinfo=CHINA_TZ)
    assert first.trace_id
    # The key is a pseudonym, the same for the record and its delete, never the citizen id.
    assert second.key == tombstone.key
    assert all(r.key and r.key not in ids and ids[0][6:14] not in r.key for r in got)
    assert _projected(exchange.resource.code) - before == 3


def test_reader_without_grant_is_refused_the_full_topic_by_the_broker(exchange: Exchange) -> None:
    # The SDK refuses early, naming the missing share request ...
    with pytest.raises(SubscribeError, match="share request"):
        subscriber(exchange, "administrative-basis")
    # ... and the broker refuses too, whatever the client does.
    consumer = exchange.consumer(exchange.id("mzj"))
    try:
        consumer.subscribe([source(exchange)])
        deadline = time.monotonic() + 30
        error = None
        while error is None and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error():
                error = msg.error()
        assert error is not None, "the broker let a department without a grant read the topic"
        assert error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    finally:
        consumer.close()


def test_the_projector_may_not_write_the_source_topic(exchange: Exchange) -> None:
    # Only the provider writes its resource (one data, one source); the app only reads it.
    producer = exchange.producer(app_id(exchange))
    errors: list[KafkaError] = []
    producer.produce(
        source(exchange), key=b"k", value=b"v", on_delivery=lambda e, _m: errors.append(e)
    )
    producer.flush(30)
    assert errors and errors[0] is not None, "the broker accepted the projector's record"
    assert errors[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def _refusal(ex: Exchange, user: str, topic: str) -> KafkaError | None:
    """The first error a plain consumer (not the SDK) of ``user`` gets reading ``topic``."""
    consumer = ex.consumer(user)
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            err = msg.error()
            if err is None:
                return None  # a record: read allowed
            if err.code() != KafkaError._PARTITION_EOF:
                return err
        return None
    finally:
        consumer.close()


def test_a_grant_for_two_items_reads_only_them_from_its_projection_enforced_by_the_broker(
    exchange: Exchange,
) -> None:
    """Issue 11: 民政局 is granted citizen_id and employment_status of the four-plus items."""
    reader = exchange.dept("mzj")
    items = ("employment_status", "citizen_id")
    grant = Grant(reader.code, exchange.resource.code, None, items=items,
                  purpose="administrative-basis", grant_id=41)  # fmt: skip
    granted = AppContext(exchange.naming, partitions=1, grants=(grant,))
    needs = projection.needs(exchange.spec, granted)
    desired = exchange.desired([grant], stream_apps=[needs])
    audit = exchange.naming.audit_topic
    desired.topics[audit] = TopicSpec(1, -1, {"cleanup.policy": "delete"}, "audit")
    desired.add_acls(producer_acls(reader.id, audit) + consumer_acls(reader.id, audit), "audit")
    exchange.reconcile(desired)
    projection_topic = exchange.naming.grant_view_topic(exchange.resource.code, items)
    assert projection_topic in desired.topics

    ids = [citizen_id(n) for n in (3, 4)]
    with Publisher(exchange.session(exchange.id("rsj"), catalog_version=2)) as publisher:
        report = publisher.publish(exchange.resource.code, [
            {"citizen_id": ids[0], "citizen_name": "李四", "phone": "13812345678",
             "employment_status": "创业", "subsidy": decimal.Decimal("5000.00"),
             "registered_on": dt.date(2024, 3, 1)},
            {"citizen_id": ids[1], "citizen_name": "王五", "phone": None,
             "employment_status": "登记失业", "subsidy": None, "registered_on": None},
        ])  # fmt: skip
        assert report.delivered == 2

    sub = Subscriber(
        exchange.session(reader.id, grants=[grant]), exchange.resource.code,
        "administrative-basis", group_suffix=uuid.uuid4().hex[:6],
        case_number="常民救〔2026〕7号", end_user="赵六",
    )  # fmt: skip
    assert sub.topic == projection_topic  # the SDK picks the projection by itself
    got: list[Record] = []
    with InProcessWorker(
        lambda: projection.build(
            exchange.settings, exchange.spec, exchange.secrets(app_id(exchange)), granted,
            key_secret="test-view-key",
        )
    ):  # fmt: skip
        deadline = time.monotonic() + 60
        while len(got) < 2 and time.monotonic() < deadline:
            sub.run(got.append, max_records=2 - len(got), timeout=2)
    # Exactly the granted items, in clear; the key is the citizen id (it is granted).
    assert [r.value for r in got] == [
        {"citizen_id": ids[0], "employment_status": "创业"},
        {"citizen_id": ids[1], "employment_status": "登记失业"},
    ]
    assert [r.key for r in got] == ids
    [event] = sub.audit_events
    assert event.grant is not None and event.grant.id == 41
    assert (event.purpose, event.case_number, event.end_user) == (
        "administrative-basis", "常民救〔2026〕7号", "赵六",
    )  # fmt: skip
    # The broker, not the SDK, keeps the other items from it: a plain client is refused the
    # full topic, and reads the projection.
    refused = _refusal(exchange, reader.id, source(exchange))
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert _refusal(exchange, reader.id, projection_topic) is None
    # Revoked (the grant is no longer valid): the next apply removes the projection's READ.
    after = exchange.desired([], stream_apps=[projection.needs(exchange.spec, context(exchange))])
    after.topics[audit] = desired.topics[audit]
    result = exchange.reconcile(after)
    assert result is not None
    refused = _refusal(exchange, reader.id, projection_topic)
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_the_projector_quarantines_a_record_that_is_no_record_and_goes_on(
    exchange: Exchange,
) -> None:
    producer = exchange.producer(exchange.id("rsj"))  # the provider's own client, not the SDK
    produce_one(producer, source(exchange), b"\x00not avro", key=b"junk")
    with Publisher(exchange.session(exchange.id("rsj"), catalog_version=1)) as publisher:
        assert publisher.publish(exchange.resource.code, [
            {"citizen_id": citizen_id(9), "citizen_name": "李四", "phone": None,
             "employment_status": "创业", "subsidy": None, "registered_on": None},
        ]).delivered == 1  # fmt: skip
    with worker(exchange):
        got = _read_view(exchange, want=1)
        reader = Consumer({**kafka_clients.admin_config(exchange.settings),
                           "group.id": f"q-{uuid.uuid4().hex[:6]}",
                           "auto.offset.reset": "earliest"})  # fmt: skip
        try:
            [msg] = poll_messages(reader, exchange.naming.quarantine_topic, 1, 60)
        finally:
            reader.close()
    assert got[0].value and got[0].value["employment_status"] == "创业"
    entry = QuarantineEntry.from_json(msg.value())
    assert (entry.topic, entry.reader) == (source(exchange), app_id(exchange))
    assert entry.provider == exchange.dept("rsj").code and "not a valid record" in entry.reason
