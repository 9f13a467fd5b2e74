"""Conditional sharing on the real broker: request, approval, read, revocation, expiry.

Each test has its own catalog (departments and topics carry a suffix unique to the test) in a
SQLite catalog database, and reconciles within a scope limited to that suffix, as
test_reconcile_apply.py does, so it neither sees nor removes what other tests own. The
reconcile step is what `govbus apply` does: sweep, load the valid grants, derive, plan, apply.
The consumer department reads with a plain confluent-kafka consumer under its own SCRAM user.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from govbus.broker import admin as kafka_admin
from govbus.catalog.store import CatalogStore
from govbus.reconcile.desired import desired_state
from govbus.reconcile.plan import ApplyResult, Scope, apply, make_plan, read_actual
from govbus.share.requests import ShareError, ShareRequests
from govbus.subscribe.consumer import SubscribeError, check_subscription
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.config import Settings
from govbus.vocabulary.identifiers import uscc_check_char
from govbus.vocabulary.naming import Naming
from govbus.vocabulary.secrets import PasswordStore
from govbus.vocabulary.spec import CatalogSpec, Department, InfoItem, Resource, ResourceKey
from tests.integration.test_broker_security import consume_until
from tests.integration.test_reconcile_apply import produce_keyed

pytestmark = pytest.mark.kafka

PURPOSE = "administrative-basis"


def _department(sfx: str, label: str, n: int) -> Department:
    body = f"11320400{n:09d}"
    return Department(f"t{sfx}-{label}", body + uscc_check_char(body), label, "city", "320400")


@dataclass
class World:
    sfx: str
    admin: AdminClient
    settings: Settings
    secrets: PasswordStore
    spec: CatalogSpec
    share: ShareRequests

    @property
    def naming(self) -> Naming:
        return Naming(f"t{self.sfx}.")

    @property
    def scope(self) -> Scope:
        return Scope.namespace(self.naming, (f"t{self.sfx}-",))

    @property
    def resource(self) -> Resource:
        return self.spec.resources[0]

    @property
    def topic(self) -> str:
        return self.naming.resource_topic(self.resource.code)

    def dept(self, label: str) -> Department:
        return next(d for d in self.spec.departments if d.id == f"t{self.sfx}-{label}")

    def reconcile(self, now: dt.datetime | None = None) -> ApplyResult:
        """What `govbus apply` does, in this test's scope and namespace."""
        now = now or dt.datetime.now(dt.UTC)
        self.share.sweep(now)
        desired = desired_state(
            self.spec,
            self.share.grants(now),
            partitions=1,
            naming=self.naming,
            platform_apps=False,
            now=now,
        )
        plan = make_plan(desired, read_actual(self.admin, scope=self.scope))
        return apply(plan, self.admin, self.secrets, False)

    def produce(self, value: bytes) -> None:
        user = self.dept("provider").id
        producer = kafka_clients.producer(self.settings, user, self.secrets(user))
        produce_keyed(producer, self.topic, value)

    def consumer(self) -> Consumer:
        user = self.dept("consumer").id
        group = f"{user}.{uuid.uuid4().hex[:6]}"
        return kafka_clients.consumer(self.settings, user, self.secrets(user), group)

    def read(self, want: int) -> list[bytes]:
        consumer = self.consumer()
        try:
            return consume_until(consumer, self.topic, want)
        finally:
            consumer.close()

    def apply_for(self) -> int:
        return self.share.submit(
            self.dept("consumer").id,
            self.resource.code,
            PURPOSE,
            "核定社会救助对象",
            dt.date.today() + dt.timedelta(days=365),
        ).id


@pytest.fixture
def world(admin: AdminClient, kafka_settings: Settings, tmp_path: Path) -> Iterator[World]:
    sfx = uuid.uuid4().hex[:8]
    provider, consumer = _department(sfx, "provider", 1), _department(sfx, "consumer", 2)
    resource = Resource(
        code=f"30201/{provider.code}-000001",
        name="社会救助对象信息",
        provider=provider.code,
        abstract="test",
        format="database",
        category=("民政",),
        items=(
            InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),
            InfoItem("救助类型", "assistance_type", "C", 20),
        ),
        key=ResourceKey(("citizen_id",), "natural-person"),
        share_type="conditional",
        update_cycle="weekly",
        publish_date=dt.date(2026, 1, 1),
        share_conditions="仅用于社会救助审核",
        share_methods=("system-integration",),
        purposes=(PURPOSE,),
    )
    spec = CatalogSpec((provider, consumer), (resource,))
    store = CatalogStore(f"sqlite:///{tmp_path}/catalog.db")
    store.migrate()
    store.apply(spec, "test", "lifecycle")
    w = World(sfx, admin, kafka_settings, PasswordStore(tmp_path), spec, ShareRequests(store))
    yield w
    store.dispose()
    # Remove what the test made, with the admin operations directly, in the test's scope only.
    left = read_actual(admin, scope=w.scope)
    kafka_admin.delete_acls(admin, left.acls)
    for user in left.users:
        kafka_admin.delete_scram_user(admin, user)
    for topic in left.topics:
        kafka_admin.delete_topic(admin, topic)


