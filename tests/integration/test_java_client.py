"""A client that is not ours sees the same rules: Kafka's own console tools, on the Java client.

(Debian's kcat is tested in test_kcat.py, through scripts/kcat.sh.)
"""

from __future__ import annotations

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
    password: str,
    tool: str,
    *args: str,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one of Kafka's console tools as `dept`, with the client settings govbus documents."""
    config = tmp_path / f"{dept.user}-{uuid.uuid4().hex[:6]}.properties"
    config.write_text(
        f"security.protocol={settings.security_protocol}\n"
        f"sasl.mechanism={settings.sasl_mechanism}\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{dept.user}" password="{password}";\n',
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


def consume_args(topic: str, dept: Department, want: int) -> list[str]:
    return [
        "--topic",
        topic,
        "--group",
        f"{dept.user}.console",
        "--from-beginning",
        "--max-messages",
        str(want),
        "--timeout-ms",
        "20000",
    ]


def test_owner_produces_and_consumes_with_kafkas_console_tools(
    kafka_settings: Settings, tmp_path: Path, owned_topic: tuple[str, Department, Department]
) -> None:
    topic, a, _ = owned_topic
    sent = console(
        kafka_settings, tmp_path, a, a.password, PRODUCER, "--topic", topic, stdin="甲\n乙\n"
    )
    assert sent.returncode == 0, sent.stderr
    got = console(kafka_settings, tmp_path, a, a.password, CONSUMER, *consume_args(topic, a, 2))
    assert got.returncode == 0, got.stderr
    assert got.stdout.splitlines() == ["甲", "乙"]


def test_other_department_cannot_write(
    kafka_settings: Settings, tmp_path: Path, owned_topic: tuple[str, Department, Department]
) -> None:
    topic, _, b = owned_topic
    proc = console(
        kafka_settings, tmp_path, b, b.password, PRODUCER, "--topic", topic, stdin="not mine\n"
    )
    # The tools log errors through log4j's default console appender, on stdout.
    assert "TopicAuthorizationException" in proc.stdout + proc.stderr, proc


def test_other_department_cannot_read(
    kafka_settings: Settings, tmp_path: Path, owned_topic: tuple[str, Department, Department]
) -> None:
    topic, a, b = owned_topic
    sent = console(
        kafka_settings, tmp_path, a, a.password, PRODUCER, "--topic", topic, stdin="secret\n"
    )
    assert sent.returncode == 0, sent.stderr
    proc = console(kafka_settings, tmp_path, b, b.password, CONSUMER, *consume_args(topic, b, 1))
    # The console consumer exits 0 even when refused; what it read and logged tells.
    assert "secret" not in proc.stdout.splitlines()
    assert "Processed a total of 0 messages" in proc.stderr
    assert "TopicAuthorizationException" in proc.stdout + proc.stderr, proc


def test_wrong_password_fails_authentication(
    kafka_settings: Settings, tmp_path: Path, owned_topic: tuple[str, Department, Department]
) -> None:
    topic, a, _ = owned_topic
    proc = console(kafka_settings, tmp_path, a, "wrong", CONSUMER, *consume_args(topic, a, 1))
    assert "Processed a total of 0 messages" in proc.stderr
    assert "SaslAuthenticationException" in proc.stdout + proc.stderr, proc
