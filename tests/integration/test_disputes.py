"""The dispute app against the real broker: a worker process, real users and ACLs.

The module's catalog (departments and topics suffixed uniquely) is reconciled with the app's
needs, as ``govbus reconcile`` would; the app then runs as its own SCRAM user in a worker
process (tests/integration/disputes_worker.py). Departments act through the SDK or by
producing actions by hand; outcomes are read back from the topics the app writes. The last
test kills the worker (SIGKILL) and restarts it with its clock a month ahead.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from govbus.broker import admin as kafka_admin
from govbus.catalog.yaml_io import dump_yaml
from govbus.reconcile.desired import desired_state
from govbus.reconcile.plan import Scope, apply, make_plan, read_actual
from govbus.subscribe.consumer import Record, SubscribeError, Subscriber
from govbus.vocabulary import acls
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.config import Settings
from govbus.vocabulary.identifiers import uscc_check_char
from govbus.vocabulary.naming import Naming
from govbus.vocabulary.secrets import PasswordStore
from govbus.vocabulary.session import DepartmentSession
from govbus.vocabulary.spec import (
    CatalogSpec,
    Department,
    Holder,
    InfoItem,
    Resource,
    ResourceKey,
)
from govbus.vocabulary.wire import encode_single_object
from stream_apps.disputes import app as disputes_app
from stream_apps.disputes.client import DisputeClient, DisputeError
from stream_apps.disputes.rules import detected_dispute_id
from stream_apps.disputes.topics import DisputeTopics
from stream_apps.registry import AppContext

pytestmark = pytest.mark.kafka

CST = dt.timezone(dt.timedelta(hours=8))
REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 2
WAIT = 120.0  # a generous bound for the worker to start, rebalance and answer
T = TypeVar("T")


def eventually(check: Callable[[], T | None], what: str, timeout: float = WAIT) -> T:
    """The first truthy answer of ``check``; fails naming ``what`` if none comes in time."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not seen within {timeout:.0f} s")
        time.sleep(0.5)


def dept(sfx: str, label: str, n: int) -> Department:
    body = f"11320400{n:09d}"
    return Department(f"t{sfx}-{label}", body + uscc_check_char(body), label, "city", "320400")


