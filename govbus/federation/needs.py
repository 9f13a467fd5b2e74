"""What active agreements need on one platform's cluster: users and ACLs, with reasons (pure).

Each flow ``source → target`` is replicated by MirrorMaker 2 as its own principal,
``govbus-mirror-<source>-to-<target>`` (the same name on both clusters), with the least it
needs (checked against the authorizer log of a 4.1.2 run; docs/federation.md):

on the source cluster
  READ, DESCRIBE, DESCRIBE_CONFIGS on each offered topic (literal); DESCRIBE on the groups of
  the receiving consumers (prefixed ``<consumer>.``) so their committed offsets can be
  translated for a fail-over. Nothing to write: the offset syncs live on the target.

on both
  DESCRIBE on the group ``<user>.lag``: the lag probe reads as the flow's principal.

on the target cluster
  CREATE, WRITE, READ, DESCRIBE, ALTER, ALTER_CONFIGS, DESCRIBE_CONFIGS on each remote topic
  ``<source>.<topic>`` and on the checkpoints topic ``<source>.checkpoints.internal``
  (literal, never the whole ``<source>.`` prefix); CREATE, READ, WRITE, DESCRIBE,
  DESCRIBE_CONFIGS on the worker's four ``mm2-*.<source>.internal`` topics; READ on the
  worker group ``<source>-mm2``; READ on the receiving consumers' groups (prefixed) to write
  their translated offsets.

The receiving side's own ACLs decide who reads a copy: READ+DESCRIBE on ``<source>.gov.<code>``
for ``User:*`` (accepted as 无条件共享) or for each named consumer (有条件共享). The catalog
topic's copy gets no reader ACL: the receiving platform's own cascade reads it as its admin
(the aggregate catalog, article 8).

The reconciler adds these to its desired state (govbus.reconcile.planner), so ``govbus apply``
keeps them and ``govbus federation plan|apply`` shows and makes exactly them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType

from govbus.federation.agreements import Agreement
from govbus.vocabulary.acls import Acl, consumer_acls, principal
from govbus.vocabulary.naming import EVERYONE, Naming

SOURCE_TOPIC_OPS = (AclOperation.READ, AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS)
REMOTE_TOPIC_OPS = (
    AclOperation.CREATE,
    AclOperation.WRITE,
    AclOperation.READ,
    AclOperation.DESCRIBE,
    AclOperation.ALTER,
    AclOperation.ALTER_CONFIGS,
    AclOperation.DESCRIBE_CONFIGS,
)
INTERNAL_TOPIC_OPS = (
    AclOperation.CREATE,
    AclOperation.READ,
    AclOperation.WRITE,
    AclOperation.DESCRIBE,
    AclOperation.DESCRIBE_CONFIGS,
)


@dataclass(frozen=True)
class Flow:
    """One replication flow as MirrorMaker 2 runs it: source topics → ``<source>.<topic>``."""

    agreement: str
    source: str
    target: str
    user: str
    topics: tuple[str, ...]
    groups: tuple[str, ...]  # consumer-group prefixes whose offsets are translated

    def remote(self, topic: str) -> str:
        return Naming.mirrored_topic(self.source, topic)

    def render(self) -> list[str]:
        lines = [f"flow {self.source} → {self.target} (agreement {self.agreement}, as {self.user})"]
        lines += [f"  {t} → {self.target}:{self.remote(t)}" for t in self.topics]
        return lines


@dataclass
class FederationNeeds:
    """users: SCRAM user → reason; acls: binding → reason (the reconciler's shapes)."""

    users: dict[str, str] = field(default_factory=dict)
    acls: dict[Acl, str] = field(default_factory=dict)
    flows: list[Flow] = field(default_factory=list)

    def add(self, acls: Iterable[Acl], reason: str) -> None:
        for acl in acls:
            self.acls.setdefault(acl, reason)


def lag_group(user: str) -> str:
    """The group id of the lag probe's consumers (it never joins: assign, no commit)."""
    return f"{user}.lag"


def flow_of(agreement: Agreement, naming: Naming) -> Flow:
    groups = tuple(Naming.group_prefix(c) for c in agreement.consumers)
    return Flow(
        agreement.id,
        agreement.source,
        agreement.target,
        naming.mirror_user(agreement.source, agreement.target),
        agreement.topics(),
        groups,
    )


def _acls(
    resource_type: ResourceType,
    name: str,
    pattern: ResourcePatternType,
    user: str,
    ops: Iterable[AclOperation],
) -> list[Acl]:
    return [Acl(resource_type, name, pattern, principal(user), op) for op in ops]


def needs_of(platform: str, agreements: Iterable[Agreement], naming: Naming) -> FederationNeeds:
    """What the active agreements involving ``platform`` need on its cluster."""
    needs = FederationNeeds()
    lit, pre = ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED
    for agreement in agreements:
        if not agreement.active or platform not in (agreement.source, agreement.target):
            continue
        flow = flow_of(agreement, naming)
        why = f"federation {agreement.id} ({flow.source} → {flow.target})"
        # The lag probe (govbus.federation.lag) reads as the flow's principal; its consumer
        # never joins or commits, but librdkafka still looks up the coordinator of its group.
        needs.add(
            _acls(
                ResourceType.GROUP, lag_group(flow.user), lit, flow.user, (AclOperation.DESCRIBE,)
            ),
            f"{why}: the lag probe's consumer (assigns, never commits)",
        )
        if platform == agreement.source:
            needs.users[flow.user] = f"{why}: MirrorMaker 2 reads the offered topics here"
            for topic in flow.topics:
                needs.add(
                    _acls(ResourceType.TOPIC, topic, lit, flow.user, SOURCE_TOPIC_OPS),
                    f"{why}: offered by {flow.source}, replicated to {flow.target}",
                )
            for group in flow.groups:
                needs.add(
                    _acls(ResourceType.GROUP, group, pre, flow.user, (AclOperation.DESCRIBE,)),
                    f"{why}: committed offsets of {group}* translated for a fail-over",
                )
            continue
        needs.flows.append(flow)
        needs.users[flow.user] = f"{why}: MirrorMaker 2 writes the copies here"
        remote = [flow.remote(t) for t in flow.topics]
        for topic in (*remote, naming.mirror_checkpoints_topic(flow.source)):
            needs.add(
                _acls(ResourceType.TOPIC, topic, lit, flow.user, REMOTE_TOPIC_OPS),
                f"{why}: remote topic of {flow.source}, created and written by MirrorMaker 2",
            )
        for topic in naming.mirror_internal_topics(flow.source):
            needs.add(
                _acls(ResourceType.TOPIC, topic, lit, flow.user, INTERNAL_TOPIC_OPS),
                f"{why}: MirrorMaker 2's own state (configs, offsets, status, offset syncs)",
            )
        needs.add(
            _acls(
                ResourceType.GROUP,
                naming.mirror_group(flow.source),
                lit,
                flow.user,
                (AclOperation.READ,),
            ),
            f"{why}: the MirrorMaker 2 worker group",
        )
        for group in flow.groups:
            needs.add(
                _acls(ResourceType.GROUP, group, pre, flow.user, (AclOperation.READ,)),
                f"{why}: translated offsets written for {group}*",
            )
        for resource in agreement.resources:
            topic = flow.remote(resource.topic)
            readers = (
                (EVERYONE,) if agreement.share_type == "unconditional" else agreement.consumers
            )
            kind = "无条件共享" if agreement.share_type == "unconditional" else "有条件共享"
            for reader in readers:
                who = "every department" if reader == EVERYONE else reader
                needs.add(
                    consumer_acls(reader, topic),
                    f"{why}: {resource.name} of {flow.source}'s {resource.provider_name}, "
                    f"accepted as {kind}; {who} reads the copy",
                )
    return needs
