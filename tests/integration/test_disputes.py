"""The dispute app against the real broker: a worker process, real users and ACLs.

The module's exchange (the shared ``Exchange``: departments and topics in a namespace of its
own) is reconciled with the app's needs, as ``govbus reconcile`` would; the app then runs as
its own SCRAM user in a worker process (tests/integration/disputes_worker.py). Departments act
through the SDK or by producing actions by hand; outcomes are read back from the topics the
app writes. The last test kills the worker (SIGKILL) and restarts it with its clock a month
ahead.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from govbus.catalog.yaml_io import dump_yaml
from govbus.subscribe.consumer import Record, SubscribeError, Subscriber
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.config import Settings
from govbus.vocabulary.processes import stop_process
from govbus.vocabulary.spec import CatalogSpec, Holder, InfoItem
from govbus.vocabulary.wire import encode_single_object
from stream_apps.disputes import app as disputes_app
from stream_apps.disputes.client import DisputeClient, DisputeError
from stream_apps.disputes.rules import detected_dispute_id
from stream_apps.disputes.topics import DisputeTopics
from stream_apps.registry import AppContext
from tests.conftest import REPO
from tests.factories import person_resource
from tests.integration.fixtures import Exchange, create_audit_topic, eventually

pytestmark = pytest.mark.kafka

CST = dt.timezone(dt.timedelta(hours=8))
PARTITIONS = 2


@dataclass(kw_only=True)
class DisputesExchange(Exchange):
    """The shared ``Exchange`` plus what is this module's own: the app's worker processes, and
    acting on and reading the dispute topics."""

    tmp: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def topics(self) -> DisputeTopics:
        return DisputeTopics(self.naming)

    @property
    def data_topic(self) -> str:
        return self.naming.resource_topic(self.resource.code)

    def client(self, label: str) -> DisputeClient:
        return DisputeClient(self.session(self.id(label)), operator=self.id("dsj"))

    def start_worker(self, clock_days: int = 0) -> subprocess.Popen[bytes]:
        """The app in a worker process (tests/integration/disputes_worker.py), its clock
        ``clock_days`` ahead."""
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

    def produce(self, user: str, topic: str, key: str, value: bytes) -> None:
        producer = self.producer(user)
        errors: list[KafkaError] = []
        producer.produce(topic, key=key.encode(), value=value,
                         on_delivery=lambda e, _m: e and errors.append(e))  # fmt: skip
        assert producer.flush(30) == 0 and not errors, errors

    def act(self, label: str, action: dict[str, Any]) -> None:
        """A department's action written by hand onto its own action topic."""
        user = self.id(label)
        self.produce(user, self.topics.actions(user), action["dispute_id"],
                     json.dumps(action).encode())  # fmt: skip

    def verifier_act(self, action: dict[str, Any]) -> None:
        verifier = self.topics.verifier
        self.produce(verifier, self.topics.actions(verifier), action["dispute_id"],
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
        producer = self.producer(user)
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
            self.session(user),
            self.resource.code,
            "work-reference",
            group_suffix=uuid.uuid4().hex[:6],
            verification_status=True,
        )
        got: list[Record] = []
        sub.run(got.append, timeout=5)
        return [r for r in got if r.key == key][-1]


def catalog(ns: Exchange) -> CatalogSpec:
    """公安局 provides; 市场监管局 holds a copy of the name; 民政局 reads; 大数据局 operates."""
    gaj, scj, mzj, dsj = (
        ns.department(label, n) for n, label in enumerate(("gaj", "scj", "mzj", "dsj"))
    )
    res = person_resource(
        (
            InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),
            InfoItem("姓名", "citizen_name", "C", 50, compare="text"),
        ),
        provider=gaj.code,
        code=f"10101/{gaj.code}-000001",
        abstract="test",
        category=("人口",),
        publish_date=dt.date(2026, 1, 1),
        holders=(Holder(scj.code, ("citizen_name",)),),
    )
    return CatalogSpec((gaj, scj, mzj, dsj), (res,))


