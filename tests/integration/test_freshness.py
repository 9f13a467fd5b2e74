"""govbus-freshness on the real broker: a breach with an injected clock, once per episode.

The app runs in-process (its clock is the test's), as its own SCRAM user with only the ACLs
its needs() derive; the operator department reads the freshness and violation topics.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.metrics import REGISTRY
from govbus.vocabulary.spec import CatalogSpec, InfoItem
from producers.publisher import Publisher
from stream_apps.freshness import app as freshness
from stream_apps.registry import AppContext
from tests.factories import person_resource
from tests.integration.faust_inprocess import InProcessWorker
from tests.integration.fixtures import Exchange, citizen_id, eventually

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


@pytest.fixture
def exchange(exchange: Exchange) -> Exchange:
    """The shared fixture: 人社局 provides a daily resource, 大数据局 operates; the catalog
    and the app's needs are reconciled."""
    provider, operator = exchange.department("rsj", 1), exchange.department("dsjj", 2)
    resource = person_resource(
        (InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),),
        code=f"10101/{provider.code}-000001",
        provider=provider.code,
        abstract="test",
        category=("人口",),
    )
    exchange.spec = CatalogSpec((provider, operator), (resource,))
    exchange.reconcile(
        exchange.desired(stream_apps=[freshness.needs(exchange.spec, context(exchange))])
    )
    return exchange


def context(ex: Exchange) -> AppContext:
    return AppContext(ex.naming, partitions=1, operator=ex.id("dsjj"))


def worker(ex: Exchange, clock: SettableClock) -> InProcessWorker:
    app_id = freshness.needs(ex.spec, context(ex)).app_id
    return InProcessWorker(
        lambda: freshness.build(
            ex.settings, ex.spec, ex.secrets(app_id), context(ex), interval=0.2, clock=clock
        )
    )


def publish(ex: Exchange, n: int) -> None:
    with Publisher(ex.session(ex.id("rsj"), catalog_version=1)) as publisher:
        report = publisher.publish(ex.resource.code, [{"citizen_id": citizen_id(n)}])
        assert report.delivered == 1, report


def read(ex: Exchange, kind: str) -> list[tuple[str, dict[str, Any]]]:
    """Every (key, event) on the freshness or violations topic, read as the operator."""
    topic = {"freshness": ex.naming.freshness_topic, "violations": ex.naming.violations_topic}
    consumer = ex.consumer(ex.id("dsjj"), **{"enable.partition.eof": True})
    out: list[tuple[str, dict[str, Any]]] = []
    try:
        consumer.subscribe([topic[kind]])
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


def _until(check: Callable[[], bool], what: str) -> None:
    eventually(check, what, timeout=90, interval=0.2)


def _ticks(clock: SettableClock, n: int) -> None:
    """Wait until the app ran about ``n`` more checks (each reads the clock once)."""
    target = clock.calls + n
    _until(lambda: clock.calls >= target, f"{n} more freshness checks")


def _breaches(ex: Exchange) -> float:
    labels = {"resource": ex.resource.code, "department": ex.id("rsj")}
    return REGISTRY.get_sample_value("govbus_freshness_breaches_total", labels) or 0.0


def test_breach_once_per_episode_survives_restart_and_a_publish_ends_it(exchange: Exchange) -> None:
    publish(exchange, 1)
    clock = SettableClock()
    before = _breaches(exchange)
    with worker(exchange, clock):
        _ticks(clock, 3)  # on time: the daily allowance has not passed
        assert read(exchange, "freshness") == []
        clock.set_ahead(dt.timedelta(days=30))
        _until(lambda: len(read(exchange, "freshness")) >= 1, "a freshness breach event")
        _ticks(clock, 5)  # later checks in the same episode stay silent

    events = read(exchange, "freshness")
    assert len(events) == 1
    key, breach = events[0]
    assert key == exchange.resource.code
    assert breach["breached"] is True
    assert breach["provider"] == exchange.dept("rsj").code
    assert breach["update_cycle"] == "daily"
    assert breach["last_publish"] is not None
    assert dt.datetime.fromisoformat(breach["deadline"]) > dt.datetime.fromisoformat(
        breach["last_publish"]
    )
    assert dt.datetime.fromisoformat(breach["detected_at"]) >= dt.datetime.fromisoformat(
        breach["deadline"]
    )
    violations = read(exchange, "violations")
    assert len(violations) == 1
    vkey, violation = violations[0]
    assert violation["kind"] == "late-provision"
    assert violation["article"] == "26(2)"
    assert violation["department"] == exchange.dept("rsj").code
    assert violation["resource_code"] == exchange.resource.code
    assert vkey == f"late-provision:{violation['subject']}"
    assert exchange.resource.code in violation["subject"]
    assert _breaches(exchange) - before == 1

    # A restarted worker recovers the episode from its changelog: no second breach.
    clock2 = SettableClock()
    clock2.set_ahead(dt.timedelta(days=30))
    with worker(exchange, clock2):
        _ticks(clock2, 5)
        assert len(read(exchange, "freshness")) == 1
        assert len(read(exchange, "violations")) == 1
        # The provider publishes: the episode ends at once, with the next deadline.
        clock2.set_ahead(dt.timedelta())
        publish(exchange, 2)
        _until(lambda: len(read(exchange, "freshness")) >= 2, "the end of the breach episode")
        _ticks(clock2, 3)

    events = read(exchange, "freshness")
    assert [e["breached"] for _, e in events] == [True, False]
    ended = events[1][1]
    assert dt.datetime.fromisoformat(ended["last_publish"]) > dt.datetime.fromisoformat(
        breach["last_publish"]
    )
    assert dt.datetime.fromisoformat(ended["deadline"]) > dt.datetime.fromisoformat(
        ended["detected_at"]
    )
    assert len(read(exchange, "violations")) == 1
    assert _breaches(exchange) - before == 1
