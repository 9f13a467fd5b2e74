"""The reconciler against the real broker: apply, idempotence, access, drift, topic deletion.

Each test builds its own small catalog whose department ids, topics and users carry a suffix
unique to the test, and reconciles within a scope limited to that suffix, so it neither sees
nor deletes what other tests own on the shared session broker.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType

from govbus.broker import admin as kafka_admin
from govbus.reconcile.plan import read_actual
from govbus.vocabulary import acls
from govbus.vocabulary.grants import Grant
from govbus.vocabulary.metrics import REGISTRY
from govbus.vocabulary.spec import CatalogSpec, Department, InfoItem, Resource, ShareType
from tests.factories import person_resource
from tests.integration.fixtures import Exchange, produce_keyed

pytestmark = pytest.mark.kafka


def _resource(provider: Department, serial: int, share_type: ShareType) -> Resource:
    return person_resource(
        (InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),),
        code=f"10101/{provider.code}-{serial:06d}",
        name=f"{share_type} resource {serial}",
        provider=provider.code,
        abstract="test",
        category=("人口",),
        share_type=share_type,
        update_cycle="weekly",
        publish_date=dt.date(2026, 1, 1),
        legal_basis="test" if share_type == "none" else "",
    )


@pytest.fixture
def exchange(exchange: Exchange) -> Exchange:
    """The shared fixture with a catalog: 公安局 provides one resource of each share type."""
    gaj, scj, mzj = (exchange.department(label, n) for n, label in enumerate(("gaj", "scj", "mzj")))
    exchange.spec = CatalogSpec(
        (gaj, scj, mzj),
        (
            _resource(gaj, 1, "unconditional"),
            _resource(gaj, 2, "conditional"),
            _resource(gaj, 3, "none"),
        ),
    )
    return exchange


def topic_of(ex: Exchange, share_type: str) -> str:
    resource = next(r for r in ex.spec.resources if r.share_type == share_type)
    return ex.naming.resource_topic(resource.code)


def produce(ex: Exchange, label: str, topic: str, value: bytes) -> None:
    produce_keyed(ex.producer(ex.id(label)), topic, value)


def consume(ex: Exchange, label: str, topic: str, want: int) -> list[bytes]:
    return ex.consume(ex.id(label), topic, want)


def _refused(exc: pytest.ExceptionInfo[KafkaException]) -> int:
    code: int = exc.value.args[0].code()
    return code


def test_apply_creates_everything_and_a_second_plan_is_empty(exchange: Exchange) -> None:
    first = exchange.plan()
    assert first and {c.action for c in first.changes} == {"create"}
    result = exchange.reconcile()
    assert len(result.applied) == len(first.changes) and not result.skipped

    actual = read_actual(exchange.admin, scope=exchange.scope)
    assert set(actual.topics) == {
        topic_of(exchange, "unconditional"),
        topic_of(exchange, "conditional"),
        topic_of(exchange, "none"),
        *(exchange.naming.dlq_topic(d.id) for d in exchange.spec.departments),
    }
    assert actual.topics[topic_of(exchange, "none")].overrides == {
        "cleanup.policy": "compact",
        "delete.retention.ms": str(7 * 86_400_000),
    }
    assert actual.users == {d.id for d in exchange.spec.departments}
    everyone = acls.Acl(
        ResourceType.TOPIC,
        topic_of(exchange, "unconditional"),
        ResourcePatternType.LITERAL,
        "User:*",
        AclOperation.READ,
    )
    assert everyone in actual.acls
    assert exchange.plan().changes == []


def test_provider_produces_and_another_department_cannot(exchange: Exchange) -> None:
    exchange.reconcile()
    topic = topic_of(exchange, "unconditional")
    produce(exchange, "gaj", topic, b"from the provider")
    with pytest.raises(KafkaException) as refused:
        produce(exchange, "scj", topic, b"not mine to write")
    assert _refused(refused) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # Reading an unconditional resource is open to every department.
    assert consume(exchange, "scj", topic, want=1) == [b"from the provider"]


def test_conditional_resource_is_readable_only_with_a_valid_grant(exchange: Exchange) -> None:
    exchange.reconcile()
    topic = topic_of(exchange, "conditional")
    produce(exchange, "gaj", topic, b"conditional record")
    with pytest.raises(KafkaException) as refused:
        consume(exchange, "scj", topic, want=1)
    assert _refused(refused) == KafkaError.TOPIC_AUTHORIZATION_FAILED

    resource = next(r for r in exchange.spec.resources if r.share_type == "conditional")
    expired = Grant(
        exchange.dept("scj").code, resource.code, dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    )
    assert exchange.plan(exchange.desired((expired,))).changes == []
    valid = Grant(exchange.dept("scj").code, resource.code, None)
    exchange.reconcile(exchange.desired((valid,)))
    assert consume(exchange, "scj", topic, want=1) == [b"conditional record"]


def test_a_department_added_later_reads_unconditional_resources(exchange: Exchange) -> None:
    exchange.reconcile()
    topic = topic_of(exchange, "unconditional")
    produce(exchange, "gaj", topic, b"for everyone")
    newcomer = exchange.department("new", 9)
    exchange.spec = replace(exchange.spec, departments=(*exchange.spec.departments, newcomer))

    plan = exchange.plan()
    # Only the newcomer's own user, dead-letter topic and bindings: no per-resource binding.
    assert {c.kind for c in plan.changes if c.name.endswith(topic)} == set()
    assert all(newcomer.id in c.name for c in plan.changes), plan.render()
    exchange.reconcile()
    assert consume(exchange, "new", topic, want=1) == [b"for everyone"]
    with pytest.raises(KafkaException) as refused:
        consume(exchange, "new", topic_of(exchange, "none"), want=1)
    assert _refused(refused) == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_hand_added_acl_and_user_are_drift_and_removed(exchange: Exchange) -> None:
    exchange.reconcile()
    stray_acls = acls.consumer_acls(exchange.dept("scj").id, topic_of(exchange, "none"))
    kafka_admin.create_acls(exchange.admin, stray_acls)
    hand_made = exchange.id("handmade")
    kafka_admin.upsert_scram_user(exchange.admin, hand_made, "secret-by-hand")

    plan = exchange.plan()
    deletes = {(c.kind, c.name) for c in plan.changes}
    assert ("user", hand_made) in deletes
    assert (
        "acl",
        f"ALLOW User:{exchange.dept('scj').id} READ topic {topic_of(exchange, 'none')}",
    ) in deletes
    assert all(c.action == "delete" for c in plan.changes), plan.render()
    assert all("drift: not derived from the catalog" in line for line in plan.render())
    # DESCRIBE is derived for nobody but the provider on a none topic, so both stray ACLs show.
    assert REGISTRY.get_sample_value("govbus_reconciler_drift", {"kind": "acl"}) == 2
    assert REGISTRY.get_sample_value("govbus_reconciler_drift", {"kind": "user"}) == 1

    exchange.reconcile()
    assert hand_made not in kafka_admin.scram_users(exchange.admin)
    assert not set(stray_acls) & kafka_admin.list_acls(exchange.admin)
    assert exchange.plan().changes == []
    assert REGISTRY.get_sample_value("govbus_reconciler_drift", {"kind": "acl"}) == 0


def test_a_topic_removed_from_the_catalog_is_deleted_only_with_the_flag(exchange: Exchange) -> None:
    exchange.reconcile()
    gone = topic_of(exchange, "none")
    exchange.spec = replace(
        exchange.spec, resources=tuple(r for r in exchange.spec.resources if r.share_type != "none")
    )
    plan = exchange.plan()
    topic_delete = next(c for c in plan.changes if c.kind == "topic")
    assert (topic_delete.action, topic_delete.name, topic_delete.needs_flag) == (
        "delete",
        gone,
        True,
    )
    assert "[needs --delete-topics]" in topic_delete.render()

    result = exchange.reconcile()
    assert [c.name for c in result.skipped] == [gone]
    assert gone in exchange.admin.list_topics(timeout=30).topics
    # Its ACLs went; only the topic itself is left for the flag.
    assert [(c.action, c.kind, c.name) for c in exchange.plan().changes] == [
        ("delete", "topic", gone)
    ]

    exchange.reconcile(delete_topics=True)
    assert gone not in exchange.admin.list_topics(timeout=30).topics
    assert exchange.plan().changes == []
