"""Compare the broker with the desired state, list the changes, and apply them idempotently.

What the reconciler manages (``Scope``), and hence may delete as drift:

- topics whose names start with a managed prefix (``gov.``, ``dlq.``, ``govbus.``, ``govbus-``,
  ``verify.``, ``disputes.``);
- every SCRAM user except the protected principals (the admin and the controller): users are
  created only by the reconciler, so a user someone added by hand is drift and is deleted;
- ACLs on managed topics, and ACLs whose principal is a managed user or ``User:*``; ACLs of
  the protected principals are never touched.

Drift is what the broker has that the catalog does not derive: deletes, and alters of topics
whose configuration or partition count differs. Creates are the catalog being ahead of the
broker. Deleting a topic deletes its data, so a topic delete is only listed (``needs_flag``)
unless ``apply`` is called with ``allow_topic_deletion=True`` (``govbus apply --delete-topics``).

``apply`` runs creates before deletes (topics, users, ACLs; then ACL deletes, user deletes,
topic deletes) so nobody loses access in between, and waits until the broker shows each step:
planning again right after an apply gives an empty plan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from confluent_kafka import KafkaError
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from prometheus_client import Counter, Gauge

from govbus.broker import admin as kafka_admin
from govbus.broker.admin import TIMEOUT, AdminError, until_visible, wait_for
from govbus.reconcile.desired import DesiredState
from govbus.vocabulary.acls import Acl
from govbus.vocabulary.metrics import REGISTRY
from govbus.vocabulary.naming import (
    ADMIN_PRINCIPAL,
    CONTROLLER_PRINCIPAL,
    DISPUTE_TOPIC_PREFIX,
    DLQ_TOPIC_PREFIX,
    NAMING,
    PLATFORM_USER_PREFIX,
    RESOURCE_TOPIC_PREFIX,
    VERIFY_PREFIX,
    Naming,
)
from govbus.vocabulary.topology import TopicSpec

Action = Literal["create", "alter", "delete"]
Kind = Literal["topic", "user", "acl"]
KINDS: tuple[Kind, ...] = ("topic", "user", "acl")


def managed_topic_prefixes(naming: Naming = NAMING) -> tuple[str, ...]:
    """Every topic ``naming`` gives starts with one of these: resource topics and views, dead
    letters, platform topics (``govbus.``), the stream apps' topics and the Faust-internal
    topics of the apps (named after their ids, which start ``govbus-``)."""
    return tuple(
        naming.prefix + part
        for part in (RESOURCE_TOPIC_PREFIX, DLQ_TOPIC_PREFIX, "govbus.", PLATFORM_USER_PREFIX,
                     VERIFY_PREFIX, DISPUTE_TOPIC_PREFIX)
    )  # fmt: skip


MANAGED_PREFIXES = managed_topic_prefixes(NAMING)
EVERYONE = "User:*"
DRIFT_REASON = "drift: not derived from the catalog"

DRIFT = Gauge(
    "govbus_reconciler_drift",
    "Drift changes (deletes and alters) in the reconciler's last plan",
    ["kind"],
    registry=REGISTRY,
)
LAST_APPLY = Gauge(
    "govbus_reconciler_last_apply_timestamp_seconds",
    "When the reconciler last finished applying a plan (Unix time)",
    registry=REGISTRY,
)
APPLIED = Counter(
    "govbus_reconciler_changes_applied_total",
    "Changes the reconciler applied to the broker",
    ["action", "kind"],
    registry=REGISTRY,
)


@dataclass(frozen=True)
class Scope:
    """Which topics, users and ACLs the reconciler owns (see the module docstring)."""

    topic_prefixes: tuple[str, ...] = MANAGED_PREFIXES
    # None: every user that is not protected. Tests narrow it to their own users.
    user_prefixes: tuple[str, ...] | None = None
    protected_users: frozenset[str] = frozenset({ADMIN_PRINCIPAL, CONTROLLER_PRINCIPAL})
    # Whether User:* bindings on resources outside the managed topics are managed too.
    everyone: bool = True

    @classmethod
    def namespace(cls, naming: Naming, user_prefixes: tuple[str, ...] = ()) -> Scope:
        """Only a namespace of its own (a test's, or a second exchange's on the same cluster):
        every topic and platform user under ``naming.prefix``, the users starting with one of
        ``user_prefixes`` (department ids are not prefixed), and no ``User:*`` bindings
        outside its topics."""
        if not naming.prefix:
            raise ValueError("a namespace needs a prefix; the production names have none")
        prefixes = (naming.prefix, *user_prefixes)
        return cls(topic_prefixes=(naming.prefix,), user_prefixes=prefixes, everyone=False)

    def topic(self, name: str) -> bool:
        return name.startswith(self.topic_prefixes)

    def user(self, name: str) -> bool:
        if name in self.protected_users:
            return False
        return self.user_prefixes is None or name.startswith(self.user_prefixes)

    def acl(self, acl: Acl) -> bool:
        if acl.principal.removeprefix("User:") in self.protected_users:
            return False
        if acl.resource_type == ResourceType.TOPIC and self.topic(acl.resource_name):
            return True
        if acl.principal == EVERYONE:
            return self.everyone
        return acl.principal.startswith("User:") and self.user(acl.principal[len("User:") :])


@dataclass(frozen=True)
class TopicState:
    partitions: int
    overrides: Mapping[str, str]  # the topic's own (dynamic) configuration


@dataclass
class ActualState:
    """The managed part of the broker, as read by ``read_actual``."""

    scope: Scope
    topics: dict[str, TopicState] = field(default_factory=dict)
    users: set[str] = field(default_factory=set)
    acls: set[Acl] = field(default_factory=set)


@dataclass(frozen=True)
class Change:
    action: Action
    kind: Kind
    name: str
    reason: str
    needs_flag: bool = False  # topic deletes: only with allow_topic_deletion (--delete-topics)
    acl: Acl | None = None
    topic: TopicSpec | None = None  # create/alter: the desired topic
    unset: tuple[str, ...] = ()  # alter: topic overrides to remove
    detail: str = ""  # alter: what differs

    @property
    def drift(self) -> bool:
        return self.action != "create"

    def render(self) -> str:
        sign = {"create": "+", "alter": "~", "delete": "-"}[self.action]
        detail = f" ({self.detail})" if self.detail else ""
        flag = " [needs --delete-topics]" if self.needs_flag else ""
        return f"{sign} {self.kind} {self.name}{detail} — {self.reason}{flag}"


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def render(self) -> list[str]:
        return [c.render() for c in self.changes]

    def drift(self) -> dict[Kind, int]:
        counts: dict[Kind, int] = dict.fromkeys(KINDS, 0)
        for c in self.changes:
            if c.drift:
                counts[c.kind] += 1
        return counts


@dataclass
class ApplyResult:
    applied: list[Change] = field(default_factory=list)
    skipped: list[Change] = field(default_factory=list)  # topic deletes without the flag

    def render(self) -> list[str]:
        lines = [c.render() for c in self.applied]
        lines += [f"skipped: {c.render()}" for c in self.skipped]
        return lines


def acl_text(acl: Acl) -> str:
    """``ALLOW User:cz-gaj WRITE topic gov.10101...`` (``group cz-gaj.* (prefixed)``)."""
    prefixed = acl.pattern == ResourcePatternType.PREFIXED
    name = acl.resource_name + ("* (prefixed)" if prefixed else "")
    return (
        f"{acl.permission.name} {acl.principal} {acl.operation.name} "
        f"{acl.resource_type.name.lower()} {name}"
    )


# --- reading the broker ----------------------------------------------------------------------


def read_actual(
    admin: AdminClient,
    managed_prefixes: tuple[str, ...] = MANAGED_PREFIXES,
    *,
    scope: Scope | None = None,
) -> ActualState:
    """Topics (partitions, own configuration), SCRAM users and ACLs the scope manages."""
    scope = scope or Scope(topic_prefixes=managed_prefixes)
    actual = ActualState(scope)
    metadata = admin.list_topics(timeout=TIMEOUT)
    names = sorted(name for name in metadata.topics if scope.topic(name))
    overrides = _topic_overrides(admin, names)
    for name in names:
        partitions = len(metadata.topics[name].partitions)
        actual.topics[name] = TopicState(partitions, overrides.get(name, {}))
    actual.users = {u for u in kafka_admin.scram_users(admin) if scope.user(u)}
    actual.acls = {a for a in kafka_admin.list_acls(admin) if scope.acl(a)}
    return actual


def _is_override(entry: ConfigEntry) -> bool:
    # The C layer may hand the source over as a plain int.
    source = getattr(entry.source, "value", entry.source)
    return bool(source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value)


def _topic_overrides(admin: AdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    if not names:
        return {}
    futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, n) for n in names])
    out: dict[str, dict[str, str]] = {}
    for resource, future in futures.items():
        try:
            entries: dict[str, ConfigEntry] = future.result(timeout=TIMEOUT)
        except Exception as exc:  # a topic deleted meanwhile: planned again next time
            if "UNKNOWN_TOPIC" in str(exc):
                continue
            raise AdminError(
                f"reading the configuration of topic {resource.name!r}: {exc}"
            ) from exc
        out[resource.name] = {
            k: e.value for k, e in entries.items() if _is_override(e) and e.value is not None
        }
    return out


# --- planning --------------------------------------------------------------------------------


def make_plan(desired: DesiredState, actual: ActualState) -> Plan:
    """The changes that make the managed part of the broker equal to ``desired``.

    Objects outside ``actual.scope`` are left out on both sides: the protected principals
    and anything unmanaged are never changed, whatever ``actual`` holds.
    """
    scope = actual.scope
    actual = ActualState(
        scope,
        {n: t for n, t in actual.topics.items() if scope.topic(n)},
        {u for u in actual.users if scope.user(u)},
        {a for a in actual.acls if scope.acl(a)},
    )
    creates: list[Change] = []
    alters: list[Change] = []
    deletes: list[Change] = []

    topics = {n: t for n, t in desired.topics.items() if scope.topic(n)}
    for name in sorted(topics):
        want = topics[name]
        have = actual.topics.get(name)
        if have is None:
            creates.append(Change("create", "topic", name, want.reason, topic=want))
            continue
        diffs = [
            f"{k}: {have.overrides.get(k, 'default')} → {v}"
            for k, v in sorted(want.config.items())
            if have.overrides.get(k) != v
        ]
        unset = tuple(sorted(set(have.overrides) - set(want.config)))
        diffs += [f"{k}: {have.overrides[k]} → default" for k in unset]
        # Never fewer partitions (Kafka cannot shrink a topic). More partitions move keys to
        # other partitions, so per-key order holds only for records written afterwards.
        if have.partitions < want.partitions:
            diffs.append(f"partitions: {have.partitions} → {want.partitions}")
        if diffs:
            alters.append(
                Change(
                    "alter",
                    "topic",
                    name,
                    f"drift: {want.reason}",
                    topic=want,
                    unset=unset,
                    detail="; ".join(diffs),
                )
            )
    for name in sorted(set(actual.topics) - set(topics)):
        deletes.append(Change("delete", "topic", name, DRIFT_REASON, needs_flag=True))

    users = {u: r for u, r in desired.users.items() if scope.user(u)}
    creates += [Change("create", "user", u, users[u]) for u in sorted(set(users) - actual.users)]
    user_deletes = [
        Change("delete", "user", u, DRIFT_REASON) for u in sorted(actual.users - set(users))
    ]

    acls = {a: r for a, r in desired.acls.items() if scope.acl(a)}
    creates += [
        Change("create", "acl", acl_text(a), acls[a], acl=a)
        for a in sorted(set(acls) - actual.acls, key=acl_text)
    ]
    acl_deletes = [
        Change("delete", "acl", acl_text(a), DRIFT_REASON, acl=a)
        for a in sorted(actual.acls - set(acls), key=acl_text)
    ]

    plan = Plan(creates + alters + acl_deletes + user_deletes + deletes)
    for kind, count in plan.drift().items():
        DRIFT.labels(kind=kind).set(count)
    return plan


# --- applying --------------------------------------------------------------------------------


def apply(
    plan: Plan,
    admin: AdminClient,
    secrets: Callable[[str], str],
    allow_topic_deletion: bool = False,
) -> ApplyResult:
    """Carry out ``plan`` in a safe order; ``secrets(user)`` gives a new user's password.

    Topic deletes are done only with ``allow_topic_deletion``; otherwise they are returned as
    skipped. Each step waits until the broker shows it, so a new plan afterwards is empty.
    """
    result = ApplyResult()

    def pick(action: Action, kind: Kind) -> list[Change]:
        return [c for c in plan.changes if c.action == action and c.kind == kind]

    def done(changes: list[Change]) -> None:
        for c in changes:
            APPLIED.labels(action=c.action, kind=c.kind).inc()
        result.applied += changes

    topic_creates = pick("create", "topic")
    _create_topics(admin, topic_creates)
    done(topic_creates)
    for change in pick("alter", "topic"):
        _alter_topic(admin, change)
        done([change])
    for change in pick("create", "user"):
        kafka_admin.upsert_scram_user(admin, change.name, secrets(change.name))
        done([change])
    acl_creates = pick("create", "acl")
    kafka_admin.create_acls(admin, [c.acl for c in acl_creates if c.acl])
    done(acl_creates)

    acl_deletes = pick("delete", "acl")
    kafka_admin.delete_acls(admin, [c.acl for c in acl_deletes if c.acl])
    done(acl_deletes)
    for change in pick("delete", "user"):
        kafka_admin.delete_scram_user(admin, change.name)
        done([change])
    for change in pick("delete", "topic"):
        if not allow_topic_deletion:
            result.skipped.append(change)
            continue
        kafka_admin.delete_topic(admin, change.name)
        until_visible(_topic_gone(admin, change.name), f"deleting topic {change.name!r}")
        done([change])

    LAST_APPLY.set_to_current_time()
    return result


def _topic_names(admin: AdminClient) -> set[str]:
    return set(admin.list_topics(timeout=TIMEOUT).topics)


def _topic_gone(admin: AdminClient, name: str) -> Callable[[], bool]:
    return lambda: name not in _topic_names(admin)


def _create_topics(admin: AdminClient, changes: list[Change]) -> None:
    """One request for all topics (thousands on a first apply), then wait until listed."""
    new = [
        NewTopic(c.name, c.topic.partitions, c.topic.replication, config=dict(c.topic.config))
        for c in changes
        if c.topic
    ]
    if not new:
        return
    wait_for(admin.create_topics(new), "creating topics", (KafkaError.TOPIC_ALREADY_EXISTS,))
    names = {t.topic for t in new}
    until_visible(lambda: names <= _topic_names(admin), f"creating {len(names)} topics")


def _alter_topic(admin: AdminClient, change: Change) -> None:
    assert change.topic is not None
    want = change.topic
    entries = [
        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
        for k, v in want.config.items()
    ] + [ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE) for k in change.unset]
    resource = ConfigResource(ResourceType.TOPIC, change.name, incremental_configs=entries)
    wait_for(admin.incremental_alter_configs([resource]), f"altering topic {change.name!r}")
    metadata = admin.list_topics(change.name, timeout=TIMEOUT).topics.get(change.name)
    if metadata is not None and len(metadata.partitions) < want.partitions:
        wait_for(
            admin.create_partitions([NewPartitions(change.name, want.partitions)]),
            f"adding partitions to topic {change.name!r}",
        )

    def shown() -> bool:
        overrides = _topic_overrides(admin, [change.name]).get(change.name, {})
        meta = admin.list_topics(change.name, timeout=TIMEOUT).topics[change.name]
        return dict(overrides) == dict(want.config) and len(meta.partitions) >= want.partitions

    until_visible(shown, f"altering topic {change.name!r}")
