"""Every stream app with two workers and a rebalance in the middle (issue 17, item 5).

Each test reconciles a namespace of its own with one app's needs (topics of ``PARTITIONS``
partitions), starts two ``govbus stream-apps run`` worker processes of that app, waits until
the app's consumer group has both as members, each holding input partitions, then feeds the
app, kills one worker with SIGKILL while work is flowing (its partitions move to the other
after the session timeout), feeds the rest, and checks the outputs against what the inputs
call for: nothing lost, nothing invented.

The group is read with the admin client (``describe_consumer_groups``): Faust's assignor sends
the standard consumer-protocol assignment, so the broker reports each member's partitions.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from govbus.catalog.yaml_io import dump_yaml
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.config import Settings
from govbus.vocabulary.processes import stop_process
from govbus.vocabulary.spec import CatalogSpec, Holder, InfoItem, Resource
from govbus.vocabulary.topology import StreamApp
from govbus.vocabulary.wire import encode_single_object
from producers.observe import Observer
from producers.publisher import Publisher
from stream_apps.disputes import app as disputes_app
from stream_apps.disputes.rules import detected_dispute_id
from stream_apps.disputes.topics import DisputeTopics
from stream_apps.freshness import app as freshness_app
from stream_apps.projection import app as projection_app
from stream_apps.registry import AppContext
from stream_apps.verification import app as verification_app
from stream_apps.verification.rules import dispute_id
from tests.conftest import REPO
from tests.factories import person_resource
from tests.integration.fixtures import Exchange

pytestmark = pytest.mark.kafka
PARTITIONS = 4
CST = dt.timezone(dt.timedelta(hours=8))


def citizen_id(n: int) -> str:
    """A valid 公民身份号码 for any ``n`` < 3,650,000 (born on the n // 1000-th day of 1950)."""
    born = dt.date(1950, 1, 1) + dt.timedelta(days=n // 1000)
    body = f"320402{born:%Y%m%d}{n % 1000:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


@dataclass(kw_only=True)
class TwoWorkers(Exchange):
    """The shared ``Exchange`` plus one app's worker processes and reading its topics back."""

    tmp: Path
    app: StreamApp | None = None
    options: list[str] = field(default_factory=list)  # the app's --option KEY=VALUE pairs
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def stream_app(self) -> StreamApp:
        assert self.app is not None, "the test reconciles an app first"
        return self.app

    def start(self, name: str, app: str, *extra: str) -> subprocess.Popen[bytes]:
        """``govbus stream-apps run APP`` in the namespace, as worker ``name`` (``extra``:
        more arguments of the command)."""
        catalog = self.tmp / "catalog.yaml"
        dump_yaml(self.spec, catalog)
        cmd = [sys.executable, "-m", "govbus.cli", "--state-dir", str(self.settings.state_dir),
               "stream-apps", "run", app, "--catalog", str(catalog),
               "--partitions", str(PARTITIONS),
               "--option", f"prefix={self.naming.prefix}"]  # fmt: skip
        for option in self.options:
            cmd += ["--option", option]
        # At info the workers' logs (printed when a test fails) keep Faust's rebalance and
        # recovery steps: offsets, highwaters, what was sought (13 KB a worker a test).
        cmd += ["--loglevel", os.environ.get("GOVBUS_TEST_WORKER_LOGLEVEL", "info"), *extra]
        env = {**os.environ, "GOVBUS_BOOTSTRAP_SERVERS": self.settings.bootstrap_servers or ""}
        log = (self.tmp / f"{name}.log").open("wb")
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.workers[name] = proc
        return proc

    def kill(self, name: str) -> None:
        proc = self.workers[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def logs(self) -> str:
        """The workers' logs for a failure message: Faust's recovery warnings, repeated every
        5 s while a recovery waits, kept to their first rounds so the rebalance and recovery
        steps before them stay in view."""
        out = []
        for path in self.tmp.glob("*.log"):
            kept, repeats = [], 0
            for line in path.read_text(errors="replace").splitlines():
                if "No event received for active tp" in line or "has not flushed" in line:
                    repeats += 1
                    if repeats > 24:
                        continue
                kept.append(line)
            if repeats > 24:
                kept.append(f"({repeats - 24} more recovery warnings left out)")
            out.append(f"--- {path.name}\n" + "\n".join(kept)[-30_000:])
        return "\n".join(out)

    def alive(self) -> None:
        for name, proc in self.workers.items():
            assert proc.poll() in (None, -signal.SIGKILL), f"worker {name} ended\n{self.logs()}"

    def assignment(self) -> list[set[tuple[str, int]]]:
        """Each member's input partitions in the app's group, as the broker reports them."""
        group = self.stream_app.app_id
        try:
            found = self.admin.describe_consumer_groups([group])[group].result(timeout=10)
        except KafkaException:  # the group's coordinator is still loading, or moving
            return []
        reads = set(self.stream_app.reads)
        return [
            {(tp.topic, tp.partition) for tp in m.assignment.topic_partitions if tp.topic in reads}
            for m in found.members
        ]

    def inputs(self) -> list[TopicPartition]:
        """Every partition of the app's input topics (some have one, most ``PARTITIONS``)."""
        meta = self.admin.list_topics(timeout=10).topics
        return [TopicPartition(t, p) for t in self.stream_app.reads for p in meta[t].partitions]

    def until_both_hold_partitions(self, seconds: float = 180) -> None:
        """Until the group has two members, each with input partitions, covering them all."""
        every = {(tp.topic, tp.partition) for tp in self.inputs()}
        deadline = time.monotonic() + seconds
        held: list[set[tuple[str, int]]] = []
        while time.monotonic() < deadline:
            self.alive()
            held = self.assignment()
            if len(held) == 2 and all(held) and set().union(*held) == every:
                return
            time.sleep(0.5)
        raise AssertionError(f"two workers never shared the inputs: {held}\n{self.logs()}")

    def admin_consumer(self) -> Consumer:
        return Consumer(
            {**kafka_clients.admin_config(self.settings),
             "group.id": f"t{self.sfx}-reader-{uuid.uuid4().hex[:6]}",
             "auto.offset.reset": "earliest", "enable.auto.commit": False}
        )  # fmt: skip

    def read(self, topic: str) -> list[tuple[bytes | None, bytes | None]]:
        """Every (key, value) on ``topic`` so far (each partition read to its end)."""
        consumer = self.admin_consumer()
        try:
            meta = consumer.list_topics(topic, timeout=10).topics[topic]
            tps = [TopicPartition(topic, p) for p in meta.partitions]
            ends = {tp.partition: consumer.get_watermark_offsets(tp, 10)[1] for tp in tps}
            consumer.assign([TopicPartition(topic, p, 0) for p in ends])
            got: list[tuple[bytes | None, bytes | None]] = []
            done = {p for p, end in ends.items() if end == 0}
            deadline = time.monotonic() + 60
            while len(done) < len(ends):
                assert time.monotonic() < deadline, f"reading {topic} stalled"
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                if msg.error():
                    raise KafkaException(msg.error())
                got.append((msg.key(), msg.value()))
                if msg.offset() + 1 >= ends[msg.partition()]:
                    done.add(msg.partition())
            return got
        finally:
            consumer.close()

    def until_processed(self, seconds: float = 300) -> None:
        """Until the app's group has committed the end of every input partition."""
        consumer = self.admin_consumer()
        tps = self.inputs()
        ends = {(tp.topic, tp.partition): consumer.get_watermark_offsets(tp, 10)[1] for tp in tps}
        probe = Consumer(
            {**kafka_clients.admin_config(self.settings), "group.id": self.stream_app.app_id,
             "enable.auto.commit": False}
        )  # fmt: skip
        lag: dict[tuple[str, int], tuple[int, int]] = {}
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                self.alive()
                done = probe.committed(tps, timeout=10)
                lag = {(tp.topic, tp.partition): (tp.offset, ends[(tp.topic, tp.partition)])
                       for tp in done}  # fmt: skip
                # An empty partition (end 0) has nothing to commit.
                if all(committed >= end or end == 0 for committed, end in lag.values()):
                    return
                time.sleep(0.5)
        finally:
            probe.close()
            consumer.close()
        raise AssertionError(f"not processed in {seconds} s: (committed, end) {lag}\n{self.logs()}")


def until(check: Callable[[], bool], what: str, ex: TwoWorkers, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        ex.alive()
        assert time.monotonic() < deadline, f"{what}: not within {seconds:.0f} s\n{ex.logs()}"
        time.sleep(0.5)


@pytest.fixture
def ex(admin: AdminClient, kafka_settings: Settings, tmp_path: Path) -> Iterator[TwoWorkers]:
    """An exchange whose passwords are kept in the session's state directory, where the
    workers (``govbus --state-dir``) read the app's; the workers stopped afterwards."""
    with TwoWorkers(
        admin=admin, settings=kafka_settings, state_dir=kafka_settings.state_dir, tmp=tmp_path
    ) as exchange:
        try:
            yield exchange
        finally:
            for proc in exchange.workers.values():
                stop_process(proc, signal.SIGINT)


def _people(ex: Exchange, **overrides: Any) -> CatalogSpec:
    """公安局 provides 人口信息 (citizen_id, name); 民政局 holds a copy of the name."""
    gaj, mzj, dsj = (ex.department(label, n) for n, label in enumerate(("gaj", "mzj", "dsj")))
    resource = person_resource(
        (
            InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),
            InfoItem("姓名", "name", "C", 50, compare="text"),
        ),
        code=f"10101/{gaj.code}-000001",
        provider=gaj.code,
        abstract="test",
        category=("人口",),
        publish_date=dt.date(2026, 1, 1),
        holders=(Holder(mzj.code, ("name",)),),
        **overrides,
    )
    return CatalogSpec((gaj, mzj, dsj), (resource,))


def _in_chunks(send: Callable[[list[Any]], None], items: list[Any], size: int = 500) -> None:
    for start in range(0, len(items), size):
        send(items[start : start + size])


# Failed before stream_apps/consumer.py's changes 2 and 3 (issue 17): the survivor dropped a
# taken-over partition's records and its commits stopped (68 of 1,027); now it seeks back.
def test_verifier_two_workers_one_killed_every_copy_checked_every_dispute_once(
    ex: TwoWorkers,
) -> None:
    ex.spec = _people(ex)
    ex.app = verification_app.needs(ex.spec, AppContext(ex.naming, partitions=PARTITIONS))
    ex.reconcile(ex.desired(partitions=PARTITIONS, stream_apps=[ex.app]))
    code, mzj = ex.resource.code, ex.dept("mzj").code
    n = 4000
    with Publisher(ex.session(ex.id("gaj"), catalog_version=1)) as pub:
        report = pub.publish(
            code, [{"citizen_id": citizen_id(i), "name": "张三"} for i in range(n)]
        )
        assert report.delivered == n
    # Every third copy disagrees on the name: one dispute each, and only those.
    copies = [{"citizen_id": citizen_id(i), "name": "错名" if i % 3 == 0 else "张三"}
              for i in range(n)]  # fmt: skip
    expected = {dispute_id(code, citizen_id(i), "name", mzj, "错名", "张三")
                for i in range(0, n, 3)}  # fmt: skip
    actions_topic = ex.naming.dispute_actions_topic(ex.app.user)

    def detected() -> list[str]:
        return [json.loads(v or b"{}").get("dispute_id", "") for _, v in ex.read(actions_topic)]

    ex.start("a", "govbus-verifier")
    ex.start("b", "govbus-verifier")
    ex.until_both_hold_partitions()
    with Observer(ex.session(ex.id("mzj"))) as obs:
        _in_chunks(lambda chunk: obs.observe(code, chunk), copies[: n * 6 // 10])
        until(lambda: len(detected()) > 0, "the first detections", ex)
        ex.kill("a")  # mid-stream: its partitions go to b after the session timeout
        before = set(detected())
        assert 0 < len(before) < len(expected)
        _in_chunks(lambda chunk: obs.observe(code, chunk), copies[n * 6 // 10 :])
    ex.until_processed()
    found = detected()
    missing = len(expected - set(found))
    assert set(found) == expected, f"{missing} disputes never detected"  # none lost or invented
    actions = [json.loads(v or b"{}") for _, v in ex.read(actions_topic)]
    assert {a["action"] for a in actions} == {"detect"}
    assert ex.assignment() and len(ex.assignment()) == 1  # b alone holds the group now


# Failed before stream_apps/consumer.py's change 2 (issue 17): actions 10-99 of a group that
# had not committed yet were never fetched again after the second worker joined.
def test_disputes_two_workers_one_killed_every_detected_dispute_opened_once(
    ex: TwoWorkers,
) -> None:
    ex.spec = _people(ex)
    context = AppContext(ex.naming, partitions=PARTITIONS, operator=ex.id("dsj"))
    ex.app = disputes_app.needs(ex.spec, context)
    ex.reconcile(ex.desired(partitions=PARTITIONS, stream_apps=[ex.app]))
    topics = DisputeTopics(ex.naming)
    ex.add_user(topics.verifier)  # the verification app's user acts on its own action topic
    ex.options = [f"operator={ex.id('dsj')}"]
    code, holder, provider = ex.resource.code, ex.dept("mzj").code, ex.resource.provider
    n = 1200

    def detect(i: int) -> dict[str, Any]:
        key = citizen_id(i)
        return {
            "action": "detect", "resource_code": code, "key": key, "item": "name",
            "dispute_id": detected_dispute_id(code, key, "name", holder, "错名", "张三"),
            "actor": topics.verifier, "at": dt.datetime.now(CST).isoformat(), "rule": "text",
            "authoritative": {"provider": provider, "value": "张三", "event_time": None},
            "observed": {"holder": holder, "value": "错名", "event_time": None},
        }  # fmt: skip

    actions = [detect(i) for i in range(n)]
    expected = {a["dispute_id"] for a in actions}
    producer = ex.producer(topics.verifier)

    def send(chunk: list[dict[str, Any]]) -> None:
        errors: list[KafkaError] = []
        for action in chunk:
            producer.produce(
                topics.actions(topics.verifier), key=action["dispute_id"].encode(),
                value=json.dumps(action).encode(),
                on_delivery=lambda e, _m: e and errors.append(e),
            )  # fmt: skip
        assert producer.flush(30) == 0 and not errors, errors

    def states() -> list[dict[str, Any]]:
        return [json.loads(v) for _, v in ex.read(topics.disputes(code)) if v]

    ex.start("a", "govbus-disputes")
    ex.start("b", "govbus-disputes")
    ex.until_both_hold_partitions()
    _in_chunks(send, actions[: n // 2], size=100)
    until(lambda: len(states()) > 0, "the first disputes opened", ex)
    ex.kill("b")
    opened_before = {s["dispute_id"] for s in states()}
    assert len(opened_before) > 0
    _in_chunks(send, actions[n // 2 :], size=100)
    send(actions[:10])  # at-least-once: a few actions again, after the rebalance
    # Done when every dispute is open and every record flagged, then the commits follow.
    until(
        lambda: {s["dispute_id"] for s in states()} >= expected,
        f"every dispute opened (of {len(expected)})",
        ex,
    )

    def flagged() -> set[str]:
        return {(k or b"").decode() for k, v in ex.read(topics.status(code))
                if v and json.loads(v)["under_verification"]}  # fmt: skip

    until(lambda: len(flagged()) >= n, "every record flagged", ex)
    ex.until_processed(seconds=120)  # the committed offsets follow what was processed
    found = states()
    assert {s["dispute_id"] for s in found} == expected  # none lost, none invented
    # Opened once each: a replayed or repeated detect changes nothing (version 1 only).
    assert {(s["version"], s["state"]) for s in found} == {(1, "open")}
    assert flagged() == {citizen_id(i) for i in range(n)}


def test_projector_two_workers_one_killed_every_record_projected(ex: TwoWorkers) -> None:
    items = (
        InfoItem("公民身份号码", "citizen_id", "C", 18, required=True, shareable_to_all=True,
                 mask="citizen-id"),
        InfoItem("姓名", "name", "C", 50, shareable_to_all=True, mask="name"),
        InfoItem("创业补贴金额（元）", "subsidy", "Y"),
    )  # fmt: skip
    base = _people(ex)
    resource = person_resource(
        items, code=base.resources[0].code, provider=base.resources[0].provider,
        abstract="test", category=("就业创业",), share_type="conditional",
        share_conditions="仅限办理就业创业业务", purposes=("administrative-basis",),
    )  # fmt: skip
    ex.spec = CatalogSpec(base.departments, (resource,))
    ex.app = projection_app.needs(ex.spec, AppContext(ex.naming, partitions=PARTITIONS))
    ex.reconcile(ex.desired(partitions=PARTITIONS, stream_apps=[ex.app]))
    secret = "test-view-key"
    ex.options = [f"key_secret={secret}"]
    n = 4000
    records = [{"citizen_id": citizen_id(i), "name": "张三丰"} for i in range(n)]
    view = ex.naming.public_view_topic(resource.code)
    expected = {
        projection_app.view_key(resource, citizen_id(i).encode(), secret.encode()) for i in range(n)
    }

    def projected() -> list[bytes | None]:
        return [k for k, _ in ex.read(view)]

    ex.start("a", "govbus-projector")
    ex.start("b", "govbus-projector")
    ex.until_both_hold_partitions()
    with Publisher(ex.session(ex.id("gaj"), catalog_version=1)) as pub:
        _in_chunks(lambda chunk: pub.publish(resource.code, chunk), records[: n // 2])
        until(lambda: len(projected()) > 0, "the first view records", ex)
        ex.kill("a")
        assert 0 < len(projected()) < n
        _in_chunks(lambda chunk: pub.publish(resource.code, chunk), records[n // 2 :])
    ex.until_processed()
    keys = projected()
    assert set(keys) == expected  # every record projected, under its view key; none invented
    assert len(keys) >= n  # at least once: a replay may repeat some
    assert None not in keys


def test_freshness_two_workers_one_killed_every_breach_once_and_ended_by_its_owner(
    ex: TwoWorkers,
) -> None:
    base = _people(ex)
    gaj = base.departments[0]

    def resource(k: int) -> Resource:
        return person_resource(
            (InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),),
            code=f"10101/{gaj.code}-{k:06d}", name=f"资源{k}", provider=gaj.code,
            abstract="test", category=("人口",),
        )  # fmt: skip

    resources = tuple(resource(k) for k in range(1, 13))
    ex.spec = CatalogSpec(base.departments, resources)
    context = AppContext(ex.naming, partitions=PARTITIONS, operator=ex.id("dsj"))
    ex.app = freshness_app.needs(ex.spec, context)
    ex.reconcile(ex.desired(partitions=PARTITIONS, stream_apps=[ex.app]))
    # Each partition (so each worker) judges some resources that end their breach and some
    # that stay breached: every other resource of each partition publishes again.
    by_partition: dict[int, list[str]] = {}
    for r in resources:
        by_partition.setdefault(freshness_app.owner(r.code, PARTITIONS), []).append(r.code)
    assert len(by_partition) == PARTITIONS and all(len(c) >= 2 for c in by_partition.values())
    ended = {code for codes in by_partition.values() for code in codes[::2]}
    codes = {r.code for r in resources}

    def publish(which: set[str]) -> None:
        with Publisher(ex.session(ex.id("gaj"), catalog_version=1)) as pub:
            for n, code in enumerate(sorted(which)):
                assert pub.publish(code, [{"citizen_id": citizen_id(n)}]).delivered == 1

    def published_a_month_ago() -> None:
        """A record of every resource, its Kafka timestamp (what the app reads) 30 days old:
        the broker takes old timestamps (message.timestamp.before.max.ms is unlimited)."""
        producer, errors = ex.producer(ex.id("gaj")), list[KafkaError]()
        then = dt.datetime.now(CST) - dt.timedelta(days=30)
        for r in resources:
            value = encode_single_object(r, {
                "provider": r.provider, "resource_code": r.code, "catalog_version": 1,
                "op": "UPSERT", "event_time": then, "trace_id": f"old-{r.code}",
                "payload": {"citizen_id": citizen_id(0)},
            })  # fmt: skip
            producer.produce(ex.naming.resource_topic(r.code), key=citizen_id(0).encode(),
                             value=value, timestamp=int(then.timestamp() * 1000),
                             on_delivery=lambda e, _m: e and errors.append(e))  # fmt: skip
        assert producer.flush(30) == 0 and not errors, errors

    def events() -> list[tuple[str, bool]]:
        return [((k or b"").decode(), json.loads(v or b"{}")["breached"])
                for k, v in ex.read(ex.naming.freshness_topic)]  # fmt: skip

    def recorded() -> set[str]:
        """Resources whose breach is in the episodes table's changelog."""
        changelog = f"{ex.app.app_id}-episodes-changelog" if ex.app else ""
        return {json.loads(k or b'""') for k, v in ex.read(changelog)
                if v and json.loads(v).get("breached")}  # fmt: skip

    published_a_month_ago()  # every resource is past its daily allowance
    ex.options = [f"operator={ex.id('dsj')}", "interval=0.5"]
    ex.start("a", "govbus-freshness")
    ex.start("b", "govbus-freshness")
    ex.until_both_hold_partitions()
    until(lambda: {c for c, b in events() if b} == codes, "a breach of every resource", ex)
    until(lambda: recorded() == codes, "every breach in the episodes changelog", ex)
    ex.kill("a")  # its resources move to b, their episodes rebuilt from the changelog
    publish(ended)
    until(lambda: {c for c, b in events() if not b} == ended, "the ended episodes", ex)
    ex.until_processed()
    time.sleep(5)  # more checks of b's (every 0.5 s) over every resource: none may repeat
    found = events()
    # Every resource breached once (none lost, none repeated by the worker that took over);
    # the ones that published again ended once; none other did.
    assert sorted(c for c, b in found if b) == sorted(codes)
    assert sorted(c for c, b in found if not b) == sorted(ended)
    violations = [(k or b"").decode() for k, _ in ex.read(ex.naming.violations_topic)]
    assert len(violations) == len(set(violations)) == len(codes)
