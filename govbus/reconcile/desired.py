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
  approved share request, not expired at ``now``); grants for other share types give nothing.
  A grant for every item (or naming none) opens the resource topic; a grant for part of the
  items opens only the grant view ``gov.<code>.items.<digest>`` of exactly that item set
  (created here, filled by the projector app), never the full topic: the broker keeps the
  other items from the grantee. Grants for the same item set share one topic, so topics grow
  with distinct item sets and bindings with grants (O(resources + distinct grants));
  a revoked or expired grant's bindings are gone from the next plan;
- 不予共享 (none): READ only for the provider.

Each department also gets READ on its consumer-group prefix and WRITE+DESCRIBE+READ on its own
dead-letter topic (its producers park refused records there and it reads them back).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType

from govbus.vocabulary.acls import (
    Acl,
    consumer_acls,
    deny_acls,
    group_prefix_acls,
    principal,
    producer_acls,
)
from govbus.vocabulary.grants import Grant, granted_items
from govbus.vocabulary.naming import (
    AUDITOR,
    CATALOG_RELAY,
    DEFAULT_OPERATOR,
    DISPUTE_TOPIC_PREFIX,
    DLQ_TOPIC_PREFIX,
    EVERYONE,
    LOOKUP,
    NAMING,
    PLATFORM_USER_PREFIX,
    RESOURCE_TOPIC_PREFIX,
    VERIFY_PREFIX,
    Naming,
)
from govbus.vocabulary.spec import CatalogSpec, Department, Resource
from govbus.vocabulary.topology import (
    DesiredStateError,
    StreamApp,
    TopicSpec,
    dlq_topic_config,
    quarantine_topic_spec,
    resource_topic_config,
    unknown_department,
    violations_topic_spec,
)


@dataclass
class DesiredState:
    """topics: name → spec; users: SCRAM user → reason; acls: binding → reason."""

    topics: dict[str, TopicSpec] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    acls: dict[Acl, str] = field(default_factory=dict)

    def add_acls(self, acls: Iterable[Acl], reason: str) -> None:
        for acl in acls:
            self.acls.setdefault(acl, reason)  # the first (most specific) reason stays


