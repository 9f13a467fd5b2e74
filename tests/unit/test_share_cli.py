"""`govbus request | requests | approve | deny | revoke | negotiate | escalate` end to end, on an
embedded SQLite catalog (the sample) in a temporary state dir, at the real time of the run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from govbus.catalog.store import CatalogStore
from govbus.cli import main
from govbus.share.requests import ShareRequests

# The sample catalog (plus a provincial department) in a migrated database, made once.
from tests.unit.test_share_requests import MARRIAGE, template  # noqa: F401

INCOME_TAX = "30403/11320400MB0154739Y-000003"  # not shared
UNTIL = "2099-12-31"


@pytest.fixture
def state(tmp_path: Path, template: Path) -> Path:  # noqa: F811
    (tmp_path / "state").mkdir()
    shutil.copyfile(template, tmp_path / "state" / "catalog.db")
    return tmp_path / "state"


def run(state: Path, *args: str) -> int:
    return main(["--state-dir", str(state), *args])


def apply_for(state: Path, dept: str = "cz-rsj", *extra: str) -> int:
    return run(
        state,
        "request",
        MARRIAGE,
        "--department",
        dept,
        "--purpose",
        "administrative-basis",
        "--duty",
        "核定失业保险金发放对象",
        "--until",
        UNTIL,
        *extra,
    )


def service(state: Path) -> ShareRequests:
    return ShareRequests(CatalogStore(f"sqlite:///{state}/catalog.db"))


def test_request_approve_and_the_grant_history(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply_for(state, "cz-rsj", "--item", "citizen_id,marital_status") == 0
    out = capsys.readouterr().out
    due = service(state).request(1).due
    assert out.startswith(f"request 1: cz-rsj applies for {MARRIAGE} 婚姻登记信息 (citizen_id,")
    assert f"the provider answers by {due} (10 working days)" in out

    assert run(state, "requests", "--provider", "cz-mzj") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "STATE", "DEPARTMENT", "PROVIDER", "DUE", "STEP", "RESOURCE"]
    assert lines[1].split()[:6] == ["1", "pending", "cz-rsj", "cz-mzj", str(due), "-"]

    assert run(state, "approve", "1", "--actor", "cz-mzj", "--until", "2099-06-30") == 0
    out = capsys.readouterr().out
    assert "grant 1: cz-rsj may read" in out
    assert "until the end of 2099-06-30 (China time)" in out
    assert "govbus apply" in out

    assert (
        run(state, "revoke", "1", "--actor", "cz-dsjj", "--reason", "年度评估发现超出申请用途使用")
        == 0
    )
    assert "grant 1 revoked by cz-dsjj" in capsys.readouterr().out
    assert run(state, "requests", "--grant", "1") == 0
    out = capsys.readouterr().out
    assert "revoked" in out.splitlines()[0]
    assert [line.split()[2] for line in out.splitlines()[1:]] == [
        "submitted",
        "approved",
        "revoked",
    ]


def test_errors_are_one_line_and_name_the_rule(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply_for(state) == 0
    capsys.readouterr()
    assert run(state, "deny", "1", "--actor", "cz-mzj", "--reason", "不予共享。") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("govbus: error: share request 1 ")
    assert "boilerplate" in err
    assert run(state, "approve", "1", "--actor", "cz-rsj") == 1
    assert "only the provider 常州市民政局 (cz-mzj)" in capsys.readouterr().err
    assert (
        run(
            state,
            "request",
            "10101/1132040001410015XY-000001",
            "--department",
            "cz-rsj",
            "--purpose",
            "work-reference",
            "--duty",
            "核对户籍",
            "--until",
            UNTIL,
        )
        == 1
    )
    assert "no request needed: read it directly (无条件共享)" in capsys.readouterr().err
    assert service(state).request(1).state == "pending"


def test_not_shared_resource_negotiation_escalation_and_history(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--purpose", "data-verification", "--duty", "核对缴费基数", "--until", UNTIL]
    assert run(state, "request", INCOME_TAX, "--department", "cz-rsj", *args) == 0
    out = capsys.readouterr().out
    assert "is not shared (不予共享)" in out
    assert "negotiation step 1 is open" in out

    assert run(state, "escalate", "1", "--actor", "cz-rsj", "--note", "协商未果") == 0
    assert "escalated to coordination (协调) step 2, led by 常州市大数据管理局" in (
        capsys.readouterr().out
    )
    assert run(state, "escalate", "1", "--actor", "cz-rsj", "--note", "协调未果") == 1
    assert "neither department is provincial" in capsys.readouterr().err
    assert run(state, "negotiate", "1", "--actor", "cz-dsjj", "--settle", "维持不予共享") == 0
    assert "failed (no agreement)" in capsys.readouterr().out

    assert run(state, "requests", "--show", "1") == 0
    out = capsys.readouterr().out
    assert out.startswith("request 1: not-shared\n")
    assert "step 1  negotiation (协商) failed" in out
    assert "step 2  coordination (协调) failed, led by 常州市大数据管理局 (cz-dsjj)" in out
    history = out.split("history:\n")[1].splitlines()
    assert [line.split()[2] for line in history] == [
        "submitted",
        "not-shared",
        "negotiation-opened",
        "step-failed",
        "escalated",
        "step-failed",
    ]


def test_denial_then_negotiation_by_resource_and_department(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply_for(state, "cz-gaj") == 0
    reason = "申请单位未提供当事人书面授权，不符合共享条件"
    assert run(state, "deny", "1", "--actor", "cz-mzj", "--reason", reason) == 0
    assert f"request 1 denied by cz-mzj: {reason}" in capsys.readouterr().out
    assert run(state, "requests", "--state", "denied") == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:2] == ["1", "denied"]
    assert (
        run(
            state,
            "negotiate",
            "--resource",
            MARRIAGE,
            "--department",
            "cz-gaj",
            "--actor",
            "cz-gaj",
        )
        == 0
    )
    assert "request 1: negotiation (协商) step 1 opened between 常州市公安局 (cz-gaj)" in (
        capsys.readouterr().out
    )
    assert (
        run(state, "negotiate", "1", "--actor", "cz-mzj", "--settle", "补交授权书", "--agreed") == 0
    )
    assert "settled (agreed)" in capsys.readouterr().out
    assert run(state, "approve", "1", "--actor", "cz-mzj") == 0
    assert service(state).request(1).state == "approved"


def test_deadline_view_and_sweep(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert apply_for(state) == 0
    capsys.readouterr()
    # Submitted now: due exactly 10 working days ahead.
    assert run(state, "requests", "--deadlines", "--within", "9") == 0
    assert "no pending request is due within 9 working day(s)" in capsys.readouterr().out
    assert run(state, "requests", "--deadlines", "--within", "10") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "DEPARTMENT", "PROVIDER", "DUE", "LEFT", "RESOURCE"]
    assert lines[1].split()[:6] == [
        "1",
        "cz-rsj",
        "cz-mzj",
        str(service(state).request(1).due),
        "10",
        "working",
    ]
    assert run(state, "requests", "--overdue") == 0
    assert capsys.readouterr().out == "no share requests match\n"
    assert run(state, "requests", "--sweep") == 0
    assert capsys.readouterr().out == "sweep: requests newly overdue: none; grants expired: none\n"
