"""A real Prometheus scrapes a real `govbus exporter` and fires an article 26 alert.

The exporter serves the ledger of a catalog database holding one open violation; Prometheus
(Debian's ``prometheus`` package) loads monitoring/alerts/govbus-rules.yml, scrapes every second
and evaluates every second. The test waits until the alert of that violation's kind is firing
and the exporter's ``/healthz`` is healthy. Ports: ``GOVBUS_TEST_ALERT_PORT`` (default: the
test broker's port + 1300, in the range left for extra services) for the exporter and the next
one for Prometheus.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from govbus.catalog.store import CatalogStore
from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, load_yaml
from govbus.supervise.ledger import Ledger
from tests.conftest import TEST_BROKER_PORT

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "monitoring" / "alerts" / "govbus-rules.yml"
BASE_PORT = int(os.environ.get("GOVBUS_TEST_ALERT_PORT", str(TEST_BROKER_PORT + 1300)))
WAIT = 180.0  # seconds to wait for the alert under load; a wait, not an asserted duration


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait_for(what: str, check: object, procs: list[subprocess.Popen[bytes]]) -> object:
    deadline = time.monotonic() + WAIT
    last: object = None
    while time.monotonic() < deadline:
        for p in procs:
            assert p.poll() is None, f"{p.args[0]} exited with {p.returncode} while waiting"
        try:
            last = check()  # type: ignore[operator]
        except OSError as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(1)
    raise AssertionError(f"{what} did not happen within {WAIT}s; last: {last!r}")


@pytest.fixture
def state(tmp_path: Path) -> Path:
    store = CatalogStore(f"sqlite:///{tmp_path}/catalog.db")
    store.migrate()
    spec = load_yaml(SAMPLE_CATALOG_PATH)
    store.apply(spec, "a", "sample")
    Ledger(store).record_other("cz-gaj", "未经批准向第三方提供共享数据", "cz-dsjj", spec)
    store.dispose()
    return tmp_path


@pytest.fixture
def processes(state: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    prometheus = shutil.which("prometheus")
    assert prometheus, "prometheus is missing: install Debian's prometheus package"
    exporter_port, prom_port = BASE_PORT, BASE_PORT + 1
    (state / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{RULES}']\n"
        "scrape_configs:\n"
        "  - job_name: govbus\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{exporter_port}']}}]\n"
    )
    log = (state / "processes.log").open("wb")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "govbus.cli",
                "--state-dir",
                str(state),
                "exporter",
                "--port",
                str(exporter_port),
                "--addr",
                "127.0.0.1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        ),
        subprocess.Popen(
            [
                prometheus,
                f"--config.file={state / 'prometheus.yml'}",
                f"--storage.tsdb.path={state / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        ),
    ]
    try:
        yield procs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()


def test_prometheus_fires_the_alert_of_an_open_violation(
    processes: list[subprocess.Popen[bytes]],
) -> None:
    exporter = f"http://127.0.0.1:{BASE_PORT}"
    health = _wait_for("exporter health", lambda: _get(f"{exporter}/healthz"), processes)
    assert health == (200, b'{"status": "ok"}\n')
    _, body = _get(f"{exporter}/metrics")
    assert 'govbus_violations_open{article="26(7)",department="cz-gaj",kind="other"} 1.0' in (
        body.decode()
    )

    def firing() -> list[dict[str, object]]:
        _, raw = _get(f"http://127.0.0.1:{BASE_PORT + 1}/api/v1/alerts")
        alerts = json.loads(raw)["data"]["alerts"]
        return [a for a in alerts if a["state"] == "firing"]

    alerts = _wait_for("a firing alert", firing, processes)
    names = {a["labels"]["alertname"]: a for a in alerts}  # type: ignore[union-attr, index]
    assert "GovbusViolationOtherViolation" in names
    fired = names["GovbusViolationOtherViolation"]["labels"]
    assert fired["department"] == "cz-gaj" and fired["article"] == "26(7)"  # type: ignore[index]
