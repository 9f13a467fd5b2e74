"""The console's supervision pages over HTTP (Starlette's test client) on a SQLite catalog: the
violation ledger's list and detail, the operator's notify / close / escalate, the responsible
department's response, the refusals (wrong department, missing field) and their audit trail,
and the last yearly evaluation's scores. The rules are the ledger's (test_supervise_ledger.py);
these tests check that the pages reach them and refuse what they refuse."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from govbus.supervise.evaluation import evaluate
from govbus.supervise.ledger import Ledger, Violation
from govbus.supervise.metrics import write_evaluation_summary
from govbus.supervise.records import department_years, period
from tests.webconsole import ConsoleWorld, make_world, post


@pytest.fixture
def world(tmp_path: Path) -> ConsoleWorld:
    return make_world(tmp_path / "state")


def ledger(world: ConsoleWorld) -> Ledger:
    return Ledger(world.store, operator=world.settings.share_coordinator)


def record(world: ConsoleWorld, department: str = "cz-rsj") -> Violation:
    """A 26(7) violation of ``department``, recorded by the operator as the CLI does."""
    led = ledger(world)
    return led.record_other(
        department, "未按规定更新共享目录（第九条）", world.settings.share_coordinator,
        world.store.current(), subject=f"test:{department}",
    )  # fmt: skip


def test_the_list_shows_recorded_violations_to_their_department_and_the_operator(
    world: ConsoleWorld,
) -> None:
    rsj = record(world, "cz-rsj")
    mzj = record(world, "cz-mzj")
    operator = world.client("dsjj-operator").get("/supervision")
    assert operator.status_code == 200
    assert f'href="/supervision/{rsj.id}"' in operator.text
    assert f'href="/supervision/{mzj.id}"' in operator.text
    assert "supervision-pending" not in operator.text
    own = world.client("rsj-steward").get("/supervision").text
    assert f'href="/supervision/{rsj.id}"' in own and f'href="/supervision/{mzj.id}"' not in own
    # The operator's filters are the ledger's: department (id or code), kind, state.
    only_mzj = world.client("dsjj-operator").get("/supervision?department=cz-mzj&kind=other")
    assert f'href="/supervision/{mzj.id}"' in only_mzj.text
    assert f'href="/supervision/{rsj.id}"' not in only_mzj.text
    closed = world.client("dsjj-operator").get("/supervision?state=closed").text
    assert f'href="/supervision/{rsj.id}"' not in closed
    bad = world.client("dsjj-operator").get("/supervision?kind=nonsense")
    assert bad.status_code == 400 and "(kind)" in bad.text


def test_another_department_can_neither_read_nor_respond(world: ConsoleWorld) -> None:
    v = record(world, "cz-rsj")
    mzj = world.client("mzj-steward")
    assert mzj.get(f"/supervision/{v.id}").status_code == 403
    response = post(mzj, f"/supervision/{v.id}/respond", {"response": "已整改完毕，目录已更新"})
    assert response.status_code == 403
    assert ledger(world).get(v.id).state == "open"
    refused = world.accounts.audit_log(username="mzj-steward")[0]
    assert (refused.action, refused.outcome, refused.department) == (
        "supervise.respond", "refused", "cz-mzj",
    )  # fmt: skip
    # Nor may a department notify or close, even its own violation.
    rsj = world.client("rsj-steward")
    assert post(rsj, f"/supervision/{v.id}/close", {"reason": "自行关闭了"}).status_code == 403
    assert ledger(world).get(v.id).state == "open"


def test_operator_notifies_department_responds_operator_closes(world: ConsoleWorld) -> None:
    v = record(world, "cz-rsj")
    op = world.client("dsjj-operator")
    response = post(op, f"/supervision/{v.id}/notify", {"workdays": "5", "note": "十日内更新目录"})
    assert response.status_code == 303, response.text
    notified = ledger(world).get(v.id)
    assert notified.state == "notified" and notified.due is not None
    page = op.get(f"/supervision/{v.id}").text
    assert notified.due.isoformat() in page and "通知整改" in page
    rsj = world.client("rsj-steward")
    response = post(rsj, f"/supervision/{v.id}/respond", {"response": "目录已于今日更新"})
    assert response.status_code == 303, response.text
    assert ledger(world).get(v.id).state == "responded"
    response = post(op, f"/supervision/{v.id}/close", {"reason": "核实目录已更新"})
    assert response.status_code == 303, response.text
    assert ledger(world).get(v.id).state == "closed"
    actions = [e.action for e in ledger(world).history(v.id)]
    assert actions == ["recorded", "notify", "respond", "close"]
    history = rsj.get(f"/supervision/{v.id}").text
    assert "目录已于今日更新" in history and "核实目录已更新" in history
    done = [(e.username, e.department, e.action, e.outcome)
            for e in world.accounts.audit_log() if e.action.startswith("supervise.")]  # fmt: skip
    assert done == [
        ("dsjj-operator", "cz-dsjj", "supervise.close", "ok"),
        ("rsj-steward", "cz-rsj", "supervise.respond", "ok"),
        ("dsjj-operator", "cz-dsjj", "supervise.notify", "ok"),
    ]


def test_the_operator_escalates_a_notice_past_its_deadline(world: ConsoleWorld) -> None:
    v = record(world, "cz-rsj")
    op = world.client("dsjj-operator")
    # The ledger's transition rule: an open violation (no notice yet) is not escalated.
    refused = post(op, f"/supervision/{v.id}/escalate", {})
    assert refused.status_code == 400 and "cannot escalate" in refused.text
    assert ledger(world).get(v.id).state == "open"
    # A notice issued 30 days ago with 5 working days is past its deadline.
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    ledger(world).notify(v.id, world.settings.share_coordinator, 5, "五日内更新目录", now=past)
    assert post(op, f"/supervision/{v.id}/escalate", {}).status_code == 303
    assert ledger(world).get(v.id).state == "escalated"
    assert "上报市政府" in op.get(f"/supervision/{v.id}").text


@pytest.mark.parametrize(
    ("action", "form", "field"),
    [
        ("notify", {"note": "十日内更新目录"}, "workdays"),
        ("notify", {"workdays": "0", "note": "十日内更新目录"}, "workdays"),
        ("notify", {"workdays": "abc", "note": "十日内更新目录"}, "workdays"),
        ("notify", {"workdays": "10"}, "note"),
        ("close", {}, "reason"),
        ("close", {"reason": "   "}, "reason"),
    ],
)
def test_a_missing_or_bad_field_is_refused_by_name(
    world: ConsoleWorld, action: str, form: dict[str, object], field: str
) -> None:
    v = record(world, "cz-rsj")
    response = post(world.client("dsjj-operator"), f"/supervision/{v.id}/{action}", form)
    assert response.status_code == 400
    assert f"({field})" in response.text and f'data-field="{field}"' in response.text
    assert ledger(world).get(v.id).state == "open"
    refused = world.accounts.audit_log(username="dsjj-operator")[0]
    assert (refused.action, refused.outcome) == (f"supervise.{action}", "refused")


def test_an_empty_response_is_refused_by_name(world: ConsoleWorld) -> None:
    v = record(world, "cz-rsj")
    response = post(world.client("rsj-steward"), f"/supervision/{v.id}/respond", {})
    assert response.status_code == 400 and "(response)" in response.text
    # A viewer of the responsible department may read but not respond.
    viewer = world.client("mzj-viewer")
    mzj = record(world, "cz-mzj")
    assert viewer.get(f"/supervision/{mzj.id}").status_code == 200
    answer = post(viewer, f"/supervision/{mzj.id}/respond", {"response": "已整改完毕"})
    assert answer.status_code == 403


def test_the_last_evaluation_is_shown(world: ConsoleWorld) -> None:
    page = world.client("dsjj-operator").get("/supervision").text
    assert "尚无考核结果" in page
    # What `govbus evaluate` records for the exporter, from the same services.
    scores = evaluate(department_years(world.store, ledger(world), period(2025)))
    write_evaluation_summary(world.settings.state_dir, 2025, scores)
    page = world.client("dsjj-operator").get("/supervision").text
    assert "2025 年度考核结果" in page
    for s in scores:
        assert f"<td>{s.year.department_id}</td><td>{s.score:.1f}</td>" in page
