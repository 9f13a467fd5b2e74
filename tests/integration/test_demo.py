"""The main command end to end: `govbus demo` on a cluster of its own.

The demo's reconciler owns every user and ACL of its cluster (it deletes the others as drift),
so it cannot share the session broker; it gets a fresh cluster and state directory here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from govbus.accounts.store import Accounts
from govbus.catalog.store import CatalogStore

pytestmark = pytest.mark.kafka

# Beside the session broker (19492 + 400 by default), so parallel test sessions do not collide.
DEMO_PORT = int(
    os.environ.get(
        "GOVBUS_TEST_DEMO_PORT", int(os.environ.get("GOVBUS_TEST_BROKER_PORT", "19492")) + 400
    )
)


def test_demo_tells_the_whole_story(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {
        **os.environ,
        "GOVBUS_STATE_DIR": str(state),
        "GOVBUS_BROKER_PORT": str(DEMO_PORT),
    }
    env.pop("GOVBUS_BOOTSTRAP_SERVERS", None)
    try:
        run = subprocess.run(
            [sys.executable, "-m", "govbus.cli", "demo"],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        subprocess.run(
            [sys.executable, "-m", "govbus.cli", "broker", "stop"],
            env=env,
            capture_output=True,
            timeout=120,
        )
    story = run.stdout
    assert run.returncode == 0, f"demo failed:\n{story}\n{run.stderr}"
    lines: dict[str, str] = {}  # step number -> its lines (a step may print several)
    for line in story.splitlines():
        step = re.match(r"(\d+)\. ", line)
        if step:
            lines[step[1]] = lines.get(step[1], "") + line + "\n"
    # Each step that the issues name, with the outcome that could have gone otherwise.
    assert "refused" in lines["5"] and "refused" in lines["6"] and "refused" in lines["7"]
    assert "a second plan has 0 changes" in lines["9"]
    assert "1 to its dead-letter topic" in lines["10"]
    assert lines["12"].count("refused") == 2  # the not-shared and the ungranted resource
    assert "request 1" in lines["15"] and "approved it: grant 1" in lines["16"]
    assert "now reads" in lines["18"] and ": 3 records" in lines["18"]
    assert "dispute " in lines["21"] and "0 dispute(s)" in lines["21"]
    assert "resolved it: confirmed" in lines["22"]
    assert "(no grant) reads the public view" in lines["23"]
    assert "********" in lines["23"]  # the citizen id is masked in the view
    # The console's address and one login per role, each of which logs in.
    assert "http://127.0.0.1:8080/" in lines["24"]
    logins = re.findall(r"^ +(\w+) +(\S+) +password (\S+)", story, re.M)
    assert {role for role, _, _ in logins} == {"viewer", "steward", "approver", "operator"}
    store = CatalogStore(f"sqlite:///{state / 'catalog.db'}")
    try:
        accounts = Accounts(store, coordinator="cz-dsjj")
        for role, username, password in logins:
            account = accounts.authenticate(username, password)
            assert account is not None and account.role == role, username
    finally:
        store.dispose()
    assert "never answered" in lines["25"]
    assert "26(3): 1" in lines["26"] and "26(2)" in lines["26"]  # the request, stale resources
    assert "    a stale resource: [" in story
    assert "通知整改" in lines["27"] and "recorded → notify → respond → close" in story
    assert "evaluate --year" in lines["28"] and "    chart '各部门综合得分' in " in story
    assert "view granted" in lines["30"] and "withheld" in lines["30"]
    assert "without a case number: 400 missing-header" in story
    assert "`govbus lookup serve`" in lines["30"]  # the command, as its own process
    assert "`govbus lookup serve` stopped on SIGINT (exit 0)" in story
    assert "chain OK" in lines["31"] and "case CZJY-2026-0001" in lines["31"]
    assert "front-end table mzj_hjxx shows the new row" in lines["32"]
    assert "(3 rows, then 1 new row by watermark)" in lines["32"]
