"""govbus-freshness on the real broker: a breach with an injected clock, once per episode.

The app runs in-process (its clock is the test's), as its own SCRAM user with only the ACLs
its needs() derive; the operator department reads the freshness and violation topics.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from govbus.reconcile.desired import desired_state
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.config import Settings
from govbus.vocabulary.metrics import REGISTRY
from govbus.vocabulary.secrets import PasswordStore
from govbus.vocabulary.session import DepartmentSession
from govbus.vocabulary.spec import CatalogSpec, InfoItem, Resource, ResourceKey
from producers.publisher import Publisher
from stream_apps.freshness import app as freshness
from stream_apps.registry import AppContext
from tests.integration.app_namespace import Namespace, citizen_id, clean, reconcile
from tests.integration.faust_inprocess import InProcessWorker

pytestmark = pytest.mark.kafka


class SettableClock:
    """The app's clock: settable by the test, and counting the app's checks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = dt.timedelta()
        self.calls = 0

    def set_ahead(self, delta: dt.timedelta) -> None:
        with self._lock:
            self._offset = delta

    def __call__(self) -> dt.datetime:
        with self._lock:
            self.calls += 1
            return dt.datetime.now(CHINA_TZ) + self._offset


class World:
    def __init__(self, admin: AdminClient, settings: Settings, tmp_path: Path) -> None:
        self.ns = Namespace()
        self.settings = settings
        self.secrets = PasswordStore(tmp_path, self.ns.naming)
        self.provider = self.ns.department("rsj", 1)
        self.operator = self.ns.department("dsjj", 2)
        self.resource = Resource(
            code=f"10101/{self.provider.code}-000001",
            name="人口基本信息",
            provider=self.provider.code,
            abstract="test",
            format="database",
            category=("人口",),
            items=(InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),),
            key=ResourceKey(("citizen_id",), "natural-person"),
            share_type="unconditional",
            update_cycle="daily",
            publish_date=dt.date(2024, 1, 1),
        )
        self.spec = CatalogSpec((self.provider, self.operator), (self.resource,))
        self.context = AppContext(self.ns.naming, partitions=1, operator=self.operator.id)
        naming = self.ns.naming
        self.topics = {"freshness": naming.freshness_topic, "violations": naming.violations_topic}
        app = freshness.needs(self.spec, self.context)
        self.app_id = app.app_id
        desired = desired_state(
            self.spec, partitions=1, naming=naming, platform_apps=False, stream_apps=[app]
        )
        reconcile(admin, self.ns, desired, self.secrets)

    def worker(self, clock: SettableClock) -> InProcessWorker:
        return InProcessWorker(
            lambda: freshness.build(
                self.settings,
                self.spec,
                self.secrets(self.app_id),
                self.context,
                interval=0.2,
                clock=clock,
            )
        )

    def publish(self, n: int) -> None:
        with Publisher(
            DepartmentSession(
                self.settings,
                self.provider.id,
                self.secrets(self.provider.id),
                self.spec,
                catalog_version=1,
                naming=self.ns.naming,
            )
        ) as publisher:
            report = publisher.publish(self.resource.code, [{"citizen_id": citizen_id(n)}])
            assert report.delivered == 1, report

    def read(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        """Every (key, event) on the freshness or violations topic, read as the operator."""
        consumer = kafka_clients.consumer(
            self.settings,
            self.operator.id,
            self.secrets(self.operator.id),
            f"{self.operator.id}.{uuid.uuid4().hex[:6]}",
            **{"enable.partition.eof": True},
        )
        out: list[tuple[str, dict[str, Any]]] = []
        try:
            consumer.subscribe([self.topics[kind]])
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                err = msg.error()
                if err is not None and err.code() == KafkaError._PARTITION_EOF:
                    break  # one partition: everything written so far was read
                if err is not None:
                    raise KafkaException(err)
                out.append((msg.key().decode(), json.loads(msg.value())))
        finally:
            consumer.close()
        return out


@pytest.fixture
def world(admin: AdminClient, kafka_settings: Settings, tmp_path: Path) -> Iterator[World]:
    w = World(admin, kafka_settings, tmp_path)
    yield w
    clean(admin, w.ns)


def _until(check: Callable[[], bool], what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.2)


def _ticks(clock: SettableClock, n: int) -> None:
    """Wait until the app ran about ``n`` more checks (each reads the clock once)."""
    target = clock.calls + n
    _until(lambda: clock.calls >= target, f"{n} more freshness checks")


def _breaches(world: World) -> float:
    labels = {"resource": world.resource.code, "department": world.provider.id}
    return REGISTRY.get_sample_value("govbus_freshness_breaches_total", labels) or 0.0


def test_breach_once_per_episode_survives_restart_and_a_publish_ends_it(world: World) -> None:
    world.publish(1)
    clock = SettableClock()
    before = _breaches(world)
    with world.worker(clock):
        _ticks(clock, 3)  # on time: the daily allowance has not passed
        assert world.read("freshness") == []
        clock.set_ahead(dt.timedelta(days=30))
        _until(lambda: len(world.read("freshness")) >= 1, "a freshness breach event")
        _ticks(clock, 5)  # later checks in the same episode stay silent

    events = world.read("freshness")
    assert len(events) == 1
    key, breach = events[0]
    assert key == world.resource.code
    assert breach["breached"] is True
    assert breach["provider"] == world.provider.code
    assert breach["update_cycle"] == "daily"
    assert breach["last_publish"] is not None
    assert dt.datetime.fromisoformat(breach["deadline"]) > dt.datetime.fromisoformat(
        breach["last_publish"]
    )
    assert dt.datetime.fromisoformat(breach["detected_at"]) >= dt.datetime.fromisoformat(
        breach["deadline"]
    )
    violations = world.read("violations")
    assert len(violations) == 1
    vkey, violation = violations[0]
    assert violation["kind"] == "late-provision"
    assert violation["article"] == "26(2)"
    assert violation["department"] == world.provider.code
    assert violation["resource_code"] == world.resource.code
    assert vkey == f"late-provision:{violation['subject']}"
    assert world.resource.code in violation["subject"]
    assert _breaches(world) - before == 1

    # A restarted worker recovers the episode from its changelog: no second breach.
    clock2 = SettableClock()
    clock2.set_ahead(dt.timedelta(days=30))
    with world.worker(clock2):
        _ticks(clock2, 5)
        assert len(world.read("freshness")) == 1
        assert len(world.read("violations")) == 1
        # The provider publishes: the episode ends at once, with the next deadline.
        clock2.set_ahead(dt.timedelta())
        world.publish(2)
        _until(lambda: len(world.read("freshness")) >= 2, "the end of the breach episode")
        _ticks(clock2, 3)

    events = world.read("freshness")
    assert [e["breached"] for _, e in events] == [True, False]
    ended = events[1][1]
    assert dt.datetime.fromisoformat(ended["last_publish"]) > dt.datetime.fromisoformat(
        breach["last_publish"]
    )
    assert dt.datetime.fromisoformat(ended["deadline"]) > dt.datetime.fromisoformat(
        ended["detected_at"]
    )
    assert len(world.read("violations")) == 1
    assert _breaches(world) - before == 1
