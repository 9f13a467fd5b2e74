"""A Kafka client that is not ours (Debian's kcat, on librdkafka's C API) sees the same rules."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable

import pytest
from confluent_kafka.admin import AdminClient

from govbus import kafka_clients
from govbus.config import Settings
from govbus.reconcile import kafka_admin
from tests.conftest import Department, unavailable

pytestmark = pytest.mark.kafka


def kcat(
    settings: Settings, dept: Department, password: str, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    if shutil.which("kcat") is None:
        unavailable("kcat is not installed (scripts/setup.sh --test installs it)")
    cmd = [
        "kcat",
        "-b",
        kafka_clients.bootstrap_of(settings),
        "-X",
        "security.protocol=SASL_PLAINTEXT",
        "-X",
        "sasl.mechanisms=SCRAM-SHA-512",
        "-X",
        f"sasl.username={dept.user}",
        "-X",
        f"sasl.password={password}",
        "-m",
        "10",
        *args,
    ]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def granted(
    admin: AdminClient, department: Callable[[str], Department], topic_name: str
) -> tuple[str, Department, Department]:
    a, b = department("kcat-a"), department("kcat-b")
    kafka_admin.create_topic(admin, topic_name, partitions=1)
    kafka_admin.create_acls(
        admin,
        kafka_admin.producer_acls(a.user, topic_name)
        + kafka_admin.consumer_acls(a.user, topic_name),
    )
    return topic_name, a, b


def test_kcat_lists_the_topic_with_the_owners_credentials(
    kafka_settings: Settings, granted: tuple[str, Department, Department]
) -> None:
    topic, a, _ = granted
    proc = kcat(kafka_settings, a, a.password, "-L", "-J", "-t", topic)
    assert proc.returncode == 0, proc.stderr
    listed = {t["topic"]: t for t in json.loads(proc.stdout)["topics"]}
    assert topic in listed
    assert "err" not in listed[topic] or listed[topic]["err"] is None


def test_kcat_produce_then_consume_as_owner(
    kafka_settings: Settings, granted: tuple[str, Department, Department]
) -> None:
    topic, a, _ = granted
    proc = kcat(kafka_settings, a, a.password, "-P", "-t", topic, stdin="甲\n乙\n")
    assert proc.returncode == 0, proc.stderr
    proc = kcat(kafka_settings, a, a.password, "-C", "-t", topic, "-o", "beginning", "-e", "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["甲", "乙"]


def test_kcat_other_department_cannot_write(
    kafka_settings: Settings, granted: tuple[str, Department, Department]
) -> None:
    topic, _, b = granted
    proc = kcat(kafka_settings, b, b.password, "-P", "-t", topic, stdin="forged\n")
    assert proc.returncode != 0
    assert "authoriz" in proc.stderr.lower(), proc.stderr


def test_kcat_refused_with_wrong_password(
    kafka_settings: Settings, granted: tuple[str, Department, Department]
) -> None:
    topic, a, _ = granted
    proc = kcat(kafka_settings, a, a.password + "-wrong", "-L", "-t", topic)
    assert proc.returncode != 0
    assert "Authentication failed" in proc.stderr or "SASL" in proc.stderr, proc.stderr


def test_kcat_other_department_cannot_read(
    kafka_settings: Settings, granted: tuple[str, Department, Department]
) -> None:
    topic, _, b = granted
    proc = kcat(kafka_settings, b, b.password, "-C", "-t", topic, "-o", "beginning", "-e")
    assert proc.returncode != 0
    assert "authoriz" in proc.stderr.lower(), proc.stderr