@pytest.fixture(scope="module")
def disputes(
    admin: AdminClient, kafka_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DisputesExchange]:
    """The module's exchange, reconciled with the app's needs as ``govbus reconcile`` would,
    plus the verification app's user and the subscribers' audit trail; one worker running."""
    tmp = tmp_path_factory.mktemp("disputes")
    with DisputesExchange(
        admin=admin, settings=kafka_settings, state_dir=tmp / "state", tmp=tmp
    ) as ex:
        ex.spec = catalog(ex)
        context = AppContext(ex.naming, partitions=PARTITIONS, operator=ex.id("dsj"))
        needs = disputes_app.needs(ex.spec, context)
        ex.reconcile(ex.desired(partitions=PARTITIONS, stream_apps=[needs]))
        # The verification app's user (its own issue creates it) and the subscribers' audit trail.
        ex.add_user(ex.topics.verifier)
        create_audit_topic(admin, ex.naming.audit_topic, (d.id for d in ex.spec.departments))
        ex.start_worker()
        try:
            yield ex
        finally:
            for proc in ex.workers:
                stop_process(proc, signal.SIGTERM)


def citizen(n: int) -> str:
    return f"32040219900101{n:04d}"


def test_filed_doubt_lifecycle_flags_the_record_under_verification(
    disputes: DisputesExchange,
) -> None:
    key = citizen(1)
    disputes.publish_record(key, "张三")
    consumer, provider = disputes.client("scj"), disputes.client("gaj")
    dispute_id = consumer.file(
        disputes.resource.code, key, "姓名与户籍登记不符", item="citizen_name"
    )

    opened = eventually(lambda: disputes.state(dispute_id, 1), "the filed dispute")
    assert (opened["state"], opened["origin"], opened["filed_by"]) == (
        "open",
        "filed",
        disputes.id("scj"),
    )
    assert opened["provider"] == disputes.resource.provider and not opened["overdue"]
    eventually(lambda: disputes.status(key), "the record flagged under verification")
    assert disputes.subscribe("mzj", key).under_verification is True

    provider.ack(dispute_id)
    eventually(lambda: disputes.state(dispute_id, 2), "the acknowledgement")
    partition, offset = disputes.publish_record(key, "张叁")
    corrected = {"topic": disputes.data_topic, "partition": partition, "offset": offset,
                 "trace_id": f"trace-{key}"}  # fmt: skip
    provider.resolve(dispute_id, "corrected", "户籍登记有误，已更正", corrected_record=corrected)
    resolved = eventually(lambda: disputes.state(dispute_id, 3), "the resolution")

    assert resolved["state"] == "resolved" and resolved["outcome"] == "corrected"
    assert resolved["corrected_record"] == corrected
    assert [(h["action"], h["actor"]) for h in resolved["history"]] == [
        ("file", disputes.id("scj")), ("ack", disputes.id("gaj")), ("resolve", disputes.id("gaj")),
    ]  # fmt: skip
    eventually(lambda: disputes.status(key) is False, "the flag cleared after resolution")
    assert disputes.subscribe("mzj", key).under_verification is False
    # The steward's view folds the same history to the newest version.
    assert disputes.client("dsj").get(dispute_id)["version"] == 3


def test_action_from_the_wrong_department_is_rejected_and_kept(disputes: DisputesExchange) -> None:
    key = citizen(2)
    dispute_id = disputes.client("scj").file(disputes.resource.code, key, "地址存疑")
    opened = eventually(lambda: disputes.state(dispute_id, 1), "the filed dispute")
    ack = {"action": "ack", "dispute_id": dispute_id, "resource_code": disputes.resource.code,
           "key": key, "item": None, "actor": disputes.id("mzj"),
           "at": dt.datetime.now(CST).isoformat()}  # fmt: skip
    disputes.act("mzj", ack)  # mzj is not the provider
    disputes.act("scj", {**ack, "actor": disputes.id("gaj")})  # scj's topic, claiming to be gaj

    def letter(label: str) -> dict[str, Any] | None:
        found = [v for _, v in disputes.read(disputes.naming.dlq_topic(disputes.id(label)))
                 if v.get("record", {}).get("dispute_id") == dispute_id]  # fmt: skip
        return found[-1] if found else None

    by_mzj = eventually(lambda: letter("mzj"), "mzj's rejected ack in its dead letters")
    assert by_mzj["errors"][0]["rule"] == "provider-only"
    assert by_mzj["errors"][0]["item"] == "actor"
    by_scj = eventually(lambda: letter("scj"), "scj's impersonating ack in its dead letters")
    assert by_scj["errors"][0]["rule"] == "actor-is-sender"
    assert disputes.versions(dispute_id) == [opened]  # nothing changed
    # The SDK refuses before sending: mzj may not even read the resource's disputes.
    with pytest.raises(DisputeError, match="may read"):
        disputes.client("mzj").ack(dispute_id)
    # The provider may not resolve before acknowledging: refused with the rule named.
    with pytest.raises(DisputeError, match="resolve-when-acknowledged"):
        disputes.client("gaj").resolve(dispute_id, "rejected", "登记无误")


