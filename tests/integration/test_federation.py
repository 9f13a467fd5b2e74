"""Federation (articles 8, 13): a district platform and the city's, each its own Kafka cluster,
exchange through MirrorMaker 2 under an agreement both sides opted in to.

Two platforms on ports beside the session broker's (tianning: SQLite catalog; city: a
PostgreSQL catalog), set up once for the module through the CLI as an operator would:
``broker start --platform``, catalog import, ``apply``, ``federation offer|accept|apply``, and
``federation run`` as a separate process. The tests then act as departments and operators;
the revocation test ends the agreement, so it runs last.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from govbus.broker import admin as kafka_admin
from govbus.broker.cluster import LocalCluster
from govbus.catalog.store import CatalogStore
from govbus.cli import main
from govbus.federation.agreements import AgreementBook
from govbus.federation.runner import FlowRunner
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.config import Settings, load_settings
from govbus.vocabulary.platforms import platform_settings
from govbus.vocabulary.processes import stop_process
from govbus.vocabulary.secrets import PasswordStore
from govbus.vocabulary.spec import CatalogSpec
from tests.conftest import REPO
from tests.integration.fixtures import eventually, pg_database

pytestmark = pytest.mark.kafka

SESSION_PORT = int(os.environ.get("GOVBUS_TEST_BROKER_PORT", "19492"))
TIANNING_PORT, CITY_PORT, METRICS_PORT = (
    SESSION_PORT + 700,
    SESSION_PORT + 710,
    SESSION_PORT + 720,
)
RESOURCE = "31101/11320402014350271Q-000001"  # 天宁区居家养老服务对象信息 (tn-mzj provides)
AGREEMENT = "tn-city-1"


@dataclass
class Federation:
    root: Path
    tianning: Settings
    city: Settings
    runner: subprocess.Popen[bytes]
    runner_log: Path

    def cli(self, *args: str) -> None:
        assert main(["--state-dir", str(self.root), *args]) == 0, args

    def department(self, on: Settings, dept: str) -> dict[str, object]:
        return kafka_clients.client_config(on, dept, PasswordStore(on.state_dir)(dept))

    @property
    def source_topic(self) -> str:
        return self.tianning.naming.resource_topic(RESOURCE)

    @property
    def copy_topic(self) -> str:
        return self.city.naming.mirrored_topic("tianning", self.source_topic)

    def produce(self, keys: list[str], tag: str) -> None:
        """As the provider, acks=all: every record acknowledged by the district's cluster."""
        producer = Producer(
            {**self.department(self.tianning, "tn-mzj"), "acks": "all", "enable.idempotence": True}
        )
        failed: list[KafkaError] = []
        for key in keys:
            producer.produce(
                self.source_topic,
                key=key.encode(),
                value=f"{tag}:{key}".encode(),
                headers=[("govbus.schema", b"v1"), ("tag", tag.encode())],
                on_delivery=lambda err, _m: failed.append(err) if err else None,
            )
        assert producer.flush(60) == 0 and not failed, failed

    def read_copy(
        self, dept: str, want: set[str], tag: str, timeout: float = 120
    ) -> dict[str, tuple[bytes, list[tuple[str, bytes]]]]:
        """Read the city's copy as ``dept`` until every key of ``want`` (with ``tag``) came."""
        consumer = Consumer(
            {
                **self.department(self.city, dept),
                "group.id": f"{dept}.t-{uuid.uuid4().hex[:6]}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([self.copy_topic])
        seen: dict[str, tuple[bytes, list[tuple[str, bytes]]]] = {}
        deadline = time.monotonic() + timeout
        try:
            while not want <= set(seen) and time.monotonic() < deadline:
                msg = consumer.poll(1.0)
                if msg is None:
                    continue
                if msg.error():
                    error = msg.error()
                    assert error is not None
                    if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                        continue  # MirrorMaker has not created the copy yet
                    raise KafkaException(error)
                value = msg.value() or b""
                if value.startswith(f"{tag}:".encode()):
                    seen[(msg.key() or b"").decode()] = (value, list(msg.headers() or []))
        finally:
            consumer.close()
        return seen


def start_runner(root: Path, log: Path) -> subprocess.Popen[bytes]:
    """`govbus --platform city federation run` in the background, appending to ``log``."""
    cmd = [sys.executable, "-m", "govbus.cli", "--state-dir", str(root), "--platform", "city",
           "federation", "run", "--lag-interval", "2", "--stall-seconds", "90",
           "--metrics-port", str(METRICS_PORT)]  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )


def _start_platforms(root: Path, city_dsn: str) -> None:
    def start(*args: str) -> None:
        assert main(["--state-dir", str(root), *args]) == 0

    threads = [
        threading.Thread(
            target=start,
            args=(
                "--platform",
                "tianning",
                "broker",
                "start",
                "--port",
                str(TIANNING_PORT),
                "--title",
                "天宁区",
                "--level",
                "district",
            ),
        ),
        threading.Thread(
            target=start,
            args=(
                "--platform",
                "city",
                "broker",
                "start",
                "--port",
                str(CITY_PORT),
                "--title",
                "常州市",
                "--level",
                "city",
                "--catalog-dsn",
                city_dsn,
            ),
        ),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@pytest.fixture(scope="module")
def federation(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    root = tmp_path_factory.mktemp("federation")
    env_root = load_settings(
        env={
            "GOVBUS_STATE_DIR": str(root),
            **{k: v for k, v in os.environ.items() if k == "GOVBUS_CACHE_DIR"},
        }
    )
    with pg_database(pg_dsn) as city_dsn:
        _start_platforms(root, city_dsn)
        tianning, city = (platform_settings(env_root, p) for p in ("tianning", "city"))
        log = root / "runner.log"
        runner: subprocess.Popen[bytes] | None = None
        try:
            fed = Federation(root, tianning, city, None, log)  # type: ignore[arg-type]
            fed.cli("--platform", "city", "catalog", "import")  # the sample city, to export
            district = root / "tianning.yaml"
            fed.cli(
                "--platform", "city", "catalog", "export", "--district", "320402", str(district)
            )
            fed.cli("--platform", "tianning", "catalog", "import", str(district))
            # The city keeps only what the tests need (the district's part and the two city
            # departments it names), so its reconciler has little to create on a busy machine.
            fed.cli("--platform", "city", "catalog", "import", str(district))
            fed.cli("--platform", "tianning", "apply")
            fed.cli("--platform", "city", "apply")
            fed.cli(
                "--platform",
                "tianning",
                "federation",
                "offer",
                AGREEMENT,
                "--to",
                "city",
                "--resource",
                RESOURCE,
                "--catalog",
            )
            fed.cli(
                "--platform",
                "city",
                "federation",
                "accept",
                AGREEMENT,
                "--share-type",
                "conditional",
                "--consumer",
                "cz-mzj",
            )
            fed.cli("federation", "apply")
            runner = start_runner(root, log)
            fed.runner = runner
            eventually(
                lambda: runner.poll() is not None or b"started flow" in log.read_bytes(),
                "`federation run` starting the flow",
                timeout=60,
            )
            assert runner.poll() is None, log.read_text(encoding="utf-8")
            yield fed
        finally:
            if runner is not None:
                stop_process(fed.runner)  # the one running now (a test may restart it)
            for p in ("city", "tianning"):
                LocalCluster(platform_settings(env_root, p)).stop()


def _denied(conf: dict[str, object], topic: str) -> bool:
    consumer = Consumer(
        {**conf, "group.id": f"{conf['sasl.username']}.x", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and msg.error():
                return msg.error().code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
            if msg is not None:
                return False
        return False
    finally:
        consumer.close()


def test_records_arrive_under_the_source_prefix_and_the_receiving_acls_decide(
    federation: Federation,
) -> None:
    keys = [f"k{i:03d}" for i in range(200)]
    federation.produce(keys, "first")
    copies = federation.read_copy("cz-mzj", set(keys), "first")
    assert set(copies) == set(keys)
    # Schema and envelope unchanged: the same bytes and headers as the provider wrote.
    value, headers = copies["k007"]
    assert value == b"first:k007"
    assert ("govbus.schema", b"v1") in headers and ("tag", b"first") in headers
    # The city's own ACLs: a city department the agreement does not name is refused...
    assert _denied(federation.department(federation.city, "cz-scjgj"), federation.copy_topic)
    # ...and the mirror principal may read the offered topic on the district, not write it.
    mirror = federation.city.naming.mirror_user("tianning", "city")
    producer = Producer(
        kafka_clients.client_config(
            federation.tianning, mirror, PasswordStore(federation.tianning.state_dir)(mirror)
        )
    )
    errors: list[KafkaError] = []
    producer.produce(
        federation.source_topic,
        b"x",
        on_delivery=lambda err, _m: errors.append(err) if err else None,
    )
    producer.flush(30)
    assert errors and errors[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_the_district_catalog_cascades_into_the_city_aggregate(
    federation: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    with CatalogStore.opened(federation.tianning) as store:
        spec = store.current()
        renamed = tuple(
            replace(r, name="天宁区居家养老服务对象信息（更新）") if r.code == RESOURCE else r
            for r in spec.resources
        )
        store.apply(CatalogSpec(spec.departments, renamed), author="tn", reason="rename")
    federation.cli("--platform", "tianning", "catalog", "relay")

    def cascaded() -> bool:
        # Fails (exit 1) until MirrorMaker has copied the topic; then stores the district part.
        main(
            [
                "--state-dir",
                str(federation.root),
                "--platform",
                "city",
                "federation",
                "cascade",
                "tianning",
            ]
        )
        with CatalogStore.opened(federation.city) as city:
            resource = city.current().resource(RESOURCE)
        return resource is not None and resource.name.endswith("（更新）")

    eventually(cascaded, "the renamed resource in the city's catalog", timeout=120, interval=3)
    capsys.readouterr()
    federation.cli("--platform", "city", "catalog", "show", "--platform", "tianning")
    shown = capsys.readouterr().out
    assert f"tianning.gov.{RESOURCE.replace('/', '.')}" in shown  # the mirrored entry
    assert "（更新）" in shown and "tianning's catalog as mirrored to city" in shown


def test_committed_offsets_are_translated_for_a_fail_over(federation: Federation) -> None:
    group = f"cz-mzj.failover-{uuid.uuid4().hex[:6]}"
    admin_conf = kafka_clients.admin_config(federation.tianning)
    consumer = Consumer(
        {
            **admin_conf,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([federation.source_topic])
    read = 0
    deadline = time.monotonic() + 60
    while read < 100 and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is not None and not msg.error():
            read += 1
    consumer.commit(asynchronous=False)
    upstream = {
        tp.partition: tp.offset
        for tp in consumer.committed(
            [TopicPartition(federation.source_topic, p) for p in range(3)], timeout=10
        )
    }
    consumer.close()
    city_admin = kafka_clients.admin_client(federation.city)

    def translated() -> dict[int, int] | None:
        futures = city_admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
        try:
            result = futures[group].result(timeout=10)
        except KafkaException:
            return None
        found = {
            tp.partition: tp.offset
            for tp in result.topic_partitions
            if tp.topic == federation.copy_topic and tp.offset >= 0
        }
        return found or None

    found = eventually(translated, f"translated offsets of {group} on the city", timeout=120)
    # A consumer failing over never skips a record: each translated offset is at most the
    # upstream one (the copies keep the source's offsets when nothing was lost on the way).
    for partition, offset in found.items():
        assert 0 <= offset <= upstream[partition]
    assert sum(found.values()) > 0


def test_the_lag_metric_and_a_stopped_peer_lose_nothing(federation: Federation) -> None:
    flow = FlowRunner(federation.city).flows()[0]
    probe = FlowRunner(federation.city)
    city = LocalCluster(federation.city)
    city.stop()
    keys = [f"down{i:03d}" for i in range(150)]
    federation.produce(keys, "while-down")  # acknowledged by the district alone
    time.sleep(10)  # the city stays down while MirrorMaker retries
    city.start(timeout=180)
    copies = federation.read_copy("cz-mzj", set(keys), "while-down", timeout=180)
    assert set(copies) == set(keys)

    def caught_up() -> bool:
        lags = probe.measure(flow)
        return bool(lags) and all(lag.records == 0 and lag.seconds == 0 for lag in lags)

    eventually(caught_up, "lag back to 0", timeout=120, interval=2)
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=10)
    text = metrics.read().decode()
    assert 'govbus_federation_lag_records{flow="tianning->city"' in text
    assert 'govbus_federation_flow_up{flow="tianning->city"} 1.0' in text


def test_the_lag_probe_counts_what_is_not_copied_and_a_restarted_runner_resumes(
    federation: Federation,
) -> None:
    flow = FlowRunner(federation.city).flows()[0]
    probe = FlowRunner(federation.city)
    stop_process(federation.runner)  # nothing copies now (MirrorMaker stops with the runner)
    federation.produce([f"lag{i}" for i in range(30)], "lagging")
    time.sleep(2)
    lag = {lag.topic: lag for lag in probe.measure(flow)}[federation.source_topic]
    assert lag.records == 30 and lag.seconds >= 1.5
    # The runner again: it resumes, loses nothing.
    federation.runner = start_runner(federation.root, federation.runner_log)
    copies = federation.read_copy("cz-mzj", {f"lag{i}" for i in range(30)}, "lagging")
    assert len(copies) == 30


def test_revoking_stops_the_flow_and_removes_the_acls(federation: Federation) -> None:
    mirror = federation.city.naming.mirror_user("tianning", "city")
    federation.cli(
        "--platform",
        "tianning",
        "federation",
        "revoke",
        AGREEMENT,
        "--reason",
        "test: the district withdraws",
    )
    assert AgreementBook(federation.root).get(AGREEMENT).state == "revoked"
    for on in (federation.tianning, federation.city):
        admin = kafka_clients.admin_client(on)
        assert not [a for a in kafka_admin.list_acls(admin) if a.principal == f"User:{mirror}"]
        assert mirror not in kafka_admin.scram_users(admin)
    # The copy's reader lost its READ with the agreement.
    assert _denied(federation.department(federation.city, "cz-mzj"), federation.copy_topic)
    eventually(
        lambda: b"stopped flow tianning" in federation.runner_log.read_bytes(),
        "the runner stopping the flow",
        timeout=60,
    )
    before = _end_offsets(federation.city, federation.copy_topic)
    federation.produce(["after-revoke"], "revoked")
    time.sleep(10)
    assert _end_offsets(federation.city, federation.copy_topic) == before


def _end_offsets(on: Settings, topic: str) -> list[int]:
    consumer = Consumer({**kafka_clients.admin_config(on), "group.id": "admin.offsets"})
    try:
        return [consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1] for p in range(3)]
    finally:
        consumer.close()
