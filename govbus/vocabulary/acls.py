"""Kafka ACL bindings as govbus grants them: one ALLOW binding per (resource, principal,
operation), and the sets a producer, a consumer and a department's groups need.

DENY bindings are used only where a principal must be kept from what ``User:*`` opens to
every principal (the auditor, article 24: read-only, and only the audit trails); in Kafka a
DENY always wins over an ALLOW.

Pure values: the reconciler compares desired and actual sets of them; govbus.broker.admin
creates and deletes them on a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from govbus.vocabulary.naming import principal

__all__ = [
    "Acl",
    "consumer_acls",
    "deny_acls",
    "group_prefix_acls",
    "principal",
    "producer_acls",
]


@dataclass(frozen=True)
class Acl:
    """One binding (ALLOW unless said), hashable so desired and actual sets can be compared."""

    resource_type: ResourceType
    resource_name: str
    pattern: ResourcePatternType
    principal: str
    operation: AclOperation
    permission: AclPermissionType = AclPermissionType.ALLOW

    def binding(self) -> AclBinding:
        return AclBinding(
            self.resource_type,
            self.resource_name,
            self.pattern,
            self.principal,
            "*",
            self.operation,
            self.permission,
        )

    def __str__(self) -> str:
        deny = "DENY " if self.permission == AclPermissionType.DENY else ""
        return (
            f"{deny}{self.principal} {self.operation.name} {self.resource_type.name}:"
            f"{self.resource_name}{'*' if self.pattern == ResourcePatternType.PREFIXED else ''}"
        )


def _topic_acls(user: str, topic: str, operation: AclOperation) -> list[Acl]:
    """The operation plus DESCRIBE, which every client needs to fetch the topic's metadata."""
    p, lit = principal(user), ResourcePatternType.LITERAL
    return [
        Acl(ResourceType.TOPIC, topic, lit, p, operation),
        Acl(ResourceType.TOPIC, topic, lit, p, AclOperation.DESCRIBE),
    ]


def producer_acls(user: str, topic: str) -> list[Acl]:
    """WRITE, which also covers idempotent produce (KIP-679)."""
    return _topic_acls(user, topic, AclOperation.WRITE)


def consumer_acls(user: str, topic: str) -> list[Acl]:
    return _topic_acls(user, topic, AclOperation.READ)


def group_prefix_acls(user: str, prefix: str) -> list[Acl]:
    """READ on consumer groups whose id starts with the department's own prefix."""
    return [
        Acl(
            ResourceType.GROUP,
            prefix,
            ResourcePatternType.PREFIXED,
            principal(user),
            AclOperation.READ,
        )
    ]


def deny_acls(
    user: str, resource_type: ResourceType, name: str, pattern: ResourcePatternType,
    operations: tuple[AclOperation, ...],
) -> list[Acl]:  # fmt: skip
    """DENY ``operations`` on the resource (a DENY wins over every ALLOW, ``User:*`` too)."""
    return [
        Acl(resource_type, name, pattern, principal(user), op, AclPermissionType.DENY)
        for op in operations
    ]
