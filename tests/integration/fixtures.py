"""Shared fixtures and helpers of the integration tests, loaded from tests/conftest.py.

(``pytest_plugins`` there names this module, the way quix-streams loads its fixture modules, so
every test sees the fixtures without importing them.)

``exchange`` gives a test an ``Exchange``: an exchange of its own on the shared session broker.
Its ``Namespace``: topics and platform app users start ``t<sfx>.`` (one ``Naming`` passed to
everything), department ids ``t<sfx>-``. The test puts its catalog in ``spec``, reconciles it
(within a scope limited to the namespace, so it neither sees nor removes what other tests own),
and acts as a department through ``session(dept_id)``, the ``DepartmentSession`` the SDKs
(Publisher, Observer, Subscriber, DisputeClient) are built on, with the password the reconciler
gave it. Afterwards everything in the scope is removed, with the admin operations directly (not
through the code under test).

``pg_store`` gives a migrated catalog store on a PostgreSQL database of its own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient

from govbus.broker import admin as kafka_admin
from govbus.catalog.store import CatalogStore
from govbus.reconcile.desired import DesiredState, desired_state
from govbus.reconcile.plan import ApplyResult, Plan, Scope, apply, make_plan, read_actual
from govbus.vocabulary import acls
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.config import Settings
from govbus.vocabulary.grants import Grant
from govbus.vocabulary.identifiers import citizen_id_check_digit, uscc_check_char
from govbus.vocabulary.naming import Naming
from govbus.vocabulary.secrets import PasswordStore
from govbus.vocabulary.session import DepartmentSession
from govbus.vocabulary.spec import CatalogSpec, Department, Resource
from govbus.vocabulary.topology import StreamApp
from tests.conftest import unavailable

T = TypeVar("T")


@dataclass
class Namespace:
    """A test's own names on the shared broker: topics and platform app users ``t<sfx>.…``,
    department ids ``t<sfx>-…``, and the reconciler's scope limited to them."""

    sfx: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def naming(self) -> Naming:
        """Every topic and platform app user (``t<sfx>.gov.…``, ``t<sfx>.govbus-…``)."""
        return Naming(f"t{self.sfx}.")

    @property
    def scope(self) -> Scope:
        return Scope.namespace(self.naming, (self.id(""),))

    def id(self, label: str) -> str:
        """A department id inside the namespace (the naming does not prefix those)."""
        return f"t{self.sfx}-{label}"

    def department(self, label: str, n: int) -> Department:
        """A city department ``t<sfx>-<label>`` with a valid 统一社会信用代码 (number ``n``)."""
        body = f"11320400{n:09d}"
        return Department(self.id(label), body + uscc_check_char(body), label, "city", "320400")


@dataclass(kw_only=True)
class Exchange(Namespace):
    """One test's exchange in its namespace: catalog, reconcile, passwords, sessions, clean-up.

    ``with Exchange(admin=..., settings=..., state_dir=...) as ex:`` removes what it made on
    leaving (the ``exchange`` fixture does that for a test; a module-scoped fixture, or one
    whose users' passwords must be where a ``govbus`` subprocess looks, uses ``with`` itself).
    """

    admin: AdminClient
    settings: Settings
    # Where the users' passwords are kept, as the reconciler keeps them:
    # <state_dir>/secrets/{departments,apps}/<user>.password.
    state_dir: Path
    spec: CatalogSpec = field(default_factory=CatalogSpec)  # the test fills it in
    secrets: Callable[[str], str] = field(init=False, repr=False)  # user -> its password

    def __post_init__(self) -> None:
        self.secrets = PasswordStore(self.state_dir, self.naming)

    def __enter__(self) -> Exchange:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.clean()

    # -- the catalog --------------------------------------------------------------------------
    def dept(self, label: str) -> Department:
        """The catalog's department ``t<sfx>-<label>``."""
        found = self.spec.department_by_id(self.id(label))
        assert found is not None, f"no department {self.id(label)} in the test's catalog"
        return found

    @property
    def resource(self) -> Resource:
        """The catalog's first resource (most tests have one)."""
        return self.spec.resources[0]

    # -- the broker ---------------------------------------------------------------------------
    def desired(
        self,
        grants: Iterable[Grant] = (),
        *,
        partitions: int = 1,
        stream_apps: Iterable[StreamApp] = (),
        now: dt.datetime | None = None,
    ) -> DesiredState:
        """What the catalog (no platform apps; ``stream_apps`` if given) calls for."""
        return desired_state(
            self.spec,
            grants,
            partitions=partitions,
            naming=self.naming,
            platform_apps=False,
            stream_apps=stream_apps,
            now=now,
        )

    def plan(self, desired: DesiredState | None = None) -> Plan:
        """The changes from the broker's state in the scope to ``desired`` (the catalog's)."""
        wanted = self.desired() if desired is None else desired
        return make_plan(wanted, read_actual(self.admin, scope=self.scope))

    def reconcile(
        self, desired: DesiredState | None = None, *, delete_topics: bool = False
    ) -> ApplyResult:
        """What `govbus apply` does, in the namespace: plan and apply."""
        return apply(self.plan(desired), self.admin, self.secrets, delete_topics)

    def add_user(self, user: str) -> str:
        """A SCRAM user made by hand (not by the reconciler), with its stored password."""
        password = self.secrets(user)
        kafka_admin.upsert_scram_user(self.admin, user, password)
        return password

    def clean(self) -> None:
        """Remove every ACL, user and topic in the scope, with the admin operations directly."""
        left = read_actual(self.admin, scope=self.scope)
        kafka_admin.delete_acls(self.admin, left.acls)
        for user in left.users:
            kafka_admin.delete_scram_user(self.admin, user)
        for topic in left.topics:
            kafka_admin.delete_topic(self.admin, topic)

    # -- acting as a department ---------------------------------------------------------------
    def session(
        self,
        dept_id: str,
        *,
        password: str | None = None,
        catalog_version: int = 0,
        grants: Iterable[Grant] = (),
    ) -> DepartmentSession:
        """``dept_id`` on the bus with its stored password (or ``password``), the catalog and
        the namespace: what Publisher, Observer, Subscriber and DisputeClient take."""
        return DepartmentSession(
            self.settings,
            dept_id,
            self.secrets(dept_id) if password is None else password,
            self.spec,
            catalog_version=catalog_version,
            grants=tuple(grants),
            naming=self.naming,
        )

    def producer(self, user: str) -> Producer:
        return kafka_clients.producer(self.settings, user, self.secrets(user))

    def consumer(self, user: str, **extra: Any) -> Consumer:
        """A consumer as ``user`` in a new group of its own (``<user>.<random>``)."""
        group = f"{user}.{uuid.uuid4().hex[:6]}"
        return kafka_clients.consumer(self.settings, user, self.secrets(user), group, **extra)

    def messages(self, user: str, topic: str, want: int, seconds: float = 30) -> list[Message]:
        """``want`` records of ``topic`` read as ``user`` (fewer after ``seconds``)."""
        consumer = self.consumer(user)
        try:
            return poll_messages(consumer, topic, want, seconds)
        finally:
            consumer.close()

    def consume(self, user: str, topic: str, want: int) -> list[bytes]:
        """The values of ``messages``."""
        return [m.value() for m in self.messages(user, topic, want)]


