"""A department on the bus: who it is, its credentials, the catalog and names it works with.

The provider SDK (``producers.publisher.Publisher``, ``producers.observe.Observer``), the
consumer SDK (``govbus.subscribe.consumer.Subscriber``) and the stewards' dispute client
(``stream_apps.disputes.client.DisputeClient``) are all built on one ``DepartmentSession``, so
a department's identity, its Kafka clients and the topic names are set up in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, Producer

from govbus.vocabulary import kafka
from govbus.vocabulary.config import Settings
from govbus.vocabulary.errors import GovbusError
from govbus.vocabulary.grants import Grant
from govbus.vocabulary.naming import NAMING, Naming
from govbus.vocabulary.spec import CatalogSpec, Department


@dataclass(frozen=True)
class DepartmentSession:
    """``department_id`` authenticated with ``password``, working with catalog ``spec``.

    ``catalog_version`` is the version ``spec`` is (records carry it); ``grants`` are the
    approved share requests valid now (conditional reads and the dispute rules check them);
    ``naming`` gives every topic name (tests pass a namespace of their own).
    """

    settings: Settings
    department_id: str
    password: str = field(repr=False)
    spec: CatalogSpec
    catalog_version: int = 0
    grants: tuple[Grant, ...] = ()
    naming: Naming = NAMING

    def department(self, error: type[GovbusError], doing: str) -> Department:
        """The department's catalog entry; ``error`` saying how to register it if it has none."""
        department = self.spec.department_by_id(self.department_id)
        if department is None:
            raise error(
                f"department {self.department_id!r} is not registered in catalog version "
                f"{self.catalog_version}; register it in the catalog (departments) before "
                f"{doing}"
            )
        return department

    def producer(self, **extra: Any) -> Producer:
        """An idempotent, acks=all producer authenticated as the department."""
        return kafka.producer(self.settings, self.department_id, self.password, **extra)

    def consumer(self, group_suffix: str, **extra: Any) -> Consumer:
        """A consumer in the department's own group ``<id>.<group_suffix>`` (its ACL allows
        only groups under its prefix); offsets are committed by the caller."""
        group = self.naming.group_prefix(self.department_id) + group_suffix
        return kafka.consumer(self.settings, self.department_id, self.password, group, **extra)
