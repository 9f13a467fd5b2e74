"""Session fixtures: the real Kafka broker and PostgreSQL, started once.

A broker or database that cannot be had fails every test that needs it, with the reason: no
test is ever skipped for a missing service (scripts/test.sh and CI provide both).

The integration tests' shared fixtures (a test's own exchange in a namespace of the broker, a
PostgreSQL database of its own) are in tests/integration/fixtures.py, loaded here as a plugin.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from govbus.broker import admin as kafka_admin
from govbus.broker.cluster import LocalCluster
from govbus.vocabulary import acls as kafka_acls
from govbus.vocabulary.config import Settings, load_settings
from govbus.vocabulary.kafka import admin_client

pytest_plugins = ["tests.integration.fixtures", "tests.integration.agent_fixtures"]

# Another port lets a second test session run beside this one (e.g. CI next to development).
TEST_BROKER_PORT = int(os.environ.get("GOVBUS_TEST_BROKER_PORT", "19492"))
REPO = Path(__file__).resolve().parent.parent


def unavailable(what: str) -> None:
    pytest.fail(f"{what} (a missing service is a failure, never a skip)")


def test_state_dir() -> Path:
    return Path(os.environ.get("GOVBUS_TEST_STATE_DIR", REPO / ".state" / "test"))


@pytest.fixture(scope="session")
def kafka_settings() -> Iterator[Settings]:
    """Settings pointing at a running broker: an external one, or the local one started here."""
    external = os.environ.get("GOVBUS_TEST_BOOTSTRAP")
    if external:
        yield load_settings(
            env={
                "GOVBUS_BOOTSTRAP_SERVERS": external,
                "GOVBUS_ADMIN_PASSWORD": os.environ.get("GOVBUS_TEST_ADMIN_PASSWORD", ""),
                "GOVBUS_STATE_DIR": str(test_state_dir()),
            }
        )
        return

    settings = load_settings(
        env={
            "GOVBUS_STATE_DIR": str(test_state_dir()),
            "GOVBUS_BROKER_PORT": str(TEST_BROKER_PORT),
            **{k: v for k, v in os.environ.items() if k == "GOVBUS_CACHE_DIR"},
        }
    )
    cluster = LocalCluster(settings)
    try:
        cluster.start(timeout=120)
    except Exception as exc:
        unavailable(f"cannot start the local Kafka broker: {exc}")
    yield replace(settings, bootstrap_servers=cluster.bootstrap_servers)
    cluster.stop()


@pytest.fixture(scope="session")
def admin(kafka_settings: Settings) -> AdminClient:
    return admin_client(kafka_settings)


@dataclass(frozen=True)
class Department:
    user: str
    password: str


@pytest.fixture
def department(admin: AdminClient) -> Iterator[Callable[[str], Department]]:
    """Factory: a SCRAM user with a unique name, removed (with its ACLs) after the test."""

    made: list[Department] = []

    def make(label: str) -> Department:
        dept = Department(f"t-{label}-{uuid.uuid4().hex[:6]}", secrets.token_urlsafe(12))
        kafka_admin.upsert_scram_user(admin, dept.user, dept.password)
        made.append(dept)
        return dept

    yield make
    for dept in made:
        acls = [a for a in kafka_admin.list_acls(admin) if a.principal == f"User:{dept.user}"]
        kafka_admin.delete_acls(admin, acls)
        kafka_admin.delete_scram_user(admin, dept.user)


@pytest.fixture
def topic_name() -> str:
    return f"t.{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    dsn = os.environ.get("GOVBUS_TEST_PG_DSN")
    if not dsn:
        unavailable("no PostgreSQL: GOVBUS_TEST_PG_DSN is not set (scripts/test.sh starts one)")
    assert dsn is not None
    return dsn


@pytest.fixture
def owned_topic(
    admin: AdminClient, department: Callable[[str], Department], topic_name: str
) -> tuple[str, Department, Department]:
    """A topic whose WRITE and READ ACLs name only department A; B exists but holds neither."""

    a, b = department("a"), department("b")
    kafka_admin.create_topic(admin, topic_name, partitions=1)
    kafka_admin.create_acls(
        admin,
        kafka_acls.producer_acls(a.user, topic_name)
        + kafka_acls.consumer_acls(a.user, topic_name)
        # Both may use their own consumer groups, so B's refusals are about the topic.
        + kafka_acls.group_prefix_acls(a.user, f"{a.user}.")
        + kafka_acls.group_prefix_acls(b.user, f"{b.user}."),
    )
    return topic_name, a, b
