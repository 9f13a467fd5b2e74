"""The broker state derived from the catalog: who may write, who may read, how topics behave."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest
from confluent_kafka.admin import (
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from benchmarks.sample_catalog import generate_catalog
from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, load_yaml
from govbus.reconcile.desired import DesiredState, DesiredStateError, desired_state
from govbus.reconcile.plan import ActualState, Scope, make_plan
from govbus.vocabulary import secrets as reconcile_secrets
from govbus.vocabulary.acls import Acl
from govbus.vocabulary.grants import Grant
from govbus.vocabulary.naming import CATALOG_RELAY_USER, CATALOG_TOPIC, NAMING, SHARE_TOPIC
from govbus.vocabulary.spec import CatalogSpec, Resource

NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
READ, WRITE, DESCRIBE = AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE


@pytest.fixture(scope="module")
def sample() -> CatalogSpec:
    return load_yaml(SAMPLE_CATALOG_PATH)


def topic_acls(state: DesiredState, topic: str) -> set[tuple[str, AclOperation]]:
    return {
        (a.principal, a.operation)
        for a in state.acls
        if a.resource_type == ResourceType.TOPIC
        and a.resource_name == topic
        and a.permission == AclPermissionType.ALLOW
    }


def provider_id(spec: CatalogSpec, resource: Resource) -> str:
    dept = spec.department(resource.provider)
    assert dept is not None
    return dept.id


def of_type(spec: CatalogSpec, share_type: str) -> list[Resource]:
    found = [r for r in spec.resources if r.share_type == share_type]
    assert found, f"the sample has no {share_type} resource"
    return found


def test_only_the_provider_writes_each_resource(sample: CatalogSpec) -> None:
    state = desired_state(sample, now=NOW)
    for resource in sample.resources:
        topic = NAMING.resource_topic(resource.code)
        writers = {p for p, op in topic_acls(state, topic) if op == WRITE}
        assert writers == {f"User:{provider_id(sample, resource)}"}, resource.code
        assert (f"User:{provider_id(sample, resource)}", READ) in topic_acls(state, topic)


def test_topic_naming(sample: CatalogSpec) -> None:
    state = desired_state(sample, now=NOW)
    resource = sample.resources[0]
    assert NAMING.resource_topic(resource.code) == "gov." + resource.code.replace("/", ".")
    assert NAMING.resource_topic(resource.code) in state.topics
    for dept in sample.departments:
        assert state.users[dept.id].endswith(f"({dept.code})")
        assert NAMING.dlq_topic(dept.id) == f"dlq.{dept.id}"
        assert NAMING.dlq_topic(dept.id) in state.topics
    assert state.topics[CATALOG_TOPIC].config == {"cleanup.policy": "compact"}
    assert CATALOG_RELAY_USER in state.users
    # Share-request events: the full history stays (never compacted, never deleted).
    assert state.topics[SHARE_TOPIC].config == {"cleanup.policy": "delete", "retention.ms": "-1"}
    assert topic_acls(state, SHARE_TOPIC) == {
        (f"User:{CATALOG_RELAY_USER}", WRITE),
        (f"User:{CATALOG_RELAY_USER}", DESCRIBE),
    }


def test_unconditional_resources_have_one_wildcard_read(sample: CatalogSpec) -> None:
    state = desired_state(sample, now=NOW)
    for resource in of_type(sample, "unconditional"):
        acls = topic_acls(state, NAMING.resource_topic(resource.code))
        readers = {p for p, op in acls if op == READ}
        assert readers == {"User:*", f"User:{provider_id(sample, resource)}"}
        assert ("User:*", DESCRIBE) in acls


def test_none_resources_are_readable_only_by_the_provider(sample: CatalogSpec) -> None:
    grants = [Grant(d.code, r.code) for r in of_type(sample, "none") for d in sample.departments]
    state = desired_state(sample, grants, now=NOW)  # even a grant does not open them
    for resource in of_type(sample, "none"):
        readers = {
            p for p, op in topic_acls(state, NAMING.resource_topic(resource.code)) if op == READ
        }
        assert readers == {f"User:{provider_id(sample, resource)}"}


def test_conditional_resources_need_a_valid_grant(sample: CatalogSpec) -> None:
    resource = of_type(sample, "conditional")[0]
    topic = NAMING.resource_topic(resource.code)
    consumer = next(d for d in sample.departments if d.code != resource.provider)
    provider = f"User:{provider_id(sample, resource)}"

    def readers(*grants: Grant) -> set[str]:
        state = desired_state(sample, grants, now=NOW)
        return {p for p, op in topic_acls(state, topic) if op in (READ, DESCRIBE)} - {provider}

    assert readers() == set()
    assert readers(Grant(consumer.code, resource.code, NOW - dt.timedelta(seconds=1))) == set()
    assert readers(Grant(consumer.code, resource.code, NOW + dt.timedelta(days=1))) == {
        f"User:{consumer.id}"
    }
    assert readers(Grant(consumer.code, resource.code, None)) == {f"User:{consumer.id}"}
    state = desired_state(sample, [Grant(consumer.code, resource.code)], now=NOW)
    read = Acl(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, f"User:{consumer.id}", READ)
    assert "approved share request" in state.acls[read]


def test_each_department_has_its_group_prefix_and_dead_letter_topic(sample: CatalogSpec) -> None:
    state = desired_state(sample, now=NOW)
    for dept in sample.departments:
        group = Acl(
            ResourceType.GROUP, f"{dept.id}.", ResourcePatternType.PREFIXED, f"User:{dept.id}", READ
        )
        assert group in state.acls
        assert topic_acls(state, NAMING.dlq_topic(dept.id)) == {
            (f"User:{dept.id}", WRITE),
            (f"User:{dept.id}", DESCRIBE),
            (f"User:{dept.id}", READ),
        }
        dlq = state.topics[NAMING.dlq_topic(dept.id)].config
        assert dlq == {"cleanup.policy": "delete", "retention.ms": str(30 * 86_400_000)}


@pytest.mark.parametrize(
    ("cycle", "days"),
    [("realtime", 1), ("daily", 1), ("weekly", 7), ("monthly", 35), ("yearly", 35)],
)
def test_tombstone_retention_follows_the_update_cycle(
    sample: CatalogSpec, cycle: str, days: int
) -> None:
    resource = replace(sample.resources[0], update_cycle=cycle)
    spec = replace(sample, resources=(resource,))
    config = desired_state(spec, now=NOW).topics[NAMING.resource_topic(resource.code)].config
    assert config["cleanup.policy"] == "compact"
    assert config["delete.retention.ms"] == str(days * 86_400_000)


def test_every_item_has_a_reason(sample: CatalogSpec) -> None:
    state = desired_state(sample, now=NOW)
    gaj = next(d for d in sample.departments if d.id == "cz-gaj")
    population = next(r for r in sample.resources if r.provider == gaj.code)
    write = Acl(
        ResourceType.TOPIC,
        NAMING.resource_topic(population.code),
        ResourcePatternType.LITERAL,
        "User:cz-gaj",
        WRITE,
    )
    assert state.acls[write] == (
        f"provider {gaj.name} writes {population.name} (one data, one source)"
    )
    assert all(state.acls.values()) and all(state.users.values())
    assert all(t.reason for t in state.topics.values())


def test_unknown_provider_is_refused_with_the_resource_named(sample: CatalogSpec) -> None:
    resource = sample.resources[0]
    spec = replace(
        sample, departments=tuple(d for d in sample.departments if d.code != resource.provider)
    )
    with pytest.raises(DesiredStateError, match=resource.code):
        desired_state(spec, now=NOW)


def test_bindings_grow_with_resources_not_departments_times_resources() -> None:
    spec = generate_catalog(2000, 5, 500)
    state = desired_state(spec, now=NOW)
    assert len(state.acls) < 2000 * 6 + 500 * 5
    unconditional = sum(1 for r in spec.resources if r.share_type == "unconditional")
    assert unconditional > 0
    # Exactly: per resource the provider's WRITE, DESCRIBE, READ (+ User:* READ, DESCRIBE if
    # unconditional); per department its group prefix and three dead-letter bindings; the
    # relay's two on each of the catalog and share topics, plus three User:* bindings on the
    # audit topic; the lookup service's group and its two PREFIXED bindings on gov.*; two on the
    # quarantine (WRITE, DESCRIBE) and the auditor's 26 (READ and DESCRIBE on three topics, its
    # groups, one DENY WRITE, eight DENY prefixes and eight DENY platform topics). Nothing is
    # multiplied by the number of departments.
    assert len(state.acls) == 3 * 2000 + 2 * unconditional + 4 * 500 + 2 * 2 + 3 + 3 + 2 + 26
    naive = 500 * unconditional * 2
    assert len(state.acls) < naive / 10


def test_plan_against_an_empty_broker_creates_everything(sample: CatalogSpec) -> None:
    state = desired_state(sample, now=NOW)
    plan = make_plan(state, ActualState(Scope()))
    assert {c.action for c in plan.changes} == {"create"}
    assert len(plan.changes) == len(state.topics) + len(state.users) + len(state.acls)
    assert plan.drift() == {"topic": 0, "user": 0, "acl": 0}
    line = next(
        line
        for line in plan.render()
        if line.startswith("+ acl ALLOW User:cz-gaj WRITE topic gov.")
    )
    assert "— provider 常州市公安局 writes" in line


def test_plan_lists_drift_and_protects_the_admin(sample: CatalogSpec) -> None:
    state = desired_state(sample, now=NOW)
    stray = Acl(ResourceType.TOPIC, "gov.stray", ResourcePatternType.LITERAL, "User:x", READ)
    admin_acl = Acl(
        ResourceType.TOPIC, "gov.stray", ResourcePatternType.LITERAL, "User:admin", READ
    )
    actual = ActualState(Scope(), users={"admin", "hand-made"}, acls={stray, admin_acl})
    plan = make_plan(state, actual)
    deletes = [c for c in plan.changes if c.action == "delete"]
    assert {(c.kind, c.name) for c in deletes} == {
        ("user", "hand-made"),
        ("acl", "ALLOW User:x READ topic gov.stray"),
    }
    assert "- acl ALLOW User:x READ topic gov.stray — drift: not derived from the catalog" in (
        plan.render()
    )
    assert plan.drift() == {"topic": 0, "user": 1, "acl": 1}


def test_passwords_are_generated_once_and_private(tmp_path: Path) -> None:
    first = reconcile_secrets.password_for(tmp_path, "cz-gaj")
    assert len(first) >= 32
    assert reconcile_secrets.password_for(tmp_path, "cz-gaj") == first
    assert reconcile_secrets.password_for(tmp_path, "cz-mzj") != first
    path = tmp_path / "secrets" / "departments" / "cz-gaj.password"
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    store = reconcile_secrets.PasswordStore(tmp_path)
    assert store("cz-gaj") == first
    store(CATALOG_RELAY_USER)
    assert (tmp_path / "secrets" / "apps" / f"{CATALOG_RELAY_USER}.password").exists()
    with pytest.raises(ValueError, match="not a valid user name"):
        reconcile_secrets.password_for(tmp_path, "../escape")


def test_a_grant_for_part_of_the_items_opens_only_that_item_sets_projection(
    sample: CatalogSpec,
) -> None:
    resource = next(r for r in of_type(sample, "conditional") if len(r.items) >= 3)
    full = NAMING.resource_topic(resource.code)
    a, b, c = [d for d in sample.departments if d.code != resource.provider][:3]
    first, second, third = (i.code for i in resource.items[:3])
    grants = [
        Grant(a.code, resource.code, items=(second, first)),  # order does not matter
        Grant(b.code, resource.code, items=(first, second)),  # the same set: the same topic
        Grant(c.code, resource.code, items=(first, third)),
    ]
    state = desired_state(sample, grants, now=NOW)
    shared = NAMING.grant_view_topic(resource.code, (first, second))
    other = NAMING.grant_view_topic(resource.code, (first, third))
    assert shared != other and shared.startswith(full + ".items.")
    assert {shared, other} <= set(state.topics)
    assert state.topics[shared].config["cleanup.policy"] == "compact"
    assert topic_acls(state, shared) == {
        (f"User:{a.id}", READ), (f"User:{a.id}", DESCRIBE),
        (f"User:{b.id}", READ), (f"User:{b.id}", DESCRIBE),
    }  # fmt: skip
    assert topic_acls(state, other) == {(f"User:{c.id}", READ), (f"User:{c.id}", DESCRIBE)}
    # No READ on the full topic for any of them.
    assert {p for p, _ in topic_acls(state, full)} == {f"User:{provider_id(sample, resource)}"}
    # Every item (or none named) is the whole resource: the full topic, no projection.
    every = tuple(i.code for i in resource.items)
    whole = desired_state(sample, [Grant(a.code, resource.code, items=every)], now=NOW)
    assert (f"User:{a.id}", READ) in topic_acls(whole, full)
    assert not [t for t in whole.topics if t.startswith(full + ".items.")]


def test_revoked_or_expired_item_grants_leave_no_projection_binding(sample: CatalogSpec) -> None:
    resource = next(r for r in of_type(sample, "conditional") if len(r.items) >= 2)
    consumer = next(d for d in sample.departments if d.code != resource.provider)
    items = (resource.items[0].code,)
    topic = NAMING.grant_view_topic(resource.code, items)
    expired = Grant(consumer.code, resource.code, NOW - dt.timedelta(seconds=1), items=items)
    state = desired_state(sample, [expired], now=NOW)
    assert topic not in state.topics and topic_acls(state, topic) == set()
    # A grant whose items all left the catalog opens nothing.
    gone = desired_state(sample, [Grant(consumer.code, resource.code, items=("gone",))], now=NOW)
    assert not [a for a in gone.acls if a.principal == f"User:{consumer.id}" and
                a.resource_name.startswith(NAMING.resource_topic(resource.code))]  # fmt: skip


def test_every_reader_writes_the_quarantine_and_only_the_operator_reads_it(
    sample: CatalogSpec,
) -> None:
    state = desired_state(sample, now=NOW)
    topic = NAMING.quarantine_topic
    assert state.topics[topic].config["cleanup.policy"] == "compact"
    assert topic_acls(state, topic) == {
        ("User:*", WRITE), ("User:*", DESCRIBE), ("User:cz-dsjj", READ),
        ("User:cz-dsjj", DESCRIBE),
    }  # fmt: skip


def test_the_auditor_reads_the_audit_trails_and_nothing_else(sample: CatalogSpec) -> None:
    state = desired_state(sample, now=NOW)
    auditor = "User:govbus-auditor"
    assert "govbus-auditor" in state.users
    mine = {a for a in state.acls if a.principal == auditor}
    topics = {a for a in mine if a.resource_type == ResourceType.TOPIC}
    allowed = {
        (a.resource_name, a.operation) for a in topics if a.permission == AclPermissionType.ALLOW
    }
    assert allowed == {
        (t, op) for t in ("govbus.audit", "govbus.access", "govbus.violations")
        for op in (READ, DESCRIBE)
    }  # fmt: skip
    denied = {(a.resource_name, a.pattern, a.operation) for a in mine
              if a.permission == AclPermissionType.DENY}  # fmt: skip
    assert ("*", ResourcePatternType.LITERAL, WRITE) in denied
    # Every User:* READ the catalog opens (unconditional resources, public views) is denied to
    # it by a prefix, and no DENY touches the three topics it reads.
    everyone_reads = {a.resource_name for a in state.acls
                      if a.principal == "User:*" and a.operation == READ}  # fmt: skip
    prefixes = [n for n, p, op in denied if p == ResourcePatternType.PREFIXED and op == READ]
    literal = {n for n, p, op in denied if p == ResourcePatternType.LITERAL and op == READ}
    for topic in everyone_reads - {"govbus.audit"}:
        assert topic in literal or any(topic.startswith(p) for p in prefixes), topic
    for topic in ("govbus.audit", "govbus.access", "govbus.violations"):
        assert topic not in literal and not any(topic.startswith(p) for p in prefixes)