@dataclass
class World:
    sfx: str
    admin: AdminClient
    settings: Settings
    secrets: PasswordStore
    spec: CatalogSpec
    topics: DisputeTopics
    tmp: Path
    verifier_password: str
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def resource(self) -> Resource:
        return self.spec.resources[0]

    @property
    def naming(self) -> Naming:
        return self.topics.naming

    @property
    def data_topic(self) -> str:
        return self.naming.resource_topic(self.resource.code)

    def id(self, label: str) -> str:
        return f"t{self.sfx}-{label}"

    def client(self, label: str) -> DisputeClient:
        user = self.id(label)
        return DisputeClient(
            DepartmentSession(
                self.settings, user, self.secrets(user), self.spec, naming=self.naming
            ),
            operator=self.id("dsj"),
        )

    def start_worker(self, clock_days: int = 0) -> subprocess.Popen[bytes]:
        catalog = self.tmp / "catalog.yaml"
        dump_yaml(self.spec, catalog)
        conf = {
            "env": {
                "GOVBUS_BOOTSTRAP_SERVERS": self.settings.bootstrap_servers,
                "GOVBUS_STATE_DIR": str(self.settings.state_dir),
            },
            "catalog": str(catalog),
            "password": self.secrets(self.topics.app_id),
            "partitions": PARTITIONS,
            "operator": self.id("dsj"),
            "prefix": self.naming.prefix,
            "clock_days": clock_days,
            "overdue_interval": 1.0,
        }
        path = self.tmp / f"worker-{len(self.workers)}.json"
        path.write_text(json.dumps(conf), encoding="utf-8")
        log = (self.tmp / f"worker-{len(self.workers)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.disputes_worker", str(path)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
        self.workers.append(proc)
        return proc

    def produce(self, user: str, password: str, topic: str, key: str, value: bytes) -> None:
        producer = kafka_clients.producer(self.settings, user, password)
        errors: list[KafkaError] = []
        producer.produce(topic, key=key.encode(), value=value,
                         on_delivery=lambda e, _m: e and errors.append(e))  # fmt: skip
        assert producer.flush(30) == 0 and not errors, errors

    def act(self, label: str, action: dict[str, Any]) -> None:
        """A department's action written by hand onto its own action topic."""
        user = self.id(label)
        self.produce(user, self.secrets(user), self.topics.actions(user),
                     action["dispute_id"], json.dumps(action).encode())  # fmt: skip

    def verifier_act(self, action: dict[str, Any]) -> None:
        self.produce(self.topics.verifier, self.verifier_password,
                     self.topics.actions(self.topics.verifier), action["dispute_id"],
                     json.dumps(action).encode())  # fmt: skip

    def read(self, topic: str) -> list[tuple[str | None, Any]]:
        """Every (key, JSON value) on ``topic``, read as the admin."""
        conf = kafka_clients.admin_config(self.settings)
        extra = {"enable.auto.commit": False, "enable.partition.eof": True}
        consumer = Consumer({**conf, "group.id": f"t{self.sfx}-read", **extra})
        try:
            meta = consumer.list_topics(topic, timeout=10).topics[topic]
            parts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
            pending = set()
            for tp in parts:
                low, high = consumer.get_watermark_offsets(tp, timeout=10)
                if high > low:
                    pending.add(tp.partition)
            consumer.assign(parts)
            out: list[tuple[str | None, Any]] = []
            while pending:
                msg = consumer.poll(5)
                assert msg is not None, f"reading {topic} stalled"
                if msg.error():
                    assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                    pending.discard(msg.partition())
                    continue
                key = msg.key().decode() if msg.key() else None
                out.append((key, json.loads(msg.value()) if msg.value() else None))
            return out
        finally:
            consumer.close()

    def versions(self, dispute_id: str) -> list[dict[str, Any]]:
        """Every published state of a dispute, in order (not folded)."""
        topic = self.topics.disputes(self.resource.code)
        return [v for k, v in self.read(topic) if k == dispute_id]

    def state(self, dispute_id: str, version: int) -> dict[str, Any] | None:
        found = [v for v in self.versions(dispute_id) if v["version"] == version]
        return found[-1] if found else None

    def status(self, key: str) -> bool | None:
        """The newest under_verification flag of a record (None: never written)."""
        flags = [v for k, v in self.read(self.topics.status(self.resource.code)) if k == key]
        if not flags:
            return None
        return bool(flags[-1] and flags[-1]["under_verification"])

    def publish_record(self, key: str, name: str) -> tuple[int, int]:
        """The provider's record on the resource topic; returns (partition, offset)."""
        res, user = self.resource, self.id("gaj")
        value = encode_single_object(res, {
            "provider": res.provider, "resource_code": res.code, "catalog_version": 1,
            "op": "UPSERT", "event_time": dt.datetime.now(CST), "trace_id": f"trace-{key}",
            "payload": {"citizen_id": key, "citizen_name": name},
        })  # fmt: skip
        producer = kafka_clients.producer(self.settings, user, self.secrets(user))
        where: list[tuple[int, int]] = []
        producer.produce(
            self.data_topic,
            key=key.encode(),
            value=value,
            on_delivery=lambda e, m: where.append((m.partition(), m.offset())),
        )
        assert producer.flush(30) == 0 and where
        return where[0]

    def subscribe(self, label: str, key: str) -> Record:
        """The record of ``key`` as the department's subscriber hands it out."""
        user = self.id(label)
        sub = Subscriber(
            DepartmentSession(
                self.settings, user, self.secrets(user), self.spec, naming=self.naming
            ),
            self.resource.code,
            "work-reference",
            group_suffix=uuid.uuid4().hex[:6],
            verification_status=True,
        )
        got: list[Record] = []
        sub.run(got.append, timeout=5)
        return [r for r in got if r.key == key][-1]


def catalog(sfx: str) -> CatalogSpec:
    gaj, scj, mzj, dsj = (
        dept(sfx, label, n) for n, label in enumerate(("gaj", "scj", "mzj", "dsj"))
    )
    res = Resource(
        code=f"10101/{gaj.code}-000001",
        name="人口基本信息",
        provider=gaj.code,
        abstract="test",
        format="database",
        category=("人口",),
        items=(
            InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),
            InfoItem("姓名", "citizen_name", "C", 50, compare="text"),
        ),
        key=ResourceKey(("citizen_id",), "natural-person"),
        share_type="unconditional",
        update_cycle="daily",
        publish_date=dt.date(2026, 1, 1),
        holders=(Holder(scj.code, ("citizen_name",)),),
    )
    return CatalogSpec((gaj, scj, mzj, dsj), (res,))


