"""Every series the operator dashboard queries is one govbus defines, with the labels it groups by.

A renamed metric or label would leave a panel silently empty; this catches it.
"""

from __future__ import annotations

import json
import re

from govbus.monitor.broker import BrokerCollector
from govbus.monitor.tls import TlsCollector
from govbus.supervise.metrics import EvaluationCollector, SupervisionCollector
from govbus.vocabulary import metrics
from tests.unit.test_compose import REPO, metric_names

DASHBOARDS = sorted((REPO / "monitoring" / "grafana" / "dashboards").glob("*.json"))
_BY = re.compile(r"\bby\s*\(([^)]*)\)")
_SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def defined() -> dict[str, set[str]]:
    """Metric name (without exposition suffixes) -> label names, from every module's metrics."""
    import stream_apps.disputes.metrics as disputes
    import stream_apps.freshness.app as freshness
    import stream_apps.projection.app as projection
    import stream_apps.verification.metrics as verification
    from govbus.reconcile import plan
    from govbus.share.metrics import ShareCollector

    out: dict[str, set[str]] = {}
    objects: list[object] = []
    for module in (metrics, plan, verification, disputes, freshness, projection):
        objects += vars(module).values()
    # The share metrics are families a collector builds; describe() needs no database.
    objects += ShareCollector.__new__(ShareCollector).describe()
    for collector in (SupervisionCollector, EvaluationCollector, BrokerCollector, TlsCollector):
        objects += collector.__new__(collector).describe()
    for value in objects:
        name = getattr(value, "_name", None) or getattr(value, "name", None)
        names = getattr(value, "_labelnames", None)
        if isinstance(name, str) and name.startswith("govbus_") and isinstance(names, tuple):
            out.setdefault(base(name), set()).update(names)
    return out


def base(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def queries() -> list[tuple[str, str]]:
    out = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text(encoding="utf-8"))["panels"]:
            out += [(panel["title"], t["expr"]) for t in panel.get("targets", [])]
    return out


def test_the_dashboard_queries_only_defined_metrics_and_labels() -> None:
    known_bases = defined()
    problems = []
    for title, expr in queries():
        for name in metric_names(expr):
            if not name.startswith("govbus_"):
                continue
            labels = known_bases.get(base(name))
            if labels is None:
                problems.append(f"{title}: {name} is not defined by govbus")
                continue
            for group in _BY.findall(expr):
                wanted = {g.strip() for g in group.split(",") if g.strip()} - {"le"}
                if not wanted <= labels:
                    problems.append(f"{title}: {name} has no label(s) {sorted(wanted - labels)}")
    assert not problems, "\n".join(problems)
    assert len(queries()) > 10  # the check above ran over the real dashboard


def test_the_check_would_catch_a_renamed_metric() -> None:
    known = defined()
    assert "govbus_disputes_open" in known
    assert "govbus_dispute_open" not in known  # a typo is not silently accepted
