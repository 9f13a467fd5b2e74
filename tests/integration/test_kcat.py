"""Debian's kcat, as a department, is allowed and refused exactly as the catalog's ACLs say.

Debian 12's kcat links librdkafka 2.0.2, which Kafka 4.x refuses at SCRAM login (fixed in
librdkafka 2.6.1); scripts/kcat.sh runs the same kcat binary with the newer librdkafka that
the confluent-kafka wheel bundles (same C API and soname). The ACLs come from the reconciler:
a provider, a consumer, and one resource of each share type.
"""

from __future__ import annotations

import subprocess
import uuid

import pytest

from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.spec import CatalogSpec, InfoItem, Resource
from tests.conftest import REPO
from tests.factories import person_resource
from tests.integration.fixtures import Exchange

pytestmark = pytest.mark.kafka

KCAT = REPO / "scripts" / "kcat.sh"
ITEMS = (InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),)


@pytest.fixture
def exchange(exchange: Exchange) -> Exchange:
    """The shared fixture, reconciled: a provider of one resource of each share type."""
    provider, consumer = exchange.department("provider", 1), exchange.department("consumer", 2)

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
    exchange.spec = CatalogSpec(departments=(provider, consumer), resources=resources)
    exchange.reconcile()
    return exchange


def topics(ex: Exchange) -> dict[str, str]:
    """Share type -> its resource's topic."""
    return {r.share_type: ex.naming.resource_topic(r.code) for r in ex.spec.resources}


def kcat(ex: Exchange, user: str, *args: str, stdin: str | None = None) -> str:
    """Run Debian's kcat as ``user``; its output and log lines together."""
    # The settings a department's own client gets (TLS with the platform CA included).
    props = kafka_clients.client_properties(ex.settings, user, ex.secrets(user))
    cmd = ["bash", str(KCAT), "-b", props.pop("bootstrap.servers")]
    for key, value in props.items():
        cmd += ["-X", f"{key}={value}"]
    cmd += list(args)
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)
    return proc.stdout + proc.stderr


def produce(ex: Exchange, user: str, topic: str, line: str) -> str:
    # Resource topics are compacted: every record needs a key ("key:value" with -K :).
    return kcat(ex, user, "-P", "-K", ":", "-t", topic, stdin=f"k-{line}:{line}\n")


def consume(ex: Exchange, user: str, topic: str) -> str:
    return kcat(ex, user, "-C", "-t", topic, "-o", "beginning", "-e", "-f", "%s\n")


def test_it_is_debians_kcat() -> None:
    out = subprocess.run(["bash", str(KCAT), "-V"], capture_output=True, text=True, timeout=30)
    assert "kcat - Apache Kafka producer and consumer tool" in out.stdout
    version = out.stdout.split("librdkafka ")[1].split()[0]
    assert tuple(int(p) for p in version.split(".")[:2]) >= (2, 6), version


def test_provider_writes_and_reads_every_own_resource(exchange: Exchange) -> None:
    provider = exchange.id("provider")
    for share_type, topic in topics(exchange).items():
        mark = f"{share_type}-{uuid.uuid4().hex[:6]}"
        out = produce(exchange, provider, topic, mark)
        assert "failed" not in out.lower(), out
        assert mark in consume(exchange, provider, topic).splitlines()


def test_consumer_reads_unconditional_only_and_writes_nothing(exchange: Exchange) -> None:
    provider, consumer, by_type = exchange.id("provider"), exchange.id("consumer"), topics(exchange)
    for share_type, topic in by_type.items():
        assert "failed" not in produce(exchange, provider, topic, f"from-{share_type}").lower()
    readable = consume(exchange, consumer, by_type["unconditional"])
    assert "from-unconditional" in readable.splitlines(), readable
    for share_type in ("conditional", "none"):
        refused = consume(exchange, consumer, by_type[share_type])
        assert "Topic authorization failed" in refused, refused
        assert f"from-{share_type}" not in refused.splitlines()
    for topic in by_type.values():
        refused = produce(exchange, consumer, topic, "not mine")
        assert "Delivery failed" in refused and "Topic authorization failed" in refused, refused


def test_wrong_password_is_refused(exchange: Exchange) -> None:
    exchange.secrets = lambda user: "wrong"
    out = consume(exchange, exchange.id("consumer"), topics(exchange)["unconditional"])
    assert "SASL authentication error" in out, out
