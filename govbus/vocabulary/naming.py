"""Every name govbus gives on the broker, in one place (README "Naming convention").

- resource topic (current state, compacted by the one-data-one-source key): ``gov.<code>``,
  the resource code with ``/`` replaced by ``.``; its article 10 public view ``gov.<code>.public``
  and its per-record verification status ``gov.<code>.status``;
- holders' copies for multi-source verification: ``verify.<code>``;
- dispute events of a resource: ``disputes.<code>``; what a department files or does about
  disputes: ``disputes.actions.<department id>`` (only it may write there, so the topic proves
  who acted);
- a department's dead letters: ``dlq.<department id>``;
- a department's SCRAM user (principal ``User:<id>``): the department id; its consumer groups
  are prefixed ``<id>.``;
- platform topics: ``govbus.catalog`` (catalog events), ``govbus.share`` (share requests),
  ``govbus.audit`` (usage audit), ``govbus.violations`` (article 26), ``govbus.freshness``,
  ``govbus.supervision`` (the violation ledger's events: recorded, notified, answered, closed);
- platform apps' users and consumer groups: ``govbus-<app>`` (e.g. ``govbus-verifier``); their
  Faust-internal topics start with that id.

``Naming(prefix)`` puts ``prefix`` in front of every topic, platform user and app id, so a test
(or a second exchange on the same cluster) gets a namespace of its own by passing one value.
Departments' ids and group prefixes are not prefixed: they come from the catalog.
"""

from __future__ import annotations

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

RESOURCE_TOPIC_PREFIX = "gov."
OBSERVATION_TOPIC_PREFIX = "verify."
DISPUTE_TOPIC_PREFIX = "disputes."
DISPUTE_ACTIONS_PREFIX = "disputes.actions."
DLQ_TOPIC_PREFIX = "dlq."
PUBLIC_VIEW_SUFFIX = ".public"
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

    def status_topic(self, resource_code: str) -> str:
        """Per-record verification status (article 19: consumers see "under verification")."""
        return self.resource_topic(resource_code) + STATUS_SUFFIX

    def observation_topic(self, resource_code: str) -> str:
        """Holders' copies of a resource's items, cross-checked against ``gov.<code>``."""
        return self.prefix + OBSERVATION_TOPIC_PREFIX + _topic_part(resource_code)

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


NAMING = Naming()  # production names

# The production names as constants, for readers that only need the default namespace.
CATALOG_TOPIC = NAMING.catalog_topic
SHARE_TOPIC = NAMING.share_topic
AUDIT_TOPIC = NAMING.audit_topic
VIOLATIONS_TOPIC = NAMING.violations_topic
FRESHNESS_TOPIC = NAMING.freshness_topic
CATALOG_RELAY_USER = NAMING.app_user(CATALOG_RELAY)
VERIFIER_USER = NAMING.app_user(VERIFIER)
