"""Every name govbus gives on the broker, in one place (README "Naming convention").

- resource topic (current state, compacted by the one-data-one-source key): ``gov.<code>``,
  the resource code with ``/`` replaced by ``.``; its article 10 public view ``gov.<code>.public``
  and its per-record verification status ``gov.<code>.status``;
- item-set projection of a conditional resource (what a grant for part of its items may read):
  ``gov.<code>.items.<digest>``, digest = the first 12 hex digits of SHA-256 over the item
  codes sorted and joined with ``,`` (one topic per distinct item set, whoever holds it);
- holders' copies for multi-source verification: ``verify.by.<department id>``, one topic per
  holder department for every resource it holds, written by that department alone, so the
  topic proves who sent a copy (the verifier takes the holder from the topic, never from the
  record);
- dispute events of a resource: ``disputes.<code>``; what a department files or does about
  disputes: ``disputes.actions.<department id>`` (only it may write there, so the topic proves
  who acted);
- a department's dead letters: ``dlq.<department id>``;
- a department's SCRAM user (principal ``User:<id>``): the department id; its consumer groups
  are prefixed ``<id>.``;
- platform topics: ``govbus.catalog`` (catalog events), ``govbus.share`` (share requests),
  ``govbus.audit`` (usage audit), ``govbus.violations`` (article 26), ``govbus.freshness``,
  ``govbus.supervision`` (the violation ledger's events: recorded, notified, answered, closed),
  ``govbus.quarantine`` (records no reader can use, set aside with where and why),
  ``govbus.access`` (broker-side access evidence: who read which topic);
- the auditor (审计机关, article 24): user ``govbus-auditor``, groups ``govbus-auditor.*``;
- platform apps' users and consumer groups: ``govbus-<app>`` (e.g. ``govbus-verifier``); their
  Faust-internal topics start with that id;
- federation (article 13): a resource topic of platform ``tianning`` arrives on a peer as
  ``tianning.gov.<code>``; the MirrorMaker 2 principal of the flow is
  ``govbus-mirror-tianning-to-city`` on both clusters.

``Naming(prefix)`` puts ``prefix`` in front of every topic, platform user and app id, so a test
(or a second exchange on the same cluster) gets a namespace of its own by passing one value.
Departments' ids and group prefixes are not prefixed: they come from the catalog.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

# Principals the broker itself uses (govbus.broker): never managed by the reconciler.
ADMIN_PRINCIPAL = "admin"
CONTROLLER_PRINCIPAL = "controller"
# User:* — every authenticated principal, i.e. every registered department or platform app.
EVERYONE = "*"
# 常州市大数据管理局 in the sample catalog: runs the exchange, coordinates unanswered share
# requests (article 17), stewards disputes and evaluates departments (article 26).
DEFAULT_OPERATOR = "cz-dsjj"
# Every platform app's user starts with this; no department may take such an id.
PLATFORM_USER_PREFIX = "govbus-"
# The platform apps, by short name (their user and group is PLATFORM_USER_PREFIX + name).
CATALOG_RELAY = "catalog-relay"
VERIFIER = "verifier"
DISPUTES = "disputes"
PROJECTOR = "projector"
FRESHNESS = "freshness"
LOOKUP = "lookup"  # the lookup service (govbus.lookup), not a stream app
# The audit office's principal (审计机关, article 24): reads the audit trails, nothing else.
AUDITOR = "auditor"
MIRROR = "mirror"  # MirrorMaker 2 between two platforms (govbus.federation)

RESOURCE_TOPIC_PREFIX = "gov."
# Every verification topic starts "verify." (the reconciler manages the prefix, so the
# per-resource "verify.<code>" topics of earlier versions show as drift to delete).
VERIFY_PREFIX = "verify."
OBSERVATION_TOPIC_PREFIX = VERIFY_PREFIX + "by."
DISPUTE_TOPIC_PREFIX = "disputes."
DISPUTE_ACTIONS_PREFIX = "disputes.actions."
DLQ_TOPIC_PREFIX = "dlq."
PUBLIC_VIEW_SUFFIX = ".public"
GRANT_VIEW_INFIX = ".items."
STATUS_SUFFIX = ".status"


def principal(user: str) -> str:
    """The Kafka principal of a SCRAM user (``*`` stays ``User:*``)."""
    return f"User:{user}"


def _topic_part(resource_code: str) -> str:
    return resource_code.replace("/", ".")


@dataclass(frozen=True)
class Naming:
    """Topic, user and group names; ``prefix`` namespaces them all (empty in production)."""

    prefix: str = ""

    # -- resources ----------------------------------------------------------------------------
    def resource_topic(self, resource_code: str) -> str:
        return self.prefix + RESOURCE_TOPIC_PREFIX + _topic_part(resource_code)

    @property
    def resource_topic_prefix(self) -> str:
        return self.prefix + RESOURCE_TOPIC_PREFIX

    def public_view_topic(self, resource_code: str) -> str:
        """Article 10 projection: only the items shareable with everyone, masked."""
        return self.resource_topic(resource_code) + PUBLIC_VIEW_SUFFIX

    def grant_view_topic(self, resource_code: str, items: Iterable[str]) -> str:
        """The projection carrying exactly ``items`` of a conditional resource (grants)."""
        digest = hashlib.sha256(",".join(sorted(set(items))).encode()).hexdigest()[:12]
        return self.resource_topic(resource_code) + GRANT_VIEW_INFIX + digest

    def status_topic(self, resource_code: str) -> str:
        """Per-record verification status (article 19: consumers see "under verification")."""
        return self.resource_topic(resource_code) + STATUS_SUFFIX

    def holder_observation_topic(self, dept_id: str) -> str:
        """A holder department's copies of every resource it holds, cross-checked against
        each ``gov.<code>``; only that department writes here."""
        return self.prefix + OBSERVATION_TOPIC_PREFIX + dept_id

    def dispute_topic(self, resource_code: str) -> str:
        """Dispute events of one resource (compacted by dispute id)."""
        return self.prefix + DISPUTE_TOPIC_PREFIX + _topic_part(resource_code)

    @property
    def dispute_rejections_topic(self) -> str:
        """The verification app's refused dispute actions (the operator reads them)."""
        return self.prefix + DISPUTE_TOPIC_PREFIX + "rejected"

    def dispute_actions_topic(self, dept_id: str) -> str:
        """What one department files or does about disputes; only it may write here."""
        return self.prefix + DISPUTE_ACTIONS_PREFIX + dept_id

    # -- departments --------------------------------------------------------------------------
    def dlq_topic(self, dept_id: str) -> str:
        return self.prefix + DLQ_TOPIC_PREFIX + dept_id

    @staticmethod
    def group_prefix(dept_id: str) -> str:
        """A department's consumer groups start with its id (PREFIXED GROUP READ)."""
        return f"{dept_id}."

    # -- the platform -------------------------------------------------------------------------
    @property
    def catalog_topic(self) -> str:
        return self.prefix + "govbus.catalog"

    @property
    def share_topic(self) -> str:
        return self.prefix + "govbus.share"

    @property
    def audit_topic(self) -> str:
        return self.prefix + "govbus.audit"

    @property
    def quarantine_topic(self) -> str:
        """Records on resource (or observation) topics no reader could use, set aside."""
        return self.prefix + "govbus.quarantine"

    @property
    def access_topic(self) -> str:
        """Broker-side access evidence: who read which topic, from the authorizer's log."""
        return self.prefix + "govbus.access"

    @property
    def violations_topic(self) -> str:
        return self.prefix + "govbus.violations"

    @property
    def freshness_topic(self) -> str:
        return self.prefix + "govbus.freshness"

    @property
    def supervision_topic(self) -> str:
        return self.prefix + "govbus.supervision"

    def app_user(self, app: str) -> str:
        """The SCRAM user, consumer group and Faust app id of platform app ``app``."""
        return self.prefix + PLATFORM_USER_PREFIX + app

    @property
    def platform_user_prefix(self) -> str:
        return self.prefix + PLATFORM_USER_PREFIX

    # -- federation (article 13) --------------------------------------------------------------
    def mirror_user(self, source: str, target: str) -> str:
        """The MirrorMaker 2 principal of the flow ``source`` → ``target``: the same user name
        on both clusters, with READ on the source and the remote-topic rights on the target."""
        return self.app_user(f"{MIRROR}-{source}-to-{target}")

    @staticmethod
    def mirrored_topic(source: str, topic: str) -> str:
        """Where ``topic`` of platform ``source`` arrives on a peer: ``<source>.<topic>``
        (MirrorMaker 2's DefaultReplicationPolicy; the alias is the platform id)."""
        return f"{source}.{topic}"

    @staticmethod
    def mirror_internal_topics(source: str) -> tuple[str, ...]:
        """MirrorMaker 2's own topics on the target of a flow from ``source`` (dedicated mode:
        the Connect worker's configs, offsets and status, and the offset syncs)."""
        return (
            f"mm2-configs.{source}.internal",
            f"mm2-offsets.{source}.internal",
            f"mm2-status.{source}.internal",
            f"mm2-offset-syncs.{source}.internal",
        )

    @staticmethod
    def mirror_checkpoints_topic(source: str) -> str:
        """Consumer-group offsets of ``source`` translated for the target (MirrorCheckpoint)."""
        return f"{source}.checkpoints.internal"

    @staticmethod
    def mirror_group(source: str) -> str:
        """The MirrorMaker 2 worker group on the target (dedicated mode: ``<source>-mm2``)."""
        return f"{source}-mm2"


NAMING = Naming()  # production names

# The production names as constants, for readers that only need the default namespace.
CATALOG_TOPIC = NAMING.catalog_topic
SHARE_TOPIC = NAMING.share_topic
AUDIT_TOPIC = NAMING.audit_topic
VIOLATIONS_TOPIC = NAMING.violations_topic
FRESHNESS_TOPIC = NAMING.freshness_topic
CATALOG_RELAY_USER = NAMING.app_user(CATALOG_RELAY)
VERIFIER_USER = NAMING.app_user(VERIFIER)