def desired_state(
    spec: CatalogSpec,
    grants: Iterable[Grant] = (),
    *,
    partitions: int = 3,
    replication: int = -1,
    now: dt.datetime | None = None,
    naming: Naming = NAMING,
    platform_apps: bool = True,
    stream_apps: Iterable[StreamApp] = (),
    operator: str = DEFAULT_OPERATOR,
) -> DesiredState:
    """Topics, users and ACLs the catalog (and the grants valid at ``now``) call for.

    ``naming`` gives every name (tests pass a namespace of their own); with
    ``platform_apps=False`` the catalog relay's user, topic and ACLs are left out.
    ``stream_apps`` are the platform's stream apps to run (stream_apps/registry.py).
    ``operator`` is the platform operator's department id (it reads the quarantine).
    """
    now = now or dt.datetime.now(dt.UTC)
    state = DesiredState()
    by_code = {d.code: d for d in spec.departments}

    for dept in spec.departments:
        if dept.id.startswith(PLATFORM_USER_PREFIX):
            raise DesiredStateError(
                f"department {dept.name} ({dept.code}): id {dept.id!r} is reserved for a "
                f"platform app (ids starting {PLATFORM_USER_PREFIX!r}); choose another id"
            )
        _department(state, dept, partitions, replication, naming)

    for resource in spec.resources:
        provider = by_code.get(resource.provider)
        if provider is None:
            raise unknown_department(resource, "provider", resource.provider)
        _resource(state, resource, provider, partitions, replication, naming)

    conditional = {r.code: r for r in spec.resources if r.share_type == "conditional"}
    for grant in grants:
        granted = conditional.get(grant.resource_code)
        grantee = by_code.get(grant.department_code)
        # Only conditional resources are granted; a grant whose department or resource left
        # the catalog has nobody or nothing to apply to.
        if granted is None or grantee is None or not grant.valid_at(now):
            continue
        resource, dept = granted, grantee
        items = granted_items(grant, resource)
        if items == ():
            continue  # none of the granted items is in the catalog any more
        expiry = grant.expires_at.isoformat() if grant.expires_at else "no expiry"
        if items is None:
            topic = naming.resource_topic(resource.code)
            scope = "every item"
        else:
            topic = naming.grant_view_topic(resource.code, items)
            scope = f"items {', '.join(items)} only"
            state.topics.setdefault(
                topic,
                TopicSpec(
                    partitions,
                    replication,
                    resource_topic_config(resource),
                    f"grant view of {resource.name} ({resource.code}): {scope}, kept by the "
                    "projector for the departments granted exactly these (articles 16-17)",
                ),
            )
        state.add_acls(
            consumer_acls(dept.id, topic),
            f"{dept.name} holds an approved share request for {resource.name} "
            f"(有条件共享, {scope}, until {expiry})",
        )

    for app in stream_apps:
        _stream_app(state, app, partitions, replication)

    if platform_apps:
        relay = naming.app_user(CATALOG_RELAY)
        catalog_topic, share_topic = naming.catalog_topic, naming.share_topic
        audit_topic = naming.audit_topic
        state.topics[catalog_topic] = TopicSpec(
            partitions,
            replication,
            {"cleanup.policy": "compact"},
            "catalog events, compacted: the newest event per resource stays",
        )
        state.users[relay] = (
            f"platform app: publishes catalog events to {catalog_topic} and share-request "
            f"events to {share_topic}"
        )
        state.add_acls(
            producer_acls(relay, catalog_topic),
            f"{relay} relays the catalog outbox to {catalog_topic}",
        )
        # Never compacted: a request's events share its key and its whole history matters
        # (who answered when, what was revoked); kept forever for the yearly evaluation.
        state.topics[share_topic] = TopicSpec.kept_forever(
            partitions,
            replication,
            "share-request events (articles 16-17), keyed by request, kept in full",
        )
        state.add_acls(
            producer_acls(relay, share_topic),
            f"{relay} relays the share-request outbox to {share_topic}",
        )
        # Never compacted: every event of a department shares its key, and the chain needs
        # them all. Kept forever: the evaluation looks back at least a year.
        state.topics[audit_topic] = TopicSpec.kept_forever(
            partitions, replication, "usage audit events (article 18), hash-chained per department"
        )
        # Every subscriber appends its own events and reads back its chain head. They carry
        # no personal data (who used which resource, for what, how much), and one User:*
        # binding per operation keeps this independent of the number of departments.
        state.add_acls(
            producer_acls(EVERYONE, audit_topic) + consumer_acls(EVERYONE, audit_topic),
            "every department records and reads back its usage audit chain",
        )
        quarantine = naming.quarantine_topic
        state.topics.setdefault(quarantine, quarantine_topic_spec(partitions, replication))
        state.add_acls(
            producer_acls(EVERYONE, quarantine),
            "every reader sets aside records it cannot use (article 26(4))",
        )
        if spec.department_by_id(operator) is not None:
            state.add_acls(
                consumer_acls(operator, quarantine),
                "the platform operator reviews unusable records with their providers",
            )
        access = naming.access_topic
        state.topics[access] = TopicSpec.kept_forever(
            partitions,
            replication,
            "broker-side access evidence: who read which topic when, from the authorizer's log",
        )
        # Article 26 violations: the access evidence check writes its candidates there (the
        # disputes and freshness apps declare the same topic).
        state.topics.setdefault(
            naming.violations_topic, violations_topic_spec(partitions, replication)
        )
        _auditor(state, naming)
        add_lookup_service(state, naming)
    return state


