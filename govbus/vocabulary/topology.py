"""What a component needs on the broker: topics (with their settings and reason) and, for a
platform stream app, its user, inputs, outputs, tables and extra bindings.

Pure values: each stream app declares its needs with these (stream_apps/*/app.py ``needs``);
the reconciler (govbus.reconcile) adds them to the desired state of the cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from govbus.vocabulary.acls import Acl
from govbus.vocabulary.errors import UserError
from govbus.vocabulary.spec import Resource, UpdateCycle


class DesiredStateError(UserError):
    """The catalog cannot be turned into broker state; the message names the object."""


def unknown_department(resource: Resource, role: str, code: str) -> DesiredStateError:
    """A resource names a provider or holder that is no department of the catalog."""
    return DesiredStateError(
        f"resource {resource.code} ({resource.name}): {role} {code} is not a department of the "
        f"catalog (rule: every {role} is a registered department); add the department or fix "
        f"the {role} code"
    )


@dataclass(frozen=True)
class TopicSpec:
    partitions: int
    replication: int  # -1: the broker's default
    config: Mapping[str, str]
    reason: str

    @staticmethod
    def kept_forever(partitions: int, replication: int, reason: str) -> TopicSpec:
        """A topic whose every record stays (events whose whole history is evidence)."""
        return TopicSpec(
            partitions, replication, {"cleanup.policy": "delete", "retention.ms": "-1"}, reason
        )


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


def resource_topic_config(resource: Resource) -> dict[str, str]:
    return {
        # Current state keyed by the one-data-one-source key: the newest record per key stays.
        "cleanup.policy": "compact",
        "delete.retention.ms": str(_TOMBSTONE_DAYS[resource.update_cycle] * _DAY_MS),
    }


def dlq_topic_config() -> dict[str, str]:
    return {"cleanup.policy": "delete", "retention.ms": str(DLQ_RETENTION_MS)}


def quarantine_topic_spec(partitions: int, replication: int) -> TopicSpec:
    """``govbus.quarantine`` (govbus.vocabulary.quarantine): one entry per unusable record."""
    return TopicSpec(
        partitions,
        replication,
        # Keyed <topic>:<partition>:<offset>: readers meeting the same record write one key;
        # nothing expires (article 26(4) evaluation).
        {"cleanup.policy": "compact"},
        "records no reader could use, set aside with where, whose and why (article 26(4))",
    )
