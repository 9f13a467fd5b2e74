"""A test's own namespace on the shared broker for a stream app: catalog, topics, users, ACLs.

Every topic and platform app user of the test starts ``t<sfx>.`` (``Namespace.naming``: one
``Naming`` passed to everything), its department ids ``t<sfx>-``, and the reconciler runs with
a scope limited to them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from confluent_kafka.admin import AdminClient

from govbus.broker import admin as kafka_admin
from govbus.reconcile.desired import DesiredState
from govbus.reconcile.plan import Scope, apply, make_plan, read_actual
from govbus.vocabulary.identifiers import citizen_id_check_digit, uscc_check_char
from govbus.vocabulary.naming import Naming
from govbus.vocabulary.secrets import PasswordStore
from govbus.vocabulary.spec import Department


@dataclass(frozen=True)
class Namespace:
    sfx: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def naming(self) -> Naming:
        """Every topic and platform app user (``t<sfx>.gov.…``, ``t<sfx>.govbus-…``)."""
        return Naming(f"t{self.sfx}.")

    def name(self, label: str) -> str:
        """A department id inside the namespace (the naming does not prefix those)."""
        return f"t{self.sfx}-{label}"

    @property
    def scope(self) -> Scope:
        return Scope.namespace(self.naming, (self.name(""),))

    def department(self, label: str, n: int) -> Department:
        body = f"11320400{n:09d}"
        return Department(self.name(label), body + uscc_check_char(body), label, "city", "320400")


def citizen_id(n: int) -> str:
    first17 = f"32040219900101{n:03d}"
    return first17 + citizen_id_check_digit(first17)


def reconcile(
    admin: AdminClient, ns: Namespace, desired: DesiredState, secrets: PasswordStore
) -> None:
    apply(make_plan(desired, read_actual(admin, scope=ns.scope)), admin, secrets)


def clean(admin: AdminClient, ns: Namespace) -> None:
    """Remove what the test made, with the admin operations directly, in its scope only."""
    left = read_actual(admin, scope=ns.scope)
    kafka_admin.delete_acls(admin, left.acls)
    for user in left.users:
        kafka_admin.delete_scram_user(admin, user)
    for topic in left.topics:
        kafka_admin.delete_topic(admin, topic)
