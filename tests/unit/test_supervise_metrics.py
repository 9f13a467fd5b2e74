"""The supervision collector (the ledger at each scrape) and ``/healthz`` of a metrics server."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from govbus.catalog.store import CatalogStore
from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, load_yaml
from govbus.supervise.evaluation import evaluate
from govbus.supervise.ledger import Ledger
from govbus.supervise.metrics import (
    EvaluationCollector,
    SupervisionCollector,
    write_evaluation_summary,
)
from govbus.supervise.rules import Finding
from govbus.vocabulary import metrics
from govbus.vocabulary.clock import CHINA_TZ
from tests.prometheus_text import by_series
from tests.unit.test_supervise_rules import _year

NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=CHINA_TZ)
MZJ = "1132040001410023XJ"


def test_open_violations_overdue_notices_and_outbox_backlog_are_served(tmp_path: Path) -> None:
    store = CatalogStore(f"sqlite:///{tmp_path}/c.db")
    try:
        store.migrate()
        store.apply(load_yaml(SAMPLE_CATALOG_PATH), "a", "sample", now=NOW)
        ledger = Ledger(store)
        a, b = ledger.record(
            [
                Finding("late-provision", MZJ, "x", NOW, "late"),
                Finding("unanswered-request", MZJ, "request:1", NOW, "unanswered"),
            ],
            now=NOW,
        ).new
        ledger.notify(a, "cz-dsjj", 2, "请按时发布", now=NOW)
        ledger.close(b, "cz-dsjj", "已答复，核实", now=NOW)
        registry = CollectorRegistry()
        later = NOW + dt.timedelta(days=10)
        registry.register(SupervisionCollector(store, clock=lambda: later))
        got = by_series(generate_latest(registry).decode())
    finally:
        store.dispose()
    open_ = (("article", "26(2)"), ("department", "cz-mzj"), ("kind", "late-provision"))
    assert got[("govbus_violations_open", open_)] == 1
    assert not any(
        k[0] == "govbus_violations_open" and ("kind", "unanswered-request") in k[1] for k in got
    )
    recorded = (("article", "26(3)"), ("kind", "unanswered-request"))
    assert got[("govbus_violations_recorded", recorded)] == 1
    assert got[("govbus_violations_recorded", (("article", "26(7)"), ("kind", "other")))] == 0
    assert got[("govbus_rectification_overdue", (("department", "cz-mzj"),))] == 1
    # recorded, notify (a); recorded, close (b): four ledger events not relayed yet.
    assert got[("govbus_outbox_pending", (("topic", "govbus.supervision"),))] == 4
    assert got[("govbus_outbox_pending", (("topic", "govbus.catalog"),))] > 0


def _get(url: str) -> tuple[int, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_healthz_answers_ok_or_503_with_the_problem() -> None:
    problem: list[str | None] = [None]
    server, _ = metrics.serve(0, "127.0.0.1", health=lambda: problem[0])
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        assert _get(f"{base}/healthz") == (200, {"status": "ok"})
        problem[0] = "catalog database: OperationalError"
        assert _get(f"{base}/health") == (
            503,
            {"status": "unhealthy", "problem": "catalog database: OperationalError"},
        )
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as resp:
            assert b"govbus_records_published" in resp.read()
    finally:
        server.shutdown()


def test_the_last_evaluation_is_served_per_department_and_indicator(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    registry.register(EvaluationCollector(tmp_path))
    assert by_series(generate_latest(registry).decode()) == {}  # nothing evaluated yet
    ranked = evaluate([_year("a"), _year("b", late_resources=2)])
    write_evaluation_summary(tmp_path, 2026, ranked)
    got = by_series(generate_latest(registry).decode())
    assert got[("govbus_evaluation_score", (("department", "a"), ("year", "2026")))] == 100
    key = ("department", "b"), ("indicator", "on_time_provision"), ("year", "2026")
    assert got[("govbus_evaluation_indicator", key)] == 0.5
    absent = ("department", "b"), ("indicator", "rectification"), ("year", "2026")
    assert ("govbus_evaluation_indicator", absent) not in got  # not applicable