def refused_code(exc: pytest.ExceptionInfo[KafkaException]) -> int:
    code: int = exc.value.args[0].code()
    return code


def next_fetch_error(consumer: Consumer, seconds: float = 60) -> KafkaError:
    """Poll an assigned consumer until the broker reports an error; a record is a failure."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        error = msg.error()
        if error is None:
            pytest.fail(f"read {msg.value()!r} although the grant is gone")
        if error.code() != KafkaError._PARTITION_EOF:
            return error
    pytest.fail(f"no refusal within {seconds}s")


def test_read_is_refused_before_approval_allowed_after_and_refused_after_revocation(
    world: World,
) -> None:
    world.reconcile()
    world.produce(b"record 1")
    with pytest.raises(KafkaException) as refused:
        world.read(1)
    assert refused_code(refused) == KafkaError.TOPIC_AUTHORIZATION_FAILED

    rid = world.apply_for()
    world.reconcile()  # a pending request gives nothing yet
    with pytest.raises(KafkaException) as refused:
        world.read(1)
    assert refused_code(refused) == KafkaError.TOPIC_AUTHORIZATION_FAILED

    grant = world.share.approve(rid, world.dept("provider").id)
    result = world.reconcile()
    assert any(world.dept("consumer").id in c.name for c in result.applied), result.render()
    consumer = world.consumer()
    try:
        assert consume_until(consumer, world.topic, 1) == [b"record 1"]
        # The subscriber's own check agrees with the broker.
        grants = world.share.grants(department=world.dept("consumer").code)
        check_subscription(
            world.spec, world.dept("consumer").id, world.resource.code, PURPOSE, grants
        )

        world.share.revoke(grant.id, world.dept("provider").id, "使用部门超出申请用途使用数据")
        world.reconcile()
        world.produce(b"record 2")
        # The same consumer, still subscribed: its next fetch is refused.
        assert next_fetch_error(consumer).code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    finally:
        consumer.close()
    with pytest.raises(SubscribeError, match="holds no valid approved share request"):
        check_subscription(
            world.spec,
            world.dept("consumer").id,
            world.resource.code,
            PURPOSE,
            world.share.grants(department=world.dept("consumer").code),
        )
    assert [e.kind for e in world.share.grant_history(grant.id)] == [
        "submitted",
        "approved",
        "revoked",
    ]


def test_an_expired_grant_is_swept_and_the_read_refused(world: World) -> None:
    world.reconcile()
    world.produce(b"record 1")
    rid = world.apply_for()
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    grant = world.share.approve(rid, world.dept("provider").id, expires_at=tomorrow)
    world.reconcile()
    assert world.read(1) == [b"record 1"]

    later = grant.expires_at + dt.timedelta(seconds=1)
    world.reconcile(now=later)  # sweeps first: the expiry is recorded
    assert world.share.grant(grant.id).expired_at == later
    assert world.share.request(rid).state == "expired"
    with pytest.raises(KafkaException) as refused:
        world.read(1)
    assert refused_code(refused) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert [e.kind for e in world.share.grant_history(grant.id)][-1] == "expired"


def test_a_denial_without_a_reason_is_refused_and_grants_nothing(world: World) -> None:
    world.reconcile()
    world.produce(b"record 1")
    rid = world.apply_for()
    provider = world.dept("provider").id
    for reason in ("", "不同意", "N/A"):
        with pytest.raises(ShareError, match="denial refused"):
            world.share.deny(rid, provider, reason)
    assert world.share.request(rid).state == "pending"
    world.share.deny(rid, provider, "申请用途与共享条件不符：仅限社会救助审核使用")
    world.reconcile()
    with pytest.raises(KafkaException) as refused:
        world.read(1)
    assert refused_code(refused) == KafkaError.TOPIC_AUTHORIZATION_FAILED
