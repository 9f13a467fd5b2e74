"""Debian's kcat, as a department, is allowed and refused exactly as the catalog's ACLs say.

Debian 12's kcat links librdkafka 2.0.2, which Kafka 4.x refuses at SCRAM login (fixed in
librdkafka 2.6.1); scripts/kcat.sh runs the same kcat binary with the newer librdkafka that
the confluent-kafka wheel bundles (same C API and soname). The ACLs come from the reconciler:
a provider, a consumer, and one resource of each share type.
"""

from __future__ import annotations

import dataclasses
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from govbus.reconcile.desired import desired_state
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.config import Settings
from govbus.vocabulary.secrets import PasswordStore
from govbus.vocabulary.spec import CatalogSpec, InfoItem, Resource
from tests.conftest import REPO
from tests.factories import person_resource
from tests.integration.app_namespace import Namespace, clean, reconcile

pytestmark = pytest.mark.kafka

KCAT = REPO / "scripts" / "kcat.sh"
ITEMS = (InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),)


@dataclasses.dataclass
class World:
    settings: Settings
    passwords: PasswordStore
    provider: str
    consumer: str
    topics: dict[str, str]  # share type -> topic


@pytest.fixture
def world(kafka_settings: Settings, admin: AdminClient, tmp_path: Path) -> Iterator[World]:
    ns = Namespace()
    provider, consumer = ns.department("provider", 1), ns.department("consumer", 2)

    def resource(share_type: str, front: str, serial: int, **extra: object) -> Resource:
        return person_resource(
            ITEMS,
            code=f"{front}/{provider.code}-{serial:06d}",
            provider=provider.code,
            share_type=share_type,
            **extra,
        )

    resources = (
        resource("unconditional", "10101", 1),
        resource(
            "conditional", "30101", 2, share_conditions="办理业务时", purposes=("work-reference",)
        ),
        resource("none", "30102", 3, legal_basis="《测试法》第一条"),
    )
    spec = CatalogSpec(departments=(provider, consumer), resources=resources)
    passwords = PasswordStore(tmp_path / "state")
    desired = desired_state(spec, partitions=1, naming=ns.naming, platform_apps=False)
    reconcile(admin, ns, desired, passwords)
    topics = {r.share_type: ns.naming.resource_topic(r.code) for r in resources}
    try:
        yield World(kafka_settings, passwords, provider.id, consumer.id, topics)
    finally:
        clean(admin, ns)


def kcat(world: World, user: str, *args: str, stdin: str | None = None) -> str:
    """Run Debian's kcat as ``user``; its output and log lines together."""
    cmd = [
        "bash",
        str(KCAT),
        "-b",
        kafka_clients.bootstrap_of(world.settings),
        "-X",
        f"security.protocol={world.settings.security_protocol}",
        "-X",
        f"sasl.mechanism={world.settings.sasl_mechanism}",
        "-X",
        f"sasl.username={user}",
        "-X",
        f"sasl.password={world.passwords(user)}",
        *args,
    ]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)
    return proc.stdout + proc.stderr


def produce(world: World, user: str, topic: str, line: str) -> str:
    # Resource topics are compacted: every record needs a key ("key:value" with -K :).
    return kcat(world, user, "-P", "-K", ":", "-t", topic, stdin=f"k-{line}:{line}\n")


def consume(world: World, user: str, topic: str) -> str:
    return kcat(world, user, "-C", "-t", topic, "-o", "beginning", "-e", "-f", "%s\n")


def test_it_is_debians_kcat() -> None:
    out = subprocess.run(["bash", str(KCAT), "-V"], capture_output=True, text=True, timeout=30)
    assert "kcat - Apache Kafka producer and consumer tool" in out.stdout
    version = out.stdout.split("librdkafka ")[1].split()[0]
    assert tuple(int(p) for p in version.split(".")[:2]) >= (2, 6), version


def test_provider_writes_and_reads_every_own_resource(world: World) -> None:
    for share_type, topic in world.topics.items():
        mark = f"{share_type}-{uuid.uuid4().hex[:6]}"
        out = produce(world, world.provider, topic, mark)
        assert "failed" not in out.lower(), out
        assert mark in consume(world, world.provider, topic).splitlines()


def test_consumer_reads_unconditional_only_and_writes_nothing(world: World) -> None:
    for share_type, topic in world.topics.items():
        assert "failed" not in produce(world, world.provider, topic, f"from-{share_type}").lower()
    readable = consume(world, world.consumer, world.topics["unconditional"])
    assert "from-unconditional" in readable.splitlines(), readable
    for share_type in ("conditional", "none"):
        refused = consume(world, world.consumer, world.topics[share_type])
        assert "Topic authorization failed" in refused, refused
        assert f"from-{share_type}" not in refused.splitlines()
    for topic in world.topics.values():
        refused = produce(world, world.consumer, topic, "not mine")
        assert "Delivery failed" in refused and "Topic authorization failed" in refused, refused


def test_wrong_password_is_refused(world: World) -> None:
    world.passwords = lambda user: "wrong"  # type: ignore[assignment,method-assign]
    out = consume(world, world.consumer, world.topics["unconditional"])
    assert "SASL authentication error" in out, out
