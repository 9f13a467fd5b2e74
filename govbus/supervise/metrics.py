"""Supervision metrics, derived from the ledger at each scrape (as ``govbus.share.metrics``).

- ``govbus_violations_open{kind,article,department}``: violations not closed (open, notified,
  responded or escalated) — one alert per kind fires on it;
- ``govbus_violations_recorded{kind,article}``: every violation in the ledger, closed or not;
- ``govbus_rectification_overdue{department}``: notices past their deadline without a response
  (escalation is due);
- ``govbus_violations_escalated{department}``: escalated and not closed (in the city report);
- ``govbus_outbox_pending{topic}``: outbox rows (catalog, share requests, ledger) not yet
  relayed to Kafka.

Department labels are department ids (the code when a department left the catalog). Register
with ``register_supervision_collector(store)``; nothing is registered at import.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator

import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from govbus.catalog.model import OutboxRow
from govbus.catalog.store import CatalogStore
from govbus.supervise.ledger import Ledger
from govbus.supervise.rules import KINDS
from govbus.vocabulary.clock import china_day, utc
from govbus.vocabulary.metrics import REGISTRY

__all__ = ["SupervisionCollector", "register_supervision_collector"]


class SupervisionCollector(Collector):
    def __init__(
        self,
        store: CatalogStore,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.store = store
        self.ledger = Ledger(store)
        self.clock = clock

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily(
                "govbus_violations_open",
                "Article 26 violations not closed, by kind and department",
                labels=["kind", "article", "department"],
            ),
            GaugeMetricFamily(
                "govbus_violations_recorded",
                "Article 26 violations in the ledger, closed or not, by kind",
                labels=["kind", "article"],
            ),
            GaugeMetricFamily(
                "govbus_rectification_overdue",
                "Rectification notices past their deadline without a response",
                labels=["department"],
            ),
            GaugeMetricFamily(
                "govbus_violations_escalated",
                "Violations escalated to the city government and not closed",
                labels=["department"],
            ),
            GaugeMetricFamily(
                "govbus_outbox_pending",
                "Outbox rows not yet relayed to Kafka, by topic",
                labels=["topic"],
            ),
        )

    def describe(self) -> list[GaugeMetricFamily]:
        return list(self._families())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        open_, recorded, overdue, escalated, pending = self._families()
        today = china_day(utc(self.clock()))
        names = {d.code: d.id for d in self.store.current().departments}
        articles = {k.name: k.article for k in KINDS}
        open_count: Counter[tuple[str, str]] = Counter()
        all_count: Counter[str] = Counter()
        overdue_count: Counter[str] = Counter()
        escalated_count: Counter[str] = Counter()
        for v in self.ledger.violations():
            dept = names.get(v.department, v.department)
            all_count[v.kind] += 1
            if v.state != "closed":
                open_count[v.kind, dept] += 1
            overdue_count[dept] += v.overdue_on(today)
            escalated_count[dept] += v.state == "escalated"
        for (kind, dept), n in sorted(open_count.items()):
            open_.add_metric([kind, articles[kind], dept], n)
        for k in KINDS:  # every kind, so "no violation" is a 0, not an absent series
            recorded.add_metric([k.name, k.article], all_count[k.name])
        for dept, n in sorted(overdue_count.items()):
            overdue.add_metric([dept], n)
        for dept, n in sorted(escalated_count.items()):
            escalated.add_metric([dept], n)
        with self.store.connect() as conn:
            rows = conn.execute(
                sa.select(OutboxRow.topic, sa.func.count())
                .where(OutboxRow.published_at.is_(None))
                .group_by(OutboxRow.topic)
            ).all()
        counts = {str(t): int(n) for t, n in rows}
        naming = self.store.naming
        for topic in sorted(
            {naming.catalog_topic, naming.share_topic, naming.supervision_topic} | set(counts)
        ):
            pending.add_metric([topic], counts.get(topic, 0))
        yield from (open_, recorded, overdue, escalated, pending)


def register_supervision_collector(
    store: CatalogStore, registry: CollectorRegistry = REGISTRY
) -> SupervisionCollector:
    collector = SupervisionCollector(store)
    registry.register(collector)
    return collector
