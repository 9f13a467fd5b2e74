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

The last ``govbus evaluate`` is served too (``EvaluationCollector``, from the summary it writes
to ``<state_dir>/supervision/evaluation.json``): ``govbus_evaluation_score{department,year}``
and ``govbus_evaluation_indicator{department,indicator,year}`` (a score in [0, 1]; indicators
not applicable to a department are absent).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from govbus.catalog.model import OutboxRow
from govbus.catalog.store import CatalogStore
from govbus.supervise.evaluation import DepartmentScore
from govbus.supervise.ledger import Ledger
from govbus.supervise.rules import KINDS
from govbus.vocabulary.clock import china_day, utc
from govbus.vocabulary.metrics import REGISTRY

__all__ = [
    "EvaluationCollector",
    "SupervisionCollector",
    "evaluation_summary_path",
    "read_evaluation_summary",
    "register_supervision_collector",
    "write_evaluation_summary",
]


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


def evaluation_summary_path(state_dir: Path) -> Path:
    return state_dir / "supervision" / "evaluation.json"


def write_evaluation_summary(state_dir: Path, year: int, scores: Sequence[DepartmentScore]) -> Path:
    """Record the evaluation's scores for the exporter (replacing the previous one)."""
    path = evaluation_summary_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "year": year,
        "departments": [
            {
                "department": s.year.department_id,
                "score": s.score,
                "indicators": {x.key: x.score for x in s.indicators if x.score is not None},
            }
            for s in scores
        ],
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(path)
    return path


def read_evaluation_summary(state_dir: Path) -> dict[str, Any] | None:
    """The last ``govbus evaluate``'s summary (``{"year", "departments": [...]}``), or None
    before the first (or if the file is unreadable)."""
    try:
        body: dict[str, Any] = json.loads(
            evaluation_summary_path(state_dir).read_text(encoding="utf-8")
        )
    except (FileNotFoundError, ValueError):
        return None
    return body


class EvaluationCollector(Collector):
    """The last ``govbus evaluate``'s scores, read at each scrape (none before the first)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = evaluation_summary_path(state_dir)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "govbus_evaluation_score",
                "A department's score (0-100) in the last yearly evaluation (docs/evaluation.md)",
                labels=["department", "year"],
            ),
            GaugeMetricFamily(
                "govbus_evaluation_indicator",
                "A department's score (0-1) on one indicator of the last yearly evaluation",
                labels=["department", "indicator", "year"],
            ),
        )

    def describe(self) -> list[GaugeMetricFamily]:
        return list(self._families())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        body = read_evaluation_summary(self.state_dir)
        if body is None:
            return
        score, indicator = self._families()
        year = str(body["year"])
        for d in body["departments"]:
            score.add_metric([d["department"], year], d["score"])
            for key, value in sorted(d["indicators"].items()):
                indicator.add_metric([d["department"], key, year], value)
        yield score
        yield indicator
