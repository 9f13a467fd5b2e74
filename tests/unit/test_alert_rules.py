"""The alert rules in monitoring/alerts: valid (`promtool check rules`), their unit tests pass
(`promtool test rules`), and every violation kind of article 26 has its alert.

promtool comes from Debian's ``prometheus`` package (scripts/setup.sh --test installs it); a
machine without it fails here rather than skipping.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from govbus.supervise.rules import KINDS

ALERTS = Path(__file__).resolve().parents[2] / "monitoring" / "alerts"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: install Debian's prometheus package (scripts/setup.sh)"
    return subprocess.run([tool, *args], cwd=ALERTS, capture_output=True, text=True, timeout=120)


def test_promtool_checks_the_rules() -> None:
    proc = promtool("check", "rules", "govbus-rules.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_runs_the_rule_unit_tests() -> None:
    proc = promtool("test", "rules", "govbus-rules.test.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_violation_kind_has_an_alert_and_a_test() -> None:
    groups = yaml.safe_load((ALERTS / "govbus-rules.yml").read_text())["groups"]
    exprs = {r["alert"]: r["expr"] for g in groups for r in g["rules"]}
    tested = {
        a["alertname"]
        for t in yaml.safe_load((ALERTS / "govbus-rules.test.yml").read_text())["tests"]
        for a in t["alert_rule_test"]
        if a["exp_alerts"]
    }
    for kind in KINDS:
        alert = next(n for n, e in exprs.items() if f'kind="{kind.name}"' in e)
        assert alert in tested, f"{alert} ({kind.article}) has no firing test"
    platforms = ("GovbusBrokerDown", "GovbusStreamAppLagging", "GovbusOutboxBacklog")
    certificates = ("GovbusCertificateExpiringSoon", "GovbusCertificateExpiryCritical")
    for platform in (*platforms, *certificates):
        assert platform in tested
