"""A client that is not ours sees the same rules: Kafka's own console tools, on the Java client.

(Debian's kcat is tested in test_kcat.py, through scripts/kcat.sh.)
"""

from __future__ import annotations

import dataclasses
import subprocess
import uuid
from pathlib import Path

import pytest

from govbus.broker.classpath import install
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.config import Settings
from tests.conftest import Department

pytestmark = pytest.mark.kafka

PRODUCER = "org.apache.kafka.tools.ConsoleProducer"
CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"


def console(
    settings: Settings,
    tmp_path: Path,
    dept: Department,
    tool: str,
    *args: str,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one of Kafka's console tools as `dept`, with the client settings govbus documents."""
    config = tmp_path / f"{dept.user}-{uuid.uuid4().hex[:6]}.properties"
    config.write_text(
        f"security.protocol={settings.security_protocol}\n"
        # The platform CA as a PEM trust store; the host name is checked by default.
        "ssl.truststore.type=PEM\n"
        f"ssl.truststore.location={kafka_clients.ca_location_of(settings)}\n"
        f"sasl.mechanism={settings.sasl_mechanism}\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{dept.user}" password="{dept.password}";\n',
        encoding="utf-8",
    )
    config_flag = "--producer.config" if tool == PRODUCER else "--consumer.config"
    classpath = install(settings.kafka_version, settings.cache_dir, settings.maven_repo)
    cmd = [
        "java",
        "-cp",
        classpath.java_classpath,
        tool,
        "--bootstrap-server",
        kafka_clients.bootstrap_of(settings),
        config_flag,
        str(config),
        *args,
    ]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=90, check=False)


def produce(
    settings: Settings, tmp_path: Path, dept: Department, topic: str, lines: str
) -> subprocess.CompletedProcess[str]:
    """The console producer as ``dept``, sending ``lines`` to ``topic``."""
    return console(settings, tmp_path, dept, PRODUCER, "--topic", topic, stdin=lines)


def consume(
    settings: Settings, tmp_path: Path, dept: Department, topic: str, want: int
) -> subprocess.CompletedProcess[str]:
    """The console consumer as ``dept`` in a group of its own, from the beginning, until
    ``want`` records or 20 s without one."""
    args = ["--topic", topic, "--group", f"{dept.user}.console", "--from-beginning",
            "--max-messages", str(want), "--timeout-ms", "20000"]  # fmt: skip
    return console(settings, tmp_path, dept, CONSUMER, *args)


def test_owner_produces_and_consumes_with_kafkas_console_tools(
    kafka_settings: Settings, tmp_path: Path, owned_topic: tuple[str, Department, Department]
) -> None:
    topic, a, _ = owned_topic
    sent = produce(kafka_settings, tmp_path, a, topic, "甲\n乙\n")
    assert sent.returncode == 0, sent.stderr
    got = consume(kafka_settings, tmp_path, a, topic, 2)
    assert got.returncode == 0, got.stderr
    assert got.stdout.splitlines() == ["甲", "乙"]


def test_other_department_cannot_write(
    kafka_settings: Settings, tmp_path: Path, owned_topic: tuple[str, Department, Department]
) -> None:
    topic, _, b = owned_topic
    proc = produce(kafka_settings, tmp_path, b, topic, "not mine\n")
    # The tools log errors through log4j's default console appender, on stdout.
    assert "TopicAuthorizationException" in proc.stdout + proc.stderr, proc


def test_other_department_cannot_read(
    kafka_settings: Settings, tmp_path: Path, owned_topic: tuple[str, Department, Department]
) -> None:
    topic, a, b = owned_topic
    sent = produce(kafka_settings, tmp_path, a, topic, "secret\n")
    assert sent.returncode == 0, sent.stderr
    proc = consume(kafka_settings, tmp_path, b, topic, 1)
    # The console consumer exits 0 even when refused; what it read and logged tells.
    assert "secret" not in proc.stdout.splitlines()
    assert "Processed a total of 0 messages" in proc.stderr
    assert "TopicAuthorizationException" in proc.stdout + proc.stderr, proc


def test_wrong_password_fails_authentication(
    kafka_settings: Settings, tmp_path: Path, owned_topic: tuple[str, Department, Department]
) -> None:
    topic, a, _ = owned_topic
    proc = consume(kafka_settings, tmp_path, dataclasses.replace(a, password="wrong"), topic, 1)
    assert "Processed a total of 0 messages" in proc.stderr
    assert "SaslAuthenticationException" in proc.stdout + proc.stderr, proc
