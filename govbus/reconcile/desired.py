"""What the broker should hold, derived from the catalog alone (pure: no broker access).

Naming (README "Naming convention"):

- resource topic (current state, compacted by the one-data-one-source key): ``gov.<code>``,
  the resource code with ``/`` replaced by ``.``;
- a department's dead letters: ``dlq.<department id>``;
- a department's SCRAM user (principal ``User:<id>``): the department id;
- a department's consumer groups: prefixed ``<id>.`` (PREFIXED GROUP READ);
- catalog events (compacted): ``govbus.catalog``, written by the platform app
  ``govbus-catalog-relay``;
- share-request events (kept forever): ``govbus.share``, written by the same relay.

Access, per share type of the measures:

- one data, one source: only the provider holds WRITE (+DESCRIBE) on its resource's topic, and
  it may always READ it;
- 无条件共享 (unconditional): ONE binding ``User:*`` READ+DESCRIBE per topic. Every principal that
  can authenticate is a registered department or a platform app (SCRAM users are created only
  by this reconciler and the admin), so ``User:*`` means "every department". Bindings grow with
  resources, not departments × resources, and a department registered later can read at once;
- 有条件共享 (conditional): READ+DESCRIBE only for departments holding a valid ``Grant`` (an
  approved share request, not expired at ``now``); grants for other share types give nothing;
- 不予共享 (none): READ only for the provider.

Each department also gets READ on its consumer-group prefix and WRITE+DESCRIBE+READ on its own
dead-letter topic (its producers park refused records there and it reads them back).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType

from govbus.catalog.spec import CatalogSpec, Department, Resource, UpdateCycle
from govbus.reconcile.kafka_admin import (
    Acl,
    consumer_acls,
    group_prefix_acls,
    principal,
    producer_acls,
)

RESOURCE_TOPIC_PREFIX = "gov."
DLQ_TOPIC_PREFIX = "dlq."
CATALOG_TOPIC = "govbus.catalog"
CATALOG_RELAY_USER = "govbus-catalog-relay"
AUDIT_TOPIC = "govbus.audit"  # usage audit events of consumers (govbus.subscribe.audit)
SHARE_TOPIC = "govbus.share"  # share-request events (govbus.share.requests)
# Principals of platform apps: the reconciler creates them like departments' users.
PLATFORM_APPS: Mapping[str, str] = {
    CATALOG_RELAY_USER: (
        f"platform app: publishes catalog events to {CATALOG_TOPIC} and share-request events "
        f"to {SHARE_TOPIC}"
    ),
}
# Every platform app's user (the catalog relay, the stream apps) is named with this prefix, and
# its Faust-internal topics start with it; no department may take such an id.
PLATFORM_USER_PREFIX = "govbus-"
EVERYONE = "*"  # User:* — every authenticated principal, i.e. every registered department

_DAY_MS = 24 * 3600 * 1000
DLQ_RETENTION_MS = 30 * _DAY_MS

# How long a tombstone (a deleted key) stays in a compacted topic. A consumer that reads at
# the resource's update cycle must still find the delete when it comes back, or it keeps the
# deleted record forever: a day covers daily readers, a week weekly ones. Beyond a month
# consumers are expected to stay subscribed; 35 days (a month plus slack for holidays) bounds
# how long deleted keys occupy the log.
_TOMBSTONE_DAYS: Mapping[UpdateCycle, int] = {
    "realtime": 1,
    "daily": 1,
    "weekly": 7,
    "monthly": 35,
    "quarterly": 35,
    "half-yearly": 35,
    "yearly": 35,
    "other": 35,
}


class DesiredStateError(ValueError):
    """The catalog cannot be turned into broker state; the message names the object."""


@dataclass(frozen=True)
class Grant:
    """An approved share request: ``department_code`` may read ``resource_code`` until expiry."""

    department_code: str  # 统一社会信用代码 of the consumer department
    resource_code: str
    expires_at: dt.datetime | None = None  # None: no expiry

    def valid_at(self, now: dt.datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


@dataclass(frozen=True)
class TopicSpec:
    partitions: int
    replication: int  # -1: the broker's default
    config: Mapping[str, str]
    reason: str


@dataclass
class DesiredState:
    """topics: name → spec; users: SCRAM user → reason; acls: binding → reason."""

    topics: dict[str, TopicSpec] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    acls: dict[Acl, str] = field(default_factory=dict)

    def add_acls(self, acls: Iterable[Acl], reason: str) -> None:
        for acl in acls:
            self.acls.setdefault(acl, reason)  # the first (most specific) reason stays


@dataclass(frozen=True)
class StreamApp:
    """What one platform stream app (stream_apps/) needs on the broker, and nothing more.

    The app authenticates as ``user`` and uses consumer group ``app_id``; Faust names its
    internal topics after ``app_id`` (see ``internal_topics``). The reconciler creates those and
    ``topics`` (the app's outputs, and inputs nobody else creates), grants the app READ on
    ``reads`` and WRITE on ``writes``, and adds ``acls``: what the app's design gives other
    principals (e.g. holders WRITE on observation topics).
    """

    app_id: str
    user: str
    purpose: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()  # Faust table names; each has a compacted changelog topic
    topics: Mapping[str, TopicSpec] = field(default_factory=dict)
    acls: Mapping[Acl, str] = field(default_factory=dict)

    def changelog_topic(self, table: str) -> str:
        return f"{self.app_id}-{table}-changelog"  # Faust's naming

    @property
    def leader_topic(self) -> str:
        return f"{self.app_id}-__assignor-__leader"  # Faust's leader election topic

    def internal_topics(self) -> tuple[str, ...]:
        return (self.leader_topic, *(self.changelog_topic(t) for t in self.tables))


def resource_topic(resource_code: str, topic_prefix: str = RESOURCE_TOPIC_PREFIX) -> str:
    return topic_prefix + resource_code.replace("/", ".")


# Topics of the stream apps (stream_apps/). ``prefix`` namespaces them like ``topic_prefix``.
VIOLATIONS_TOPIC = "govbus.violations"  # article 26 violation records, from every component
FRESHNESS_TOPIC = "govbus.freshness"  # freshness breaches (articles 18, 26(2))


def violations_topic_spec(partitions: int, replication: int) -> TopicSpec:
    """One definition for every app that records violations (disputes, freshness)."""
    return TopicSpec(
        partitions,
        replication,
        # Keys are "<kind>:<subject>", one per violation: compaction only removes the repeats
        # at-least-once delivery can cause, and nothing expires (the yearly evaluation).
        {"cleanup.policy": "compact"},
        "article 26 violation records, keyed kind:subject; kept for the yearly evaluation",
    )


def observation_topic(resource_code: str, prefix: str = "verify.") -> str:
    """Holders' copies of a resource's items, cross-checked against ``gov.<code>``."""
    return prefix + resource_code.replace("/", ".")


def dispute_topic(resource_code: str, prefix: str = "disputes.") -> str:
    """Dispute events of one resource (compacted by dispute id)."""
    return prefix + resource_code.replace("/", ".")


def dispute_actions_topic(dept_id: str, prefix: str = "disputes.actions.") -> str:
    """What one department files or does about disputes; only it may write here, so the
    topic name proves who acted."""
    return prefix + dept_id


def public_view_topic(resource_code: str, topic_prefix: str = RESOURCE_TOPIC_PREFIX) -> str:
    """Article 10 projection: only the items shareable with everyone, masked as catalogued."""
    return resource_topic(resource_code, topic_prefix) + ".public"


def status_topic(resource_code: str, topic_prefix: str = RESOURCE_TOPIC_PREFIX) -> str:
    """Per-record verification status (article 19: consumers see "under verification")."""
    return resource_topic(resource_code, topic_prefix) + ".status"


def dlq_topic(dept_id: str) -> str:
    return DLQ_TOPIC_PREFIX + dept_id


def group_prefix(dept_id: str) -> str:
    return f"{dept_id}."


def resource_topic_config(resource: Resource) -> dict[str, str]:
    return {
        # Current state keyed by the one-data-one-source key: the newest record per key stays.
        "cleanup.policy": "compact",
        "delete.retention.ms": str(_TOMBSTONE_DAYS[resource.update_cycle] * _DAY_MS),
    }


def dlq_topic_config() -> dict[str, str]:
    return {"cleanup.policy": "delete", "retention.ms": str(DLQ_RETENTION_MS)}


def desired_state(
    spec: CatalogSpec,
    grants: Iterable[Grant] = (),
    *,
    partitions: int = 3,
    replication: int = -1,
    now: dt.datetime | None = None,
    topic_prefix: str = RESOURCE_TOPIC_PREFIX,
    platform_apps: bool = True,
    stream_apps: Iterable[StreamApp] = (),
) -> DesiredState:
    """Topics, users and ACLs the catalog (and the grants valid at ``now``) call for.

    ``topic_prefix`` replaces ``gov.`` (tests use a namespace of their own); with
    ``platform_apps=False`` the catalog relay's user, topic and ACLs are left out.
    ``stream_apps`` are the platform's stream apps to run (stream_apps/registry.py).
    """
    now = now or dt.datetime.now(dt.UTC)
    state = DesiredState()
    by_code = {d.code: d for d in spec.departments}

    for dept in spec.departments:
        if dept.id in PLATFORM_APPS or dept.id.startswith(PLATFORM_USER_PREFIX):
            raise DesiredStateError(
                f"department {dept.name} ({dept.code}): id {dept.id!r} is reserved for a "
                f"platform app (ids starting {PLATFORM_USER_PREFIX!r}); choose another id"
            )
        _department(state, dept, partitions, replication)

    for resource in spec.resources:
        provider = by_code.get(resource.provider)
        if provider is None:
            raise DesiredStateError(
                f"resource {resource.code} ({resource.name}): provider {resource.provider} is "
                "not a department of the catalog (rule: every provider is a registered "
                "department); add the department or fix the provider code"
            )
        _resource(state, resource, provider, partitions, replication, topic_prefix)

    conditional = {r.code: r for r in spec.resources if r.share_type == "conditional"}
    for grant in grants:
        granted = conditional.get(grant.resource_code)
        grantee = by_code.get(grant.department_code)
        # Only conditional resources are granted; a grant whose department or resource left
        # the catalog has nobody or nothing to apply to.
        if granted is None or grantee is None or not grant.valid_at(now):
            continue
        resource, dept = granted, grantee
        topic = resource_topic(resource.code, topic_prefix)
        expiry = grant.expires_at.isoformat() if grant.expires_at else "no expiry"
        state.add_acls(
            consumer_acls(dept.id, topic),
            f"{dept.name} holds an approved share request for {resource.name} "
            f"(有条件共享, until {expiry})",
        )

    for app in stream_apps:
        _stream_app(state, app, partitions, replication)

    if platform_apps:
        state.topics[CATALOG_TOPIC] = TopicSpec(
            partitions,
            replication,
            {"cleanup.policy": "compact"},
            "catalog events, compacted: the newest event per resource stays",
        )
        for user, reason in PLATFORM_APPS.items():
            state.users[user] = reason
        state.add_acls(
            producer_acls(CATALOG_RELAY_USER, CATALOG_TOPIC),
            f"{CATALOG_RELAY_USER} relays the catalog outbox to {CATALOG_TOPIC}",
        )
        # Never compacted: a request's events share its key and its whole history matters
        # (who answered when, what was revoked); kept forever for the yearly evaluation.
        state.topics[SHARE_TOPIC] = TopicSpec(
            partitions,
            replication,
            {"cleanup.policy": "delete", "retention.ms": "-1"},
            "share-request events (articles 16-17), keyed by request, kept in full",
        )
        state.add_acls(
            producer_acls(CATALOG_RELAY_USER, SHARE_TOPIC),
            f"{CATALOG_RELAY_USER} relays the share-request outbox to {SHARE_TOPIC}",
        )
        # Never compacted: every event of a department shares its key, and the chain needs
        # them all. Kept forever: the evaluation looks back at least a year.
        state.topics[AUDIT_TOPIC] = TopicSpec(
            partitions,
            replication,
            {"cleanup.policy": "delete", "retention.ms": "-1"},
            "usage audit events (article 18), hash-chained per department",
        )
        # Every subscriber appends its own events and reads back its chain head. They carry
        # no personal data (who used which resource, for what, how much), and one User:*
        # binding per operation keeps this independent of the number of departments.
        state.add_acls(
            producer_acls(EVERYONE, AUDIT_TOPIC) + consumer_acls(EVERYONE, AUDIT_TOPIC),
            "every department records and reads back its usage audit chain",
        )
    return state


def _stream_app(state: DesiredState, app: StreamApp, partitions: int, replication: int) -> None:
    if app.user in state.users:
        raise DesiredStateError(
            f"stream app {app.app_id}: user {app.user!r} is already a department or another "
            "app; every app needs a user of its own"
        )
    state.users[app.user] = f"platform app: {app.purpose}"
    for name, spec in app.topics.items():
        state.topics.setdefault(name, spec)
    # Internal topics: partitions must equal the app's source partitions (Faust co-partitions
    # a table with the stream that fills it).
    state.topics[app.leader_topic] = TopicSpec(
        1, replication, {}, f"leader election of stream app {app.app_id}"
    )
    for table in app.tables:
        state.topics[app.changelog_topic(table)] = TopicSpec(
            partitions,
            replication,
            {"cleanup.policy": "compact"},
            f"changelog of table {table!r} of stream app {app.app_id}: restores it after a restart",
        )
    for topic in app.internal_topics():
        state.add_acls(
            producer_acls(app.user, topic) + consumer_acls(app.user, topic),
            f"stream app {app.app_id} keeps its state in {topic}",
        )
    state.add_acls(
        [Acl(ResourceType.GROUP, app.app_id, ResourcePatternType.LITERAL, principal(app.user),
             AclOperation.READ)],
        f"stream app {app.app_id} consumes in its own group",
    )  # fmt: skip
    for topic in app.reads:
        state.add_acls(consumer_acls(app.user, topic), f"stream app {app.app_id} reads {topic}")
    for topic in app.writes:
        state.add_acls(producer_acls(app.user, topic), f"stream app {app.app_id} writes {topic}")
    for acl, reason in app.acls.items():
        state.acls.setdefault(acl, reason)


def _department(state: DesiredState, dept: Department, partitions: int, replication: int) -> None:
    state.users[dept.id] = f"department {dept.name} ({dept.code})"
    dlq = dlq_topic(dept.id)
    state.topics[dlq] = TopicSpec(
        partitions,
        replication,
        dlq_topic_config(),
        f"dead letters of {dept.name}, kept 30 days",
    )
    state.add_acls(
        group_prefix_acls(dept.id, group_prefix(dept.id)),
        f"{dept.name} uses consumer groups named {group_prefix(dept.id)}*",
    )
    state.add_acls(
        producer_acls(dept.id, dlq), f"{dept.name}'s producers write dead letters to {dlq}"
    )
    state.add_acls(consumer_acls(dept.id, dlq), f"{dept.name} reads back its dead letters")


def _resource(
    state: DesiredState,
    resource: Resource,
    provider: Department,
    partitions: int,
    replication: int,
    topic_prefix: str,
) -> None:
    topic = resource_topic(resource.code, topic_prefix)
    state.topics[topic] = TopicSpec(
        partitions,
        replication,
        resource_topic_config(resource),
        f"current state of {resource.name} ({resource.code}), updated {resource.update_cycle}",
    )
    state.add_acls(
        producer_acls(provider.id, topic),
        f"provider {provider.name} writes {resource.name} (one data, one source)",
    )
    state.add_acls(
        consumer_acls(provider.id, topic), f"provider {provider.name} reads its own {resource.name}"
    )
    if resource.share_type == "unconditional":
        state.add_acls(
            consumer_acls(EVERYONE, topic),
            f"{resource.name} is shared unconditionally (无条件共享): every department reads it",
        )
