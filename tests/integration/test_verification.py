"""The verification app on the real broker: a worker subprocess, provider records, holder copies.

Each test reconciles its own namespace (topics and the app's id ``t<sfx>.…``, department ids
``t<sfx>-…``) with the verifier's needs, runs ``govbus stream-apps run govbus-verifier`` as a
subprocess in that namespace (``--option prefix=t<sfx>.``), and reads the detect/settle actions
back as the admin.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from govbus.catalog.yaml_io import dump_yaml
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary import metrics
from govbus.vocabulary.config import Settings
from govbus.vocabulary.processes import stop_process
from govbus.vocabulary.quarantine import QuarantineEntry
from govbus.vocabulary.spec import CatalogSpec, Holder, InfoItem
from govbus.vocabulary.topology import StreamApp
from producers.observe import Observer
from producers.publisher import Publisher
from stream_apps.registry import AppContext
from stream_apps.runtime import make_app
from stream_apps.verification.app import needs
from stream_apps.verification.rules import dispute_id
from tests.conftest import REPO
from tests.factories import person_resource
from tests.integration.faust_inprocess import InProcessWorker
from tests.integration.fixtures import (
    Exchange,
    Namespace,
    poll_messages,
    produce_one,
)
from tests.prometheus_text import total

pytestmark = pytest.mark.kafka
PARTITIONS = 3


def _spec(ns: Namespace) -> CatalogSpec:
    gaj, mzj, rsj = (ns.department(label, n) for n, label in enumerate(("gaj", "mzj", "rsj")))
    resource = person_resource(
        (
            InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),
            InfoItem("姓名", "name", "C", 50, compare="text"),
            InfoItem("补贴金额", "amount", "Y", compare="numeric", tolerance=0.01),
            InfoItem("出生日期", "birth", "D", compare="date"),
            InfoItem("婚姻状况", "marital", "C", 2),
        ),
        code=f"10101/{gaj.code}-000001",
        provider=gaj.code,
        abstract="test",
        category=("人口",),
        publish_date=dt.date(2026, 1, 1),
        holders=(
            Holder(mzj.code, ("name", "amount", "birth", "marital")),
            Holder(rsj.code, ("name",)),
        ),
    )
    return CatalogSpec((gaj, mzj, rsj), (resource,))


def citizen_id(n: int) -> str:
    born = dt.date(1950, 1, 1) + dt.timedelta(days=n // 100)
    body = f"320402{born:%Y%m%d}{n % 100:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


@dataclass(kw_only=True)
class VerifierExchange(Exchange):
    """The shared ``Exchange`` plus what is this module's own: the verifier's worker
    processes (``govbus stream-apps run``), and reading its actions back as the admin."""

    tmp: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def app(self) -> StreamApp:
        return needs(self.spec, AppContext(self.naming, partitions=PARTITIONS))

    @property
    def actions_topic(self) -> str:
        return self.naming.dispute_actions_topic(self.app.user)

    def start_worker(self, name: str, metrics_port: int | None = None) -> subprocess.Popen[bytes]:
        catalog = self.tmp / "catalog.yaml"
        dump_yaml(self.spec, catalog)
        cmd = [sys.executable, "-m", "govbus.cli", "--state-dir", str(self.settings.state_dir),
               "stream-apps", "run", "govbus-verifier", "--catalog", str(catalog),
               "--partitions", str(PARTITIONS)]  # fmt: skip
        cmd += ["--option", f"prefix={self.naming.prefix}"]
        if metrics_port is not None:
            cmd += ["--metrics-port", str(metrics_port)]
        env = {**os.environ, "GOVBUS_BOOTSTRAP_SERVERS": self.settings.bootstrap_servers or ""}
        log = (self.tmp / f"{name}.log").open("wb")
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.workers.append(proc)
        return proc

    def publisher(self) -> Publisher:
        return Publisher(self.session(self.dept("gaj").id, catalog_version=1))

    def observer(self, label: str) -> Observer:
        return Observer(self.session(self.dept(label).id))

    def admin_consumer(self, group: str) -> Consumer:
        return Consumer(
            {**kafka_clients.admin_config(self.settings), "group.id": group,
             "auto.offset.reset": "earliest", "enable.auto.commit": False}
        )  # fmt: skip

    def wait_processed(self, seconds: float = 90) -> None:
        """Until the worker's committed offsets reach the end of every input partition.

        Faust flushes its producer before committing, so every action of those events is on
        the broker then.
        """
        probe = self.admin_consumer(self.app.app_id)
        tps = [TopicPartition(t, p) for t in self.app.reads for p in range(PARTITIONS)]
        ends = {(tp.topic, tp.partition): probe.get_watermark_offsets(tp, 10)[1] for tp in tps}
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                for worker in self.workers:
                    assert worker.poll() in (None, -signal.SIGKILL), self.worker_logs()
                done = probe.committed(tps, timeout=10)
                lag = {
                    (tp.topic, tp.partition): (tp.offset, ends[(tp.topic, tp.partition)])
                    for tp in done
                }
                # A partition that never had a record has no committed offset to wait for.
                end_of = ends.__getitem__
                if all(tp.offset >= end_of((tp.topic, tp.partition)) or end_of(
                    (tp.topic, tp.partition)) == 0 for tp in done):  # fmt: skip
                    return
                time.sleep(0.5)
        finally:
            probe.close()
        raise AssertionError(
            f"the worker did not process its inputs in {seconds} s: (committed, end) {lag}\n"
            + self.worker_logs()
        )

    def actions(self) -> list[dict[str, Any]]:
        """Every action on the verifier's topic so far (read to the end of each partition)."""
        consumer = self.admin_consumer(f"t{self.sfx}-reader-{uuid.uuid4().hex[:6]}")
        tps = [TopicPartition(self.actions_topic, p) for p in range(PARTITIONS)]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, 10)[1] for tp in tps}
        consumer.assign([TopicPartition(self.actions_topic, p, 0) for p in range(PARTITIONS)])
        got: list[dict[str, Any]] = []
        done = {p for p, end in ends.items() if end == 0}
        deadline = time.monotonic() + 30
        while len(done) < PARTITIONS and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            got.append(json.loads(msg.value()))
            if msg.offset() + 1 >= ends[msg.partition()]:
                done.add(msg.partition())
        consumer.close()
        return got

    def checked(self, port: int) -> float:
        """The observations a worker serving metrics on ``port`` has checked so far."""
        return self.metric(port, "govbus_observations_checked_total", resource=self.resource.code)

    def reprocessed(self, port: int) -> float:
        """The records a worker processed again after seeking a stalled partition back
        (stream_apps/consumer.py, change 3), over all its inputs."""
        return self.metric(port, "govbus_stream_reprocessed_records_total")

    def metric(self, port: int, name: str, **labels: str) -> float:
        """The sum of a worker's samples ``name`` with ``labels``."""
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    text = r.read().decode()
                break
            except OSError:  # the worker is still starting
                assert time.monotonic() < deadline, self.worker_logs()
                time.sleep(0.2)
        return total(text, name, **labels)

    def worker_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.tmp.glob("*.log"))