@pytest.fixture
def exchange(admin: AdminClient, kafka_settings: Settings, tmp_path: Path) -> Iterator[Exchange]:
    """An empty exchange of the test's own; cleaned up after the test."""
    with Exchange(admin=admin, settings=kafka_settings, state_dir=tmp_path / "state") as ex:
        yield ex


@contextlib.contextmanager
def pg_database(pg_dsn: str) -> Iterator[str]:
    """A new, empty database on the test's PostgreSQL server (its DSN), dropped afterwards."""
    url = sa.make_url(pg_dsn)
    name = f"t_{uuid.uuid4().hex[:12]}"
    # CREATE/DROP DATABASE cannot run in a transaction, hence autocommit on the server's own db.
    server = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        server.dispose()
        unavailable(f"PostgreSQL at {url.render_as_string()} is not reachable: {exc}")
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        server.dispose()


@pytest.fixture
def pg_store(pg_dsn: str) -> Iterator[CatalogStore]:
    """A migrated catalog store on a PostgreSQL database of its own, dropped afterwards."""
    with pg_database(pg_dsn) as dsn:
        store = CatalogStore(dsn)
        try:
            assert store.engine.dialect.name == "postgresql"
            store.migrate()
            yield store
        finally:
            store.dispose()


# -- plain helpers ----------------------------------------------------------------------------
def citizen_id(n: int) -> str:
    """A valid 公民身份号码 (born 1990-01-01 in 天宁区), number ``n`` < 1000."""
    first17 = f"32040219900101{n:03d}"
    return first17 + citizen_id_check_digit(first17)


def produce_one(producer: Producer, topic: str, value: bytes, key: bytes | None = None) -> None:
    """Produce and flush; raise the delivery error if the broker refused it."""
    errors: list[KafkaError] = []
    producer.produce(
        topic, key=key, value=value, on_delivery=lambda err, _m: err and errors.append(err)
    )
    assert producer.flush(30) == 0, "record not acknowledged within 30 s"
    if errors:
        raise KafkaException(errors[0])


def produce_keyed(producer: Producer, topic: str, value: bytes) -> None:
    """``produce_one`` with a key: compacted topics refuse keyless records."""
    produce_one(producer, topic, value, key=b"320402199001010011")


def poll_messages(consumer: Consumer, topic: str, want: int, seconds: float = 30) -> list[Message]:
    """Subscribe and poll until ``want`` records arrive; raise the first error reported."""
    consumer.subscribe([topic])
    got: list[Message] = []
    deadline = time.monotonic() + seconds
    while len(got) < want and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        got.append(msg)
    return got


def consume_until(consumer: Consumer, topic: str, want: int, seconds: float = 30) -> list[bytes]:
    """The values of ``poll_messages``."""
    return [m.value() for m in poll_messages(consumer, topic, want, seconds)]


def create_audit_topic(admin: AdminClient, topic: str, users: Iterable[str]) -> None:
    """A subscribers' usage audit topic that ``users`` may continue and extend (write, read)."""
    # Kept forever, never compacted: the audit trail is a history, not a current state.
    kafka_admin.create_topic(
        admin, topic, partitions=1, config={"retention.ms": "-1", "cleanup.policy": "delete"}
    )
    kafka_admin.create_acls(
        admin,
        [
            acl
            for user in users
            for acl in acls.producer_acls(user, topic) + acls.consumer_acls(user, topic)
        ],
    )


def eventually(
    check: Callable[[], T | None], what: str, timeout: float = 120, interval: float = 0.5
) -> T:
    """The first truthy answer of ``check``; fails naming ``what`` if none comes in time."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not seen within {timeout:.0f} s")
        time.sleep(interval)
