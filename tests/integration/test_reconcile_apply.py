"""The reconciler against the real broker: apply, idempotence, access, drift, topic deletion.

Each test builds its own small catalog whose department ids, topics and users carry a suffix
unique to the test, and reconciles within a scope limited to that suffix, so it neither sees
nor deletes what other tests own on the shared session broker.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AclOperation, AdminClient, ResourcePatternType, ResourceType

from govbus.broker import admin as kafka_admin
from govbus.reconcile.desired import desired_state
from govbus.reconcile.plan import ApplyResult, Plan, Scope, apply, make_plan, read_actual
from govbus.vocabulary import acls
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.config import Settings
from govbus.vocabulary.grants import Grant
from govbus.vocabulary.identifiers import uscc_check_char
from govbus.vocabulary.metrics import REGISTRY
from govbus.vocabulary.naming import Naming
from govbus.vocabulary.secrets import PasswordStore
from govbus.vocabulary.spec import (
    CatalogSpec,
    Department,
    InfoItem,
    Resource,
    ResourceKey,
    ShareType,
)
from tests.integration.test_broker_security import consume_until

pytestmark = pytest.mark.kafka


def produce_keyed(producer: Producer, topic: str, value: bytes) -> None:
    """test_broker_security.produce_one with a key: compacted topics refuse keyless records."""
    errors: list[KafkaError] = []
    producer.produce(
        topic,
        key=b"320402199001010011",
        value=value,
        on_delivery=lambda e, _m: e and errors.append(e),
    )
    assert producer.flush(30) == 0, "record not acknowledged within 30 s"
    if errors:
        raise KafkaException(errors[0])


def _department(sfx: str, label: str, n: int) -> Department:
    body = f"11320400{n:09d}"
    return Department(f"t{sfx}-{label}", body + uscc_check_char(body), label, "city", "320400")


def _resource(provider: Department, serial: int, share_type: ShareType) -> Resource:
    return Resource(
        code=f"10101/{provider.code}-{serial:06d}",
        name=f"{share_type} resource {serial}",
        provider=provider.code,
        abstract="test",
        format="database",
        category=("人口",),
        items=(InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),),
        key=ResourceKey(("citizen_id",), "natural-person"),
        share_type=share_type,
        update_cycle="weekly",
        publish_date=dt.date(2026, 1, 1),
        legal_basis="test" if share_type == "none" else "",
    )


@dataclass
class World:
    """A test's own catalog, scope and secrets, and the operations on them."""

    sfx: str
    admin: AdminClient
    settings: Settings
    secrets: PasswordStore
    spec: CatalogSpec

    @property
    def naming(self) -> Naming:
        return Naming(f"t{self.sfx}.")

    @property
    def scope(self) -> Scope:
        return Scope.namespace(self.naming, (f"t{self.sfx}-",))

    def topic(self, share_type: str) -> str:
        resource = next(r for r in self.spec.resources if r.share_type == share_type)
        return self.naming.resource_topic(resource.code)

    def dept(self, label: str) -> Department:
        return next(d for d in self.spec.departments if d.id == f"t{self.sfx}-{label}")

    def plan(self, grants: tuple[Grant, ...] = ()) -> Plan:
        desired = desired_state(
            self.spec, grants, partitions=1, naming=self.naming, platform_apps=False
        )
        return make_plan(desired, read_actual(self.admin, scope=self.scope))

    def reconcile(self, grants: tuple[Grant, ...] = (), delete_topics: bool = False) -> ApplyResult:
        return apply(self.plan(grants), self.admin, self.secrets, delete_topics)

    def produce(self, label: str, topic: str, value: bytes) -> None:
        user = self.dept(label).id
        producer = kafka_clients.producer(self.settings, user, self.secrets(user))
        produce_keyed(producer, topic, value)

    def consume(self, label: str, topic: str, want: int) -> list[bytes]:
        user = self.dept(label).id
        consumer = kafka_clients.consumer(
            self.settings, user, self.secrets(user), f"{user}.{uuid.uuid4().hex[:6]}"
        )
        try:
            return consume_until(consumer, topic, want)
        finally:
            consumer.close()


@pytest.fixture
def world(admin: AdminClient, kafka_settings: Settings, tmp_path: Path) -> Iterator[World]:
    sfx = uuid.uuid4().hex[:8]
    gaj, scj, mzj = (_department(sfx, label, n) for n, label in enumerate(("gaj", "scj", "mzj")))
    spec = CatalogSpec(
        (gaj, scj, mzj),
        (
            _resource(gaj, 1, "unconditional"),
            _resource(gaj, 2, "conditional"),
            _resource(gaj, 3, "none"),
        ),
    )
    w = World(sfx, admin, kafka_settings, PasswordStore(tmp_path), spec)
    yield w
    # Remove what the test made, with the admin operations directly (not through the code
    # under test), in the test's scope only.
    left = read_actual(admin, scope=w.scope)
    kafka_admin.delete_acls(admin, left.acls)
    for user in left.users:
        kafka_admin.delete_scram_user(admin, user)
    for topic in left.topics:
        kafka_admin.delete_topic(admin, topic)


def _refused(exc: pytest.ExceptionInfo[KafkaException]) -> int:
    code: int = exc.value.args[0].code()
    return code


