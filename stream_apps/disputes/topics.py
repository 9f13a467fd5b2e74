"""Where disputes live on the broker and who may read them (pure: the catalog and grants only).

- ``disputes.actions.<principal>`` (one per department, and one for the verification app):
  what that principal does about disputes. Only it may write there, so the topic proves who
  acted. One partition each: actions are few (people and mismatches), and one partition keeps
  a department's actions in the order it made them.
- ``<app id>-commands``: the app re-keys every action by its record (``resource|key``) so all
  disputes of one record, and the record's status, are handled in one partition (Faust
  co-partitions the tables with it; it has the app's partition count).
- ``disputes.<resource>`` (compacted by dispute id): each dispute's whole current state,
  readable by the provider, the holders the catalog lists and the data stewards (the platform
  operator department).
- ``gov.<resource>.status`` (compacted by record key): whether a record is under verification,
  readable by everyone who may read the resource (article 19: business goes on meanwhile).
- rejected actions go to the acting department's dead-letter topic ``dlq.<id>`` (it reads its
  letters there); the verification app's to ``disputes.rejected`` (the operator reads it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from govbus.vocabulary.grants import Grant
from govbus.vocabulary.naming import (
    DEFAULT_OPERATOR,
    DISPUTES,
    EVERYONE,
    NAMING,
    VERIFIER,
    Naming,
)
from govbus.vocabulary.spec import CatalogSpec, Resource

# 常州市大数据管理局 in the sample catalog: the data stewards (govbus/cli/disputes.py's default).
OPERATOR = DEFAULT_OPERATOR


@dataclass(frozen=True)
class DisputeTopics:
    """Every topic and principal name of the dispute lifecycle, from ``naming``."""

    naming: Naming = NAMING

    @property
    def app_id(self) -> str:
        return self.naming.app_user(DISPUTES)

    @property
    def verifier(self) -> str:
        """The verification app's principal: the only one that detects and settles."""
        return self.naming.app_user(VERIFIER)

    @property
    def violations(self) -> str:
        return self.naming.violations_topic

    def actions(self, principal: str) -> str:
        return self.naming.dispute_actions_topic(principal)

    def disputes(self, resource_code: str) -> str:
        return self.naming.dispute_topic(resource_code)

    def status(self, resource_code: str) -> str:
        return self.naming.status_topic(resource_code)

    @property
    def commands(self) -> str:
        return f"{self.app_id}-commands"

    @property
    def rejected(self) -> str:
        return self.naming.dispute_rejections_topic

    def rejections(self, actor: str, spec: CatalogSpec) -> str:
        """A department's rejected actions go to its own dead letters; others' to ours."""
        return self.naming.dlq_topic(actor) if spec.department_by_id(actor) else self.rejected

    def actors(self, spec: CatalogSpec) -> dict[str, str]:
        """Action topic → the principal it proves."""
        principals = [d.id for d in spec.departments] + [self.verifier]
        return {self.actions(p): p for p in principals}


def _ids(spec: CatalogSpec, codes: Iterable[str]) -> list[str]:
    return [d.id for code in codes if (d := spec.department(code)) is not None]


def dispute_readers(
    spec: CatalogSpec, resource: Resource, operator: str = DEFAULT_OPERATOR
) -> list[str]:
    """Department ids that read a resource's disputes: provider, holders, stewards."""
    ids = _ids(spec, [resource.provider, *(h.department for h in resource.holders)])
    return list(dict.fromkeys([*ids, operator]))


def status_readers(
    spec: CatalogSpec,
    resource: Resource,
    grants: Iterable[Grant] = (),
    now: dt.datetime | None = None,
    operator: str = DEFAULT_OPERATOR,
) -> list[str]:
    """Principals that see which records are under verification: whoever may read the
    resource (``*`` for an unconditional one), and the stewards."""
    if resource.share_type == "unconditional":
        return [EVERYONE]
    now = now or dt.datetime.now(dt.UTC)
    readers = [resource.provider]
    if resource.share_type == "conditional":
        readers += [
            g.department_code
            for g in grants
            if g.resource_code == resource.code and g.valid_at(now)
        ]
    return list(dict.fromkeys([*_ids(spec, readers), operator]))


def readable_resources(
    spec: CatalogSpec, dept_id: str, operator: str = DEFAULT_OPERATOR
) -> list[Resource]:
    """The resources whose dispute topics ``dept_id`` may read."""
    return [r for r in spec.resources if dept_id in dispute_readers(spec, r, operator)]
