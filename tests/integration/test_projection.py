"""govbus-projector on the real broker: a conditional resource's public view (article 10).

The reconciler applies the catalog plus the app's needs in the test's namespace; the app runs
in-process as its own SCRAM user with only those ACLs.
"""

from __future__ import annotations

import datetime as dt
import decimal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient

from govbus.reconcile.desired import desired_state
from govbus.subscribe.consumer import Record, SubscribeError, Subscriber
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.acls import consumer_acls, producer_acls
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.config import Settings
from govbus.vocabulary.metrics import REGISTRY
from govbus.vocabulary.secrets import PasswordStore
from govbus.vocabulary.session import DepartmentSession
from govbus.vocabulary.spec import CatalogSpec, InfoItem, Resource, ResourceKey
from govbus.vocabulary.topology import TopicSpec
from producers.publisher import Publisher
from stream_apps.projection import app as projection
from stream_apps.registry import AppContext
from tests.integration.app_namespace import Namespace, citizen_id, clean, reconcile
from tests.integration.faust_inprocess import InProcessWorker

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
    return Resource(
        code=f"20101/{provider_code}-000001",
        name="就业创业人员信息",
        provider=provider_code,
        abstract="test",
        format="database",
        category=("就业创业",),
        items=ITEMS,
        key=ResourceKey(("citizen_id",), "natural-person"),
        share_type="conditional",
        update_cycle="daily",
        publish_date=dt.date(2024, 4, 15),
        share_conditions="仅限办理就业创业业务",
        purposes=("administrative-basis",),
    )


class World:
    def __init__(self, admin: AdminClient, settings: Settings, tmp_path: Path) -> None:
        self.ns = Namespace()
        self.settings = settings
        self.secrets = PasswordStore(tmp_path, self.ns.naming)
        self.provider = self.ns.department("rsj", 1)
        self.reader = self.ns.department("mzj", 2)  # holds no share request
        self.resource = _resource(self.provider.code)
        self.spec = CatalogSpec((self.provider, self.reader), (self.resource,))
        self.context = AppContext(self.ns.naming, partitions=1)
        app = projection.needs(self.spec, self.context)
        self.app_id = app.app_id
        self.audit_topic = self.ns.naming.audit_topic
        desired = desired_state(
            self.spec, partitions=1, naming=self.ns.naming, platform_apps=False, stream_apps=[app]
        )
        # The subscriber's usage audit topic, namespaced (the platform's is left out).
        desired.topics[self.audit_topic] = TopicSpec(1, -1, {"cleanup.policy": "delete"}, "audit")
        desired.add_acls(
            producer_acls(self.reader.id, self.audit_topic)
            + consumer_acls(self.reader.id, self.audit_topic),
            "the reader audits its usage",
        )
        reconcile(admin, self.ns, desired, self.secrets)

    @property
    def source(self) -> str:
        return self.ns.naming.resource_topic(self.resource.code)

    @property
    def view(self) -> str:
        return self.ns.naming.public_view_topic(self.resource.code)

    def worker(self) -> InProcessWorker:
        return InProcessWorker(
            lambda: projection.build(
                self.settings,
                self.spec,
                self.secrets(self.app_id),
                self.context,
                key_secret="test-view-key",
            )
        )

    def subscriber(self, purpose: str, **kw: object) -> Subscriber:
        return Subscriber(
            DepartmentSession(
                self.settings,
                self.reader.id,
                self.secrets(self.reader.id),
                self.spec,
                naming=self.ns.naming,
            ),
            self.resource.code,
            purpose,
            group_suffix=uuid.uuid4().hex[:6],
            **kw,
        )


@pytest.fixture
def world(admin: AdminClient, kafka_settings: Settings, tmp_path: Path) -> Iterator[World]:
    w = World(admin, kafka_settings, tmp_path)
    yield w
    clean(admin, w.ns)


def _read_view(world: World, want: int, seconds: float = 60) -> list[Record]:
    """Records of the view, read by the department without a grant, through the SDK."""
    got: list[Record] = []
    # work-reference is not among the resource's purposes: the view is for any purpose.
    subscriber = world.subscriber("work-reference", view="public")
    assert subscriber.topic == world.view
    deadline = time.monotonic() + seconds
    while len(got) < want and time.monotonic() < deadline:
        subscriber.run(got.append, max_records=want - len(got), timeout=2)
    return got


def _projected(resource_code: str) -> float:
    value = REGISTRY.get_sample_value(
        "govbus_projection_records_total", {"resource": resource_code}
    )
    return value or 0.0


def test_view_carries_only_shareable_items_masked_and_everyone_reads_it(world: World) -> None:
    ids = [citizen_id(n) for n in (1, 2)]
    records = [
        {"citizen_id": ids[0], "citizen_name": "欧阳娜娜", "phone": "13812345678",
         "employment_status": "创业", "subsidy": decimal.Decimal("5000.00"),
         "registered_on": dt.date(2024, 3, 1),
         "_event_time": dt.datetime(2025, 3, 1, 9, 0, tzinfo=CHINA_TZ)},
        {"citizen_id": ids[1], "citizen_name": "张三", "phone": None,
         "employment_status": "登记失业", "subsidy": None, "registered_on": None},
    ]  # fmt: skip
    before = _projected(world.resource.code)
    with Publisher(
        DepartmentSession(
            world.settings,
            world.provider.id,
            world.secrets(world.provider.id),
            world.spec,
            catalog_version=7,
            naming=world.ns.naming,
        )
    ) as publisher:
        assert publisher.publish(world.resource.code, records).delivered == 2
        assert publisher.delete(world.resource.code, [{"citizen_id": ids[1]}]).delivered == 1

    with world.worker():
        got = _read_view(world, want=3)

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
    assert (first.provider, first.catalog_version) == (world.provider.code, 7)
    assert first.event_time == dt.datetime(2025, 3, 1, 9, 0, tzinfo=CHINA_TZ)
    assert first.trace_id
    # The key is a pseudonym, the same for the record and its delete, never the citizen id.
    assert second.key == tombstone.key
    assert all(r.key and r.key not in ids and ids[0][6:14] not in r.key for r in got)
    assert _projected(world.resource.code) - before == 3


def test_reader_without_grant_is_refused_the_full_topic_by_the_broker(world: World) -> None:
    # The SDK refuses early, naming the missing share request ...
    with pytest.raises(SubscribeError, match="share request"):
        world.subscriber("administrative-basis")
    # ... and the broker refuses too, whatever the client does.
    consumer = kafka_clients.consumer(
        world.settings,
        world.reader.id,
        world.secrets(world.reader.id),
        f"{world.reader.id}.{uuid.uuid4().hex[:6]}",
    )
    try:
        consumer.subscribe([world.source])
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


def test_the_projector_may_not_write_the_source_topic(world: World) -> None:
    # Only the provider writes its resource (one data, one source); the app only reads it.
    producer = kafka_clients.producer(world.settings, world.app_id, world.secrets(world.app_id))
    errors: list[KafkaError] = []
    producer.produce(world.source, key=b"k", value=b"v", on_delivery=lambda e, _m: errors.append(e))
    producer.flush(30)
    assert errors and errors[0] is not None, "the broker accepted the projector's record"
    assert errors[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