@pytest.fixture
def ns(admin: AdminClient, kafka_settings: Settings, tmp_path: Path) -> Iterator[VerifierExchange]:
    """The test's exchange, reconciled with the verifier's needs. Its passwords are kept in the
    session's state directory, where the worker (``govbus --state-dir``) reads the app's."""
    with VerifierExchange(
        admin=admin, settings=kafka_settings, state_dir=kafka_settings.state_dir, tmp=tmp_path
    ) as ex:
        ex.spec = _spec(ex)
        ex.reconcile(ex.desired(partitions=PARTITIONS, stream_apps=[ex.app]))
        try:
            yield ex
        finally:
            for worker in ex.workers:
                stop_process(worker, signal.SIGINT)


GOOD = {"name": "张三", "amount": "1000.00", "birth": "1990-01-01", "marital": "10"}


def record(n: int, **values: Any) -> dict[str, Any]:
    import decimal

    out: dict[str, Any] = {"citizen_id": citizen_id(n), **GOOD, **values}
    out["amount"] = decimal.Decimal(out["amount"])
    out["birth"] = dt.date.fromisoformat(out["birth"])
    return out


def copy(n: int, **values: Any) -> dict[str, Any]:
    return {"citizen_id": citizen_id(n), **GOOD, **values}


def test_records_and_copies_of_a_key_share_the_partition_number(ns: VerifierExchange) -> None:
    keys = [citizen_id(n) for n in range(40)]
    with ns.publisher() as pub:
        pub.publish(ns.resource.code, [record(n) for n in range(40)])
    with ns.observer("mzj") as obs:
        obs.observe(ns.resource.code, [copy(n) for n in range(40)])
    placed: dict[str, dict[str, int]] = {}
    consumer = ns.admin_consumer(f"t{ns.sfx}-placement")
    topics = (
        ns.naming.resource_topic(ns.resource.code),
        ns.naming.holder_observation_topic(ns.id("mzj")),
    )
    consumer.assign([TopicPartition(t, p, 0) for t in topics for p in range(PARTITIONS)])
    deadline = time.monotonic() + 30
    while sum(len(v) for v in placed.values()) < 80 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            placed.setdefault(msg.key().decode(), {})[msg.topic()] = msg.partition()
    consumer.close()
    murmur2 = DefaultPartitioner()
    spread = set()
    for key in keys:
        assert placed[key][topics[0]] == placed[key][topics[1]], key
        # The partition Faust's own producer (aiokafka, Java-compatible murmur2) would choose.
        expected = murmur2(key.encode(), list(range(PARTITIONS)), list(range(PARTITIONS)))
        assert placed[key][topics[0]] == expected
        spread.add(expected)
    assert spread == set(range(PARTITIONS))  # the check means something: keys spread out