def add_lookup_service(state: DesiredState, naming: Naming = NAMING) -> None:
    """The lookup service's user (govbus.lookup, article 16 联机查询): it reads every resource
    topic and status topic as a trusted platform component and filters each answer to the
    asking department's rights itself; it writes the usage audit (``User:*`` may).

    Two PREFIXED bindings on ``gov.`` (READ, DESCRIBE) rather than two per topic: their number
    does not grow with the catalog."""
    user = naming.app_user(LOOKUP)
    state.users[user] = (
        "platform app: the lookup service (联机查询), answers departments by key from the "
        "resource topics, every query audited"
    )
    state.add_acls(
        [Acl(ResourceType.GROUP, user, ResourcePatternType.LITERAL, principal(user),
             AclOperation.READ)],
        f"the lookup service's instances share the partitions in group {user}",
    )  # fmt: skip
    prefix = naming.resource_topic_prefix
    state.add_acls(
        [Acl(ResourceType.TOPIC, prefix, ResourcePatternType.PREFIXED, principal(user), op)
         for op in (AclOperation.READ, AclOperation.DESCRIBE)],
        f"the lookup service keeps the current state of every resource from {prefix}*",
    )  # fmt: skip


def _auditor(state: DesiredState, naming: Naming) -> None:
    """The audit office (审计机关, article 24): READ on the usage audit, the access evidence
    and the violations, in groups of its own, and nothing else.

    ``User:*`` opens some topics to every principal (unconditional resources, public views,
    WRITE on the audit and quarantine topics): DENY bindings, which win over every ALLOW,
    keep the auditor from them: no WRITE anywhere, no READ or DESCRIBE under the resource,
    dead-letter, verification, dispute and platform-app prefixes and on the other platform
    topics.
    """
    auditor = naming.app_user(AUDITOR)
    state.users[auditor] = (
        "the audit office (审计机关, article 24): reads the usage audit, the access evidence "
        "and the violations, nothing else"
    )
    reason = "the audit office reads the audit trails (article 24)"
    for topic in (naming.audit_topic, naming.access_topic, naming.violations_topic):
        state.add_acls(consumer_acls(auditor, topic), reason)
    state.add_acls(group_prefix_acls(auditor, auditor + "."), f"{reason}, in its own groups")
    read_only = "the audit office only reads (article 24): no write, whatever User:* allows"
    state.add_acls(
        deny_acls(auditor, ResourceType.TOPIC, "*", ResourcePatternType.LITERAL,
                  (AclOperation.WRITE,)),
        read_only,
    )  # fmt: skip
    kept_from = "the audit office reads the audit trails only, whatever User:* allows"
    ops = (AclOperation.READ, AclOperation.DESCRIBE)
    for part in (RESOURCE_TOPIC_PREFIX, DLQ_TOPIC_PREFIX, VERIFY_PREFIX, DISPUTE_TOPIC_PREFIX):
        state.add_acls(
            deny_acls(auditor, ResourceType.TOPIC, naming.prefix + part,
                      ResourcePatternType.PREFIXED, ops),
            kept_from,
        )  # fmt: skip
    state.add_acls(
        deny_acls(auditor, ResourceType.TOPIC, naming.platform_user_prefix,
                  ResourcePatternType.PREFIXED, ops),
        kept_from,
    )  # fmt: skip
    for topic in (naming.catalog_topic, naming.share_topic, naming.freshness_topic,
                  naming.quarantine_topic):  # fmt: skip
        state.add_acls(
            deny_acls(auditor, ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, ops),
            kept_from,
        )


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


def _department(
    state: DesiredState, dept: Department, partitions: int, replication: int, naming: Naming
) -> None:
    state.users[dept.id] = f"department {dept.name} ({dept.code})"
    dlq = naming.dlq_topic(dept.id)
    state.topics[dlq] = TopicSpec(
        partitions,
        replication,
        dlq_topic_config(),
        f"dead letters of {dept.name}, kept 30 days",
    )
    state.add_acls(
        group_prefix_acls(dept.id, naming.group_prefix(dept.id)),
        f"{dept.name} uses consumer groups named {naming.group_prefix(dept.id)}*",
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
    naming: Naming,
) -> None:
    topic = naming.resource_topic(resource.code)
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
