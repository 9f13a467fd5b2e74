"""The reconciler's recorded drift and last apply, and `govbus exporter` serving them over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from govbus.monitor import exporter
from govbus.reconcile import status
from govbus.reconcile.status import StatusCollector, load_status, record_plan
from govbus.vocabulary.config import Settings
from tests.prometheus_text import by_series, family_names


def collected(state_dir: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    for collector in exporter.state_collectors(replace(Settings(), state_dir=state_dir)):
        registry.register(collector)
    return by_series(generate_latest(registry).decode())


def test_names_are_the_reconcilers_own_gauges() -> None:
    from govbus.reconcile import plan

    assert plan.DRIFT._name == status.DRIFT_METRIC
    assert plan.LAST_APPLY._name == status.LAST_APPLY_METRIC


def test_nothing_recorded_means_no_series(tmp_path: Path) -> None:
    assert load_status(tmp_path) is None
    assert collected(tmp_path) == {}


def test_apply_then_plan_keeps_the_apply_time_and_shows_the_newest_drift(tmp_path: Path) -> None:
    record_plan(tmp_path, {"topic": 0, "user": 1, "acl": 2}, applied=True, now=1_767_225_600.5)
    assert collected(tmp_path) == {
        ("govbus_reconciler_drift", (("kind", "acl"),)): 2.0,
        ("govbus_reconciler_drift", (("kind", "topic"),)): 0.0,
        ("govbus_reconciler_drift", (("kind", "user"),)): 1.0,
        ("govbus_reconciler_last_apply_timestamp_seconds", ()): 1_767_225_600.5,
    }
    record_plan(tmp_path, {"topic": 0, "user": 0, "acl": 3}, applied=False, now=1_767_229_200.0)
    later = collected(tmp_path)
    assert later[("govbus_reconciler_drift", (("kind", "acl"),))] == 3.0
    assert later[("govbus_reconciler_drift", (("kind", "user"),))] == 0.0
    assert later[("govbus_reconciler_last_apply_timestamp_seconds", ())] == 1_767_225_600.5


def test_a_plan_never_applied_has_drift_but_no_apply_time(tmp_path: Path) -> None:
    record_plan(tmp_path, {"acl": 1}, applied=False, now=10.0)
    assert collected(tmp_path) == {("govbus_reconciler_drift", (("kind", "acl"),)): 1.0}


def test_a_damaged_file_is_named_and_does_not_break_a_scrape(tmp_path: Path) -> None:
    path = status.status_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"status\.json.*delete it"):
        load_status(tmp_path)
    assert list(StatusCollector(tmp_path).collect()) == []
    record_plan(tmp_path, {"acl": 0}, applied=True, now=5.0)  # rewrites it
    assert load_status(tmp_path) == status.ReconcilerStatus(5.0, {"acl": 0}, 5.0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_exporter_serves_the_recorded_values_over_http(tmp_path: Path) -> None:
    record_plan(tmp_path, {"topic": 1, "user": 0, "acl": 4}, applied=True, now=1_767_225_600.0)
    port = free_port()
    env = {**os.environ, "GOVBUS_STATE_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "govbus.cli", "exporter", "--port", str(port), "--addr",
         "127.0.0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        body = None
        while body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    body = r.read().decode()
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    out, err = proc.communicate(timeout=10)
                    pytest.fail(f"exporter did not serve on {port}: {out} {err}")
                time.sleep(0.2)
        served = by_series(body)
        assert served[("govbus_reconciler_drift", (("kind", "acl"),))] == 4.0
        assert served[("govbus_reconciler_drift", (("kind", "topic"),))] == 1.0
        assert served[("govbus_reconciler_last_apply_timestamp_seconds", ())] == 1_767_225_600.0
        # The process's own metrics are on the same registry.
        families = family_names(body)
        assert "govbus_records_published" in families
        # Share-request figures come from the catalog database at each scrape.
        assert {"govbus_share_requests_open", "govbus_share_grants_active"} <= families
    finally:
        proc.terminate()  # SIGTERM: the exporter stops cleanly
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert f"http://127.0.0.1:{port}/metrics" in out


def test_publish_and_consume_serve_metrics_only_when_asked() -> None:
    from govbus.cli import build_parser

    parser = build_parser()
    publish = ["publish", "--department", "d", "--resource", "r", "records.jsonl"]
    consume = ["consume", "--department", "d", "--resource", "r", "--purpose", "work-reference"]
    assert parser.parse_args(publish).metrics_port is None
    assert parser.parse_args([*publish, "--metrics-port", "9465"]).metrics_port == 9465
    assert parser.parse_args([*consume, "--metrics-port", "9466"]).metrics_port == 9466