def test_mismatches_per_rule_out_of_order_arrival_and_settlement(ns: VerifierExchange) -> None:
    code = ns.resource.code
    mzj, rsj = ns.spec.departments[1].code, ns.spec.departments[2].code
    with ns.observer("rsj") as rsj_obs:
        # Out of order: the copy of record 6 arrives before the worker and the record exist.
        report = rsj_obs.observe(code, [{"citizen_id": citizen_id(6), "name": "王五"}])
        assert (report.delivered, report.dead_lettered) == (1, [])
    ns.start_worker("worker")
    with ns.publisher() as pub, ns.observer("mzj") as mzj_obs:
        pub.publish(code, [record(n) for n in range(1, 8)])
        report = mzj_obs.observe(
            code,
            [
                copy(1, name="李四"),  # text
                copy(2, amount="1000.05"),  # numeric beyond 0.01
                copy(3, birth="1990/1/2"),  # date
                copy(4, marital="20"),  # exact
                # Equivalent under every rule: nothing to open.
                copy(5, name="\u3000张三 ", amount="1,000.004", birth="1990年1月1日"),
                copy(7, name="张叁"),
            ],
        )
        assert (report.delivered, report.dead_lettered) == (6, [])
        ns.wait_processed()
        # The provider corrects record 7 to the holder's value: the dispute settles.
        pub.publish(code, [record(7, name="张叁")])
        ns.wait_processed()

    actions = ns.actions()
    detected = {
        (a["key"], a["item"], a["observed"]["holder"]) for a in actions if a["action"] == "detect"
    }
    assert detected == {
        (citizen_id(1), "name", mzj),
        (citizen_id(2), "amount", mzj),
        (citizen_id(3), "birth", mzj),
        (citizen_id(4), "marital", mzj),
        (citizen_id(6), "name", rsj),
        (citizen_id(7), "name", mzj),
    }
    by_key = {(a["key"], a["action"]): a for a in actions}
    amount = by_key[(citizen_id(2), "detect")]
    assert (amount["rule"], amount["authoritative"]["value"], amount["observed"]["value"]) == (
        "numeric", "1000.00", "1000.05"
    )  # fmt: skip
    assert amount["authoritative"]["provider"] == ns.resource.provider
    settled = [a for a in actions if a["action"] == "settle"]
    assert [(a["key"], a["dispute_id"]) for a in settled] == [
        (citizen_id(7), dispute_id(code, citizen_id(7), "name", mzj, "张叁", "张三"))
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Faust commits what a worker processed every second (broker_commit_interval), after flushing
# its producer; a worker killed at t restarts from a commit made after t - REPLAY_WINDOW.
REPLAY_WINDOW = 2.0  # s


def test_a_worker_killed_mid_stream_loses_no_dispute_and_replays_one_commit_interval(
    ns: VerifierExchange,
) -> None:
    code = ns.resource.code
    mzj = ns.spec.departments[1].code
    n_records, chunk = 6000, 600
    with ns.publisher() as pub:
        pub.publish(code, [record(n) for n in range(n_records)])
    copies = [copy(n, name="错名") if n % 3 == 0 else copy(n) for n in range(n_records)]
    expected = {
        dispute_id(code, citizen_id(n), "name", mzj, "错名", "张三") for n in range(0, n_records, 3)
    }
    ports = free_port(), free_port()
    first = ns.start_worker("first", metrics_port=ports[0])
    with ns.observer("mzj") as obs:
        sent = 0
        while sent < n_records * 7 // 10:
            obs.observe(code, copies[sent : sent + chunk])
            sent += chunk
        # Kill while detections are flowing, with copies still unprocessed: note what the
        # worker had checked REPLAY_WINDOW s before the kill, and at the kill.
        deadline = time.monotonic() + 90
        while not ns.actions():
            assert time.monotonic() < deadline, ns.worker_logs()
            time.sleep(0.2)
        checked_before = ns.checked(ports[0])
        # Copies keep coming through the window, the last few hundred just before the kill, so
        # the worker is still checking when it dies (a machine fast enough had checked all it
        # was sent before the window ended: CI of the eighth session).
        window_end = time.monotonic() + REPLAY_WINDOW
        while time.monotonic() < window_end and sent < n_records - 600:
            time.sleep(0.1)
            obs.observe(code, copies[sent : sent + 60])
            sent += 60
        obs.observe(code, copies[sent : sent + 300])
        sent += 300
        checked_at_kill = ns.checked(ports[0])
        first.send_signal(signal.SIGKILL)
        first.wait()
        before = {a["dispute_id"] for a in ns.actions()}
        assert 0 < len(before) < len(expected)  # really mid-stream
        assert 0 < checked_before < checked_at_kill < sent  # checking, not done
        while sent < n_records:
            obs.observe(code, copies[sent : sent + chunk])
            sent += chunk
    ns.start_worker("second", metrics_port=ports[1])
    # Done when every expected dispute was detected (generous: a loaded 2-core machine and a
    # group rejoin), then when the second worker's committed offsets reach the ends.
    deadline = time.monotonic() + 300
    while not expected <= {a["dispute_id"] for a in ns.actions()}:
        assert time.monotonic() < deadline, (
            f"{len(expected - {a['dispute_id'] for a in ns.actions()})} disputes never detected\n"
            + ns.worker_logs()
        )
        time.sleep(1)
    actions = ns.actions()
    assert {a["action"] for a in actions} == {"detect"}
    assert {a["dispute_id"] for a in actions} == expected  # none lost, none invented
    # What the restarted worker checked: every copy from the group's last commit on, counted
    # once the count stands still (every copy was produced before; not by committed offsets,
    # which after the restart stay behind on a partition: see the report of issue 17b).
    checked_again, previous = ns.checked(ports[1]), -1.0
    while checked_again != previous:
        time.sleep(3)
        checked_again, previous = ns.checked(ports[1]), checked_again
    # A partition whose commits stalled is sought back (stream_apps/consumer.py, change 3) and
    # its records processed a second time: counted by the worker, and not the restart's replay.
    again = ns.reprocessed(ports[1])
    restart_checked = checked_again - again
    replayed = checked_at_kill + restart_checked - n_records  # (at the kill: read just before)
    said = (
        f"the restarted worker checked {checked_again:.0f} copies, {again:.0f} of them again "
        f"after a stall; replayed {replayed:.0f}\n" + ns.worker_logs()
    )
    # At most what the first worker checked in its last REPLAY_WINDOW s (one commit interval,
    # the commit's own flush, and a loaded machine: CI runs this beside the suite); measured
    # alone: 623 replayed at 1,214 copies/s, 447 at 1,022.
    assert restart_checked <= n_records - checked_before, (
        f"the first worker checked {checked_at_kill - checked_before:.0f} copies in its last "
        f"{REPLAY_WINDOW} s; " + said
    )


def test_a_worker_sets_the_lag_of_its_inputs_to_what_it_has_not_processed(
    ns: VerifierExchange,
) -> None:
    """Any app built by make_app: an agent that processes 40 of 100 observations, then stalls."""
    n_records, processed = 100, 40
    with ns.observer("mzj") as obs:  # nobody has consumed these yet
        assert obs.observe(ns.resource.code, [copy(n) for n in range(n_records)]).delivered == 100
    spec, topic = ns.app, ns.naming.holder_observation_topic(ns.id("mzj"))
    handled: list[int] = []
    released = threading.Event()

    def build() -> faust.App:
        app = make_app(spec, ns.settings, ns.secrets(spec.user), partitions=PARTITIONS,
                       lag_interval=0.5, datadir=str(ns.tmp / "faust"))  # fmt: skip

        @app.agent(app.topic(topic, key_serializer="raw", value_serializer="raw"))
        async def stalls(stream: faust.StreamT[bytes]) -> None:
            async for _ in stream:
                while len(handled) == processed and not released.is_set():
                    await asyncio.sleep(0.1)  # holds this event: not acknowledged until released
                handled.append(1)

        return app

    def lags() -> dict[int, float]:
        return {
            p: value
            for p in range(PARTITIONS)
            if (value := metrics.REGISTRY.get_sample_value(
                "govbus_consumer_lag",
                {"group": spec.app_id, "topic": topic, "partition": str(p)},
            )) is not None
        }  # fmt: skip

    with InProcessWorker(build):
        # Faust commits what the agent acknowledged (every second), the timer sets the gauge.
        deadline = time.monotonic() + 60
        while sum(lags().values()) != n_records - processed or len(lags()) < PARTITIONS:
            assert time.monotonic() < deadline, (len(handled), lags())
            time.sleep(0.2)
        assert len(handled) == processed
        time.sleep(2)  # a few more commits and timer ticks change nothing: nothing processed
        assert sum(lags().values()) == n_records - processed
        released.set()  # the rest is processed: the lag falls to 0
        deadline = time.monotonic() + 60
        while sum(lags().values()) != 0:
            assert time.monotonic() < deadline, (len(handled), lags())
            time.sleep(0.2)


def test_a_holder_writes_only_its_own_observation_topic(ns: VerifierExchange) -> None:
    """Issue 11: 人社局 cannot send copies under 民政局's name; the broker refuses it."""
    mzj_topic = ns.naming.holder_observation_topic(ns.dept("mzj").id)
    value = json.dumps({"holder": ns.dept("mzj").code, "resource_code": ns.resource.code,
                        "values": {"name": "假的"}}).encode()  # fmt: skip
    producer = ns.producer(ns.dept("rsj").id)
    errors: list[Any] = []
    producer.produce(mzj_topic, key=citizen_id(1).encode(), value=value,
                     on_delivery=lambda err, _msg: errors.append(err))  # fmt: skip
    producer.flush(30)
    assert errors and errors[0] is not None, "the broker let 人社局 write 民政局's copies"
    assert errors[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # Its own topic is where its copies go (the Observer picks it).
    with ns.observer("rsj") as obs:
        report = obs.observe(ns.resource.code, [{"citizen_id": citizen_id(1), "name": "张三"}])
    assert report.delivered == 1


def test_unusable_records_and_forged_holders_are_quarantined_and_checking_goes_on(
    ns: VerifierExchange,
) -> None:
    """Issue 11 (3, 7): junk on the resource topic and a copy on 民政局's topic that claims to be
    人社局's are set aside with who wrote them; the next good copy is still checked."""
    mzj, rsj = ns.dept("mzj"), ns.dept("rsj")
    gaj_producer = ns.producer(ns.dept("gaj").id)
    produce_one(gaj_producer, ns.naming.resource_topic(ns.resource.code), b"junk", b"k1")
    forged = json.dumps({"holder": rsj.code, "resource_code": ns.resource.code,
                         "values": {"name": "x"}}).encode()  # fmt: skip
    produce_one(ns.producer(mzj.id), ns.naming.holder_observation_topic(mzj.id), forged,
                citizen_id(1).encode())  # fmt: skip
    ns.start_worker("worker")
    with ns.publisher() as pub, ns.observer("mzj") as obs:
        pub.publish(ns.resource.code, [record(1)])
        obs.observe(ns.resource.code, [copy(1, name="李四")])
        ns.wait_processed()
    reader = ns.admin_consumer(f"t{ns.sfx}-q")
    try:
        entries = [QuarantineEntry.from_json(m.value())
                   for m in poll_messages(reader, ns.naming.quarantine_topic, 2, 30)]  # fmt: skip
    finally:
        reader.close()
    by_topic = {e.topic: e for e in entries}
    junk = by_topic[ns.naming.resource_topic(ns.resource.code)]
    assert (junk.provider, junk.reader) == (ns.dept("gaj").code, ns.app.app_id)
    claim = by_topic[ns.naming.holder_observation_topic(mzj.id)]
    assert claim.provider == mzj.code and f"says holder {rsj.code}" in claim.reason
    detected = [a for a in ns.actions() if a["action"] == "detect"]
    assert [(a["key"], a["observed"]["holder"]) for a in detected] == [(citizen_id(1), mzj.code)]
