"""Share-request metrics, derived from the database at each scrape (correct in any process).

A custom collector reads the state instead of counting in the process that made the change:
requests are answered by CLI invocations that exit at once, so in-process counters would be
lost, and several processes would each count a part.

- ``govbus_share_requests_open{provider}``: requests waiting for the provider's answer;
- ``govbus_share_requests_overdue{provider}``: of those, the ones past their 10th working day;
- ``govbus_share_grants_active{provider}``: grants neither revoked nor expired;
- ``govbus_share_answer_workdays{provider}``: a histogram of answer times in working days.
  It is a real (cumulative) histogram, not a GaugeHistogram: an answered request stays
  answered, so bucket counts only grow and ``histogram_quantile``/``increase`` work as usual.

Provider labels are department ids (the code when a department left the catalog). Register
with ``register_share_collector(store)``; nothing is registered at import.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator

import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from govbus.catalog.store import CatalogStore
from govbus.share.model import ShareGrantRow, ShareRequestRow
from govbus.share.requests import ShareRequests
from govbus.vocabulary.clock import china_day, utc
from govbus.vocabulary.metrics import REGISTRY

__all__ = ["ANSWER_BUCKETS", "ShareCollector", "register_share_collector"]

# Working days; the statutory limit (10) is a bucket edge, so "answered in time" is one bucket.
# Shown as Prometheus shows float edges ("10.0"), so ``le`` matches what a Histogram writes.
ANSWER_BUCKETS: tuple[float, ...] = (1, 2, 3, 5, 7, 10, 15, 20, 30)


class ShareCollector(Collector):
    def __init__(
        self,
        store: CatalogStore,
        requests: ShareRequests | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        """``clock``: what "now" is at a scrape (tests fix it)."""
        self.store = store
        self.requests = requests or ShareRequests(store)
        self.clock = clock

    def describe(self) -> list[GaugeMetricFamily | HistogramMetricFamily]:
        # Described without a query, so registering does not touch the database.
        return list(self._families())

    def collect(self) -> Iterator[GaugeMetricFamily | HistogramMetricFamily]:
        open_, overdue, active, answers = self._families()
        now = utc(self.clock())
        today = china_day(now)
        names = {d.code: d.id for d in self.store.current().departments}

        def label(code: str) -> str:
            return names.get(code, code)

        open_count: Counter[str] = Counter()
        overdue_count: Counter[str] = Counter()
        for view in self.requests.list_requests(state="pending", now=now):
            open_count[label(view.provider)] += 1
            overdue_count[label(view.provider)] += view.overdue_on(today)
        for provider, n in sorted(open_count.items()):
            open_.add_metric([provider], n)
            overdue.add_metric([provider], overdue_count[provider])

        with self.store.connect() as conn:
            grants = conn.execute(
                sa.select(ShareRequestRow.provider, sa.func.count())
                .join(ShareGrantRow, ShareGrantRow.request == ShareRequestRow.id)
                .where(ShareGrantRow.revoked_at.is_(None), ShareGrantRow.expires_at > utc(now))
                .group_by(ShareRequestRow.provider)
            ).all()
            answered = conn.execute(
                sa.select(ShareRequestRow.provider, ShareRequestRow.answer_workdays).where(
                    ShareRequestRow.answer_workdays.is_not(None)
                )
            ).all()
        for provider, n in sorted((label(p), n) for p, n in grants):
            active.add_metric([provider], n)

        per_provider: dict[str, list[int]] = {}
        for provider, days in answered:
            per_provider.setdefault(label(provider), []).append(int(days or 0))
        for provider, days_list in sorted(per_provider.items()):
            buckets = [
                (str(float(edge)), sum(1 for d in days_list if d <= edge))
                for edge in ANSWER_BUCKETS
            ]
            buckets.append(("+Inf", len(days_list)))
            answers.add_metric([provider], buckets, sum_value=sum(days_list))
        yield from (open_, overdue, active, answers)

    @staticmethod
    def _families() -> tuple[
        GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily, HistogramMetricFamily
    ]:
        return (
            GaugeMetricFamily(
                "govbus_share_requests_open",
                "Share requests waiting for the provider's answer",
                labels=["provider"],
            ),
            GaugeMetricFamily(
                "govbus_share_requests_overdue",
                "Share requests unanswered past their 10th working day (article 17)",
                labels=["provider"],
            ),
            GaugeMetricFamily(
                "govbus_share_grants_active",
                "Approved share requests neither revoked nor expired",
                labels=["provider"],
            ),
            HistogramMetricFamily(
                "govbus_share_answer_workdays",
                "Working days from a share request to the provider's answer",
                labels=["provider"],
            ),
        )


def register_share_collector(
    store: CatalogStore,
    registry: CollectorRegistry = REGISTRY,
    requests: ShareRequests | None = None,
) -> ShareCollector:
    """Add the share metrics to ``registry`` (the process-wide one by default)."""
    collector = ShareCollector(store, requests)
    registry.register(collector)
    return collector