@pytest.fixture(scope="module")
def world(
    admin: AdminClient, kafka_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    sfx = uuid.uuid4().hex[:8]
    naming = Naming(f"t{sfx}.")
    topics = DisputeTopics(naming)
    spec = catalog(sfx)
    tmp = tmp_path_factory.mktemp("disputes")
    store = PasswordStore(tmp / "state", naming)
    scope = Scope.namespace(naming, (f"t{sfx}-",))
    context = AppContext(naming, partitions=PARTITIONS, operator=f"t{sfx}-dsj")
    needs = disputes_app.needs(spec, context)
    desired = desired_state(spec, partitions=PARTITIONS, naming=naming,
                            platform_apps=False, stream_apps=[needs])  # fmt: skip
    apply(make_plan(desired, read_actual(admin, scope=scope)), admin, store)
    # The verification app's user (its own issue creates it) and the subscribers' audit trail.
    verifier_password = secrets.token_urlsafe(12)
    kafka_admin.upsert_scram_user(admin, topics.verifier, verifier_password)
    audit = naming.audit_topic
    kafka_admin.create_topic(admin, audit, partitions=1)
    kafka_admin.create_acls(admin, [
        acl for d in spec.departments
        for acl in acls.producer_acls(d.id, audit) + acls.consumer_acls(d.id, audit)
    ])  # fmt: skip
    w = World(sfx, admin, kafka_settings, store, spec, topics, tmp, verifier_password)
    w.start_worker()
    yield w
    for proc in w.workers:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    left = read_actual(admin, scope=scope)
    kafka_admin.delete_acls(admin, left.acls)
    for user in left.users:
        kafka_admin.delete_scram_user(admin, user)
    for topic in left.topics:
        kafka_admin.delete_topic(admin, topic)


def citizen(n: int) -> str:
    return f"32040219900101{n:04d}"


def test_filed_doubt_lifecycle_flags_the_record_under_verification(world: World) -> None:
    key = citizen(1)
    world.publish_record(key, "张三")
    consumer, provider = world.client("scj"), world.client("gaj")
    dispute_id = consumer.file(world.resource.code, key, "姓名与户籍登记不符", item="citizen_name")

    opened = eventually(lambda: world.state(dispute_id, 1), "the filed dispute")
    assert (opened["state"], opened["origin"], opened["filed_by"]) == (
        "open",
        "filed",
        world.id("scj"),
    )
    assert opened["provider"] == world.resource.provider and not opened["overdue"]
    eventually(lambda: world.status(key), "the record flagged under verification")
    assert world.subscribe("mzj", key).under_verification is True

    provider.ack(dispute_id)
    eventually(lambda: world.state(dispute_id, 2), "the acknowledgement")
    partition, offset = world.publish_record(key, "张叁")
    corrected = {"topic": world.data_topic, "partition": partition, "offset": offset,
                 "trace_id": f"trace-{key}"}  # fmt: skip
    provider.resolve(dispute_id, "corrected", "户籍登记有误，已更正", corrected_record=corrected)
    resolved = eventually(lambda: world.state(dispute_id, 3), "the resolution")

    assert resolved["state"] == "resolved" and resolved["outcome"] == "corrected"
    assert resolved["corrected_record"] == corrected
    assert [(h["action"], h["actor"]) for h in resolved["history"]] == [
        ("file", world.id("scj")), ("ack", world.id("gaj")), ("resolve", world.id("gaj")),
    ]  # fmt: skip
    eventually(lambda: world.status(key) is False, "the flag cleared after resolution")
    assert world.subscribe("mzj", key).under_verification is False
    # The steward's view folds the same history to the newest version.
    assert world.client("dsj").get(dispute_id)["version"] == 3


def test_action_from_the_wrong_department_is_rejected_and_kept(world: World) -> None:
    key = citizen(2)
    dispute_id = world.client("scj").file(world.resource.code, key, "地址存疑")
    opened = eventually(lambda: world.state(dispute_id, 1), "the filed dispute")
    ack = {"action": "ack", "dispute_id": dispute_id, "resource_code": world.resource.code,
           "key": key, "item": None, "actor": world.id("mzj"),
           "at": dt.datetime.now(CST).isoformat()}  # fmt: skip
    world.act("mzj", ack)  # mzj is not the provider
    world.act("scj", {**ack, "actor": world.id("gaj")})  # scj's topic, claiming to be gaj

    def letter(label: str) -> dict[str, Any] | None:
        found = [v for _, v in world.read(world.naming.dlq_topic(world.id(label)))
                 if v.get("record", {}).get("dispute_id") == dispute_id]  # fmt: skip
        return found[-1] if found else None

    by_mzj = eventually(lambda: letter("mzj"), "mzj's rejected ack in its dead letters")
    assert by_mzj["errors"][0]["rule"] == "provider-only"
    assert by_mzj["errors"][0]["item"] == "actor"
    by_scj = eventually(lambda: letter("scj"), "scj's impersonating ack in its dead letters")
    assert by_scj["errors"][0]["rule"] == "actor-is-sender"
    assert world.versions(dispute_id) == [opened]  # nothing changed
    # The SDK refuses before sending: mzj may not even read the resource's disputes.
    with pytest.raises(DisputeError, match="may read"):
        world.client("mzj").ack(dispute_id)
    # The provider may not resolve before acknowledging: refused with the rule named.
    with pytest.raises(DisputeError, match="resolve-when-acknowledged"):
        world.client("gaj").resolve(dispute_id, "rejected", "登记无误")


def test_detect_by_hand_opens_once_and_settle_closes(world: World) -> None:
    key, holder, provider = citizen(3), world.spec.departments[1].code, world.resource.provider
    dispute_id = detected_dispute_id(
        world.resource.code, key, "citizen_name", holder, "李四", "李 四"
    )
    detect = {
        "action": "detect", "dispute_id": dispute_id, "resource_code": world.resource.code,
        "key": key, "item": "citizen_name", "actor": world.topics.verifier,
        "at": dt.datetime.now(CST).isoformat(),
        "authoritative": {"provider": provider, "value": "李 四", "event_time": None},
        "observed": {"holder": holder, "value": "李四", "event_time": None}, "rule": "exact",
    }  # fmt: skip
    world.verifier_act(detect)
    world.verifier_act(detect)  # at-least-once: the same action again
    world.verifier_act({**detect, "at": dt.datetime.now(CST).isoformat()})  # a replay
    opened = eventually(lambda: world.state(dispute_id, 1), "the detected dispute")
    assert (opened["origin"], opened["holder"], opened["rule"]) == ("detected", holder, "exact")
    eventually(lambda: world.status(key), "the record flagged under verification")

    settle = {**detect, "action": "settle", "reason": "provider updated: values agree",
              "at": dt.datetime.now(CST).isoformat()}  # fmt: skip
    world.verifier_act(settle)
    settled = eventually(lambda: world.state(dispute_id, 2), "the settlement")
    assert settled["state"] == "settled"
    eventually(lambda: world.status(key) is False, "the flag cleared after settling")
    assert [v["version"] for v in world.versions(dispute_id)] == [1, 2]

    # A steward watching sees each version once, though it is on the topic only once anyway
    # and the watch dedups by id and version.
    seen: list[int] = []
    for state in world.client("dsj").watch(from_beginning=True, stop=lambda: 2 in seen):
        if state["dispute_id"] == dispute_id:
            seen.append(state["version"])
    assert seen == [1, 2]


def test_subscriber_says_when_the_status_topic_is_not_readable(world: World) -> None:
    user = world.id("mzj")
    sub = Subscriber(
        DepartmentSession(
            world.settings, user, world.secrets(user), world.spec, naming=world.naming
        ),
        world.resource.code,
        "work-reference",
        verification_status=True,
    )
    sub.status_topic = world.topics.disputes(world.resource.code)  # mzj may not read this one
    with pytest.raises(SubscribeError, match="cannot read the verification status"):
        sub.run(lambda _r: None, timeout=5)


def test_worker_killed_recovers_and_marks_overdue_once(world: World) -> None:
    key = citizen(4)
    dispute_id = world.client("scj").file(world.resource.code, key, "出生日期存疑")
    eventually(lambda: world.state(dispute_id, 1), "the filed dispute")
    running = world.workers[-1]
    running.send_signal(signal.SIGKILL)
    running.wait()

    world.start_worker(clock_days=30)  # its clock a month ahead: past every 5-workday deadline
    overdue = eventually(lambda: world.state(dispute_id, 2), "the overdue mark after restart")
    assert overdue["overdue"] is True and overdue["state"] == "open"
    world.client("gaj").ack(dispute_id)  # the table was recovered: the dispute is known
    acked = eventually(lambda: world.state(dispute_id, 3), "the ack after restart")
    assert acked["state"] == "acknowledged" and acked["overdue"] is True

    violations = [v for k, v in world.read(world.topics.violations)
                  if k == f"inconsistent-data:{dispute_id}"]  # fmt: skip
    assert len(violations) == 1
    assert violations[0]["article"] == "26(4)"
    assert violations[0]["department"] == world.resource.provider
    assert [v["version"] for v in world.versions(dispute_id)] == [1, 2, 3]