def test_detect_by_hand_opens_once_and_settle_closes(disputes: DisputesExchange) -> None:
    key, holder, provider = (
        citizen(3),
        disputes.spec.departments[1].code,
        disputes.resource.provider,
    )
    dispute_id = detected_dispute_id(
        disputes.resource.code, key, "citizen_name", holder, "李四", "李 四"
    )
    detect = {
        "action": "detect", "dispute_id": dispute_id, "resource_code": disputes.resource.code,
        "key": key, "item": "citizen_name", "actor": disputes.topics.verifier,
        "at": dt.datetime.now(CST).isoformat(),
        "authoritative": {"provider": provider, "value": "李 四", "event_time": None},
        "observed": {"holder": holder, "value": "李四", "event_time": None}, "rule": "exact",
    }  # fmt: skip
    disputes.verifier_act(detect)
    disputes.verifier_act(detect)  # at-least-once: the same action again
    disputes.verifier_act({**detect, "at": dt.datetime.now(CST).isoformat()})  # a replay
    opened = eventually(lambda: disputes.state(dispute_id, 1), "the detected dispute")
    assert (opened["origin"], opened["holder"], opened["rule"]) == ("detected", holder, "exact")
    eventually(lambda: disputes.status(key), "the record flagged under verification")

    settle = {**detect, "action": "settle", "reason": "provider updated: values agree",
              "at": dt.datetime.now(CST).isoformat()}  # fmt: skip
    disputes.verifier_act(settle)
    settled = eventually(lambda: disputes.state(dispute_id, 2), "the settlement")
    assert settled["state"] == "settled"
    eventually(lambda: disputes.status(key) is False, "the flag cleared after settling")
    assert [v["version"] for v in disputes.versions(dispute_id)] == [1, 2]

    # A steward watching sees each version once, though it is on the topic only once anyway
    # and the watch dedups by id and version.
    seen: list[int] = []
    for state in disputes.client("dsj").watch(from_beginning=True, stop=lambda: 2 in seen):
        if state["dispute_id"] == dispute_id:
            seen.append(state["version"])
    assert seen == [1, 2]


def test_subscriber_says_when_the_status_topic_is_not_readable(disputes: DisputesExchange) -> None:
    user = disputes.id("mzj")
    sub = Subscriber(
        disputes.session(user),
        disputes.resource.code,
        "work-reference",
        verification_status=True,
    )
    sub.status_topic = disputes.topics.disputes(disputes.resource.code)  # mzj may not read this one
    with pytest.raises(SubscribeError, match="cannot read the verification status"):
        sub.run(lambda _r: None, timeout=5)


def test_worker_killed_recovers_and_marks_overdue_once(disputes: DisputesExchange) -> None:
    key = citizen(4)
    dispute_id = disputes.client("scj").file(disputes.resource.code, key, "出生日期存疑")
    eventually(lambda: disputes.state(dispute_id, 1), "the filed dispute")
    running = disputes.workers[-1]
    running.send_signal(signal.SIGKILL)
    running.wait()

    disputes.start_worker(clock_days=30)  # its clock a month ahead: past every 5-workday deadline
    overdue = eventually(lambda: disputes.state(dispute_id, 2), "the overdue mark after restart")
    assert overdue["overdue"] is True and overdue["state"] == "open"
    disputes.client("gaj").ack(dispute_id)  # the table was recovered: the dispute is known
    acked = eventually(lambda: disputes.state(dispute_id, 3), "the ack after restart")
    assert acked["state"] == "acknowledged" and acked["overdue"] is True

    violations = [v for k, v in disputes.read(disputes.topics.violations)
                  if k == f"inconsistent-data:{dispute_id}"]  # fmt: skip
    assert len(violations) == 1
    assert violations[0]["article"] == "26(4)"
    assert violations[0]["department"] == disputes.resource.provider
    assert [v["version"] for v in disputes.versions(dispute_id)] == [1, 2, 3]