def test_apply_creates_everything_and_a_second_plan_is_empty(world: World) -> None:
    first = world.plan()
    assert first and {c.action for c in first.changes} == {"create"}
    result = world.reconcile()
    assert len(result.applied) == len(first.changes) and not result.skipped

    actual = read_actual(world.admin, scope=world.scope)
    assert set(actual.topics) == {
        world.topic("unconditional"),
        world.topic("conditional"),
        world.topic("none"),
        *(world.naming.dlq_topic(d.id) for d in world.spec.departments),
    }
    assert actual.topics[world.topic("none")].overrides == {
        "cleanup.policy": "compact",
        "delete.retention.ms": str(7 * 86_400_000),
    }
    assert actual.users == {d.id for d in world.spec.departments}
    everyone = acls.Acl(
        ResourceType.TOPIC,
        world.topic("unconditional"),
        ResourcePatternType.LITERAL,
        "User:*",
        AclOperation.READ,
    )
    assert everyone in actual.acls
    assert world.plan().changes == []


def test_provider_produces_and_another_department_cannot(world: World) -> None:
    world.reconcile()
    topic = world.topic("unconditional")
    world.produce("gaj", topic, b"from the provider")
    with pytest.raises(KafkaException) as refused:
        world.produce("scj", topic, b"not mine to write")
    assert _refused(refused) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # Reading an unconditional resource is open to every department.
    assert world.consume("scj", topic, want=1) == [b"from the provider"]


def test_conditional_resource_is_readable_only_with_a_valid_grant(world: World) -> None:
    world.reconcile()
    topic = world.topic("conditional")
    world.produce("gaj", topic, b"conditional record")
    with pytest.raises(KafkaException) as refused:
        world.consume("scj", topic, want=1)
    assert _refused(refused) == KafkaError.TOPIC_AUTHORIZATION_FAILED

    resource = next(r for r in world.spec.resources if r.share_type == "conditional")
    expired = Grant(world.dept("scj").code, resource.code, dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    assert world.plan((expired,)).changes == []
    valid = Grant(world.dept("scj").code, resource.code, None)
    world.reconcile((valid,))
    assert world.consume("scj", topic, want=1) == [b"conditional record"]


def test_a_department_added_later_reads_unconditional_resources(world: World) -> None:
    world.reconcile()
    topic = world.topic("unconditional")
    world.produce("gaj", topic, b"for everyone")
    newcomer = _department(world.sfx, "new", 9)
    world.spec = replace(world.spec, departments=(*world.spec.departments, newcomer))

    plan = world.plan()
    # Only the newcomer's own user, dead-letter topic and bindings: no per-resource binding.
    assert {c.kind for c in plan.changes if c.name.endswith(topic)} == set()
    assert all(newcomer.id in c.name for c in plan.changes), plan.render()
    world.reconcile()
    assert world.consume("new", topic, want=1) == [b"for everyone"]
    with pytest.raises(KafkaException) as refused:
        world.consume("new", world.topic("none"), want=1)
    assert _refused(refused) == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_hand_added_acl_and_user_are_drift_and_removed(world: World) -> None:
    world.reconcile()
    stray_acls = acls.consumer_acls(world.dept("scj").id, world.topic("none"))
    kafka_admin.create_acls(world.admin, stray_acls)
    hand_made = f"t{world.sfx}-handmade"
    kafka_admin.upsert_scram_user(world.admin, hand_made, "secret-by-hand")

    plan = world.plan()
    deletes = {(c.kind, c.name) for c in plan.changes}
    assert ("user", hand_made) in deletes
    assert (
        "acl",
        f"ALLOW User:{world.dept('scj').id} READ topic {world.topic('none')}",
    ) in deletes
    assert all(c.action == "delete" for c in plan.changes), plan.render()
    assert all("drift: not derived from the catalog" in line for line in plan.render())
    # DESCRIBE is derived for nobody but the provider on a none topic, so both stray ACLs show.
    assert REGISTRY.get_sample_value("govbus_reconciler_drift", {"kind": "acl"}) == 2
    assert REGISTRY.get_sample_value("govbus_reconciler_drift", {"kind": "user"}) == 1

    world.reconcile()
    assert hand_made not in kafka_admin.scram_users(world.admin)
    assert not set(stray_acls) & kafka_admin.list_acls(world.admin)
    assert world.plan().changes == []
    assert REGISTRY.get_sample_value("govbus_reconciler_drift", {"kind": "acl"}) == 0


def test_a_topic_removed_from_the_catalog_is_deleted_only_with_the_flag(world: World) -> None:
    world.reconcile()
    gone = world.topic("none")
    world.spec = replace(
        world.spec, resources=tuple(r for r in world.spec.resources if r.share_type != "none")
    )
    plan = world.plan()
    topic_delete = next(c for c in plan.changes if c.kind == "topic")
    assert (topic_delete.action, topic_delete.name, topic_delete.needs_flag) == (
        "delete",
        gone,
        True,
    )
    assert "[needs --delete-topics]" in topic_delete.render()

    result = world.reconcile()
    assert [c.name for c in result.skipped] == [gone]
    assert gone in world.admin.list_topics(timeout=30).topics
    # Its ACLs went; only the topic itself is left for the flag.
    assert [(c.action, c.kind, c.name) for c in world.plan().changes] == [("delete", "topic", gone)]

    world.reconcile(delete_topics=True)
    assert gone not in world.admin.list_topics(timeout=30).topics
    assert world.plan().changes == []
