"""The violation ledger on SQLite (tests/integration/test_supervise_pg.py runs them on
PostgreSQL): idempotent recording, episodes, the workflow with its events and outbox rows, the
detectors on the database, and the evaluation and reports computed from it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from govbus.catalog.deadlines import record_trigger
from govbus.catalog.model import OutboxRow
from govbus.catalog.store import CatalogStore
from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, load_yaml
from govbus.share.requests import ShareRequests
from govbus.supervise.evaluation import evaluate
from govbus.supervise.ledger import Ledger
from govbus.supervise.records import department_years, period
from govbus.supervise.report import SCORE_CHART, department_report, write_html, write_xlsx
from govbus.supervise.rules import Finding, TransitionError
from govbus.supervise.sources import detect_from_database
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.errors import UserError
from govbus.vocabulary.naming import NAMING
from govbus.vocabulary.workdays import WorkdayCalendar
from tests.unit.test_catalog_departments import alembic

NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=CHINA_TZ)
MARRIAGE = "30201/1132040001410023XJ-000003"  # conditional, 民政局 (cz-mzj)
MZJ = "1132040001410023XJ"
GAJ = "1132040001410015XY"  # 公安局 (cz-gaj)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("supervise") / "template.db"
    s = CatalogStore(f"sqlite:///{path}")
    s.migrate()
    s.apply(load_yaml(SAMPLE_CATALOG_PATH), "a", "sample", now=NOW - dt.timedelta(days=30))
    s.dispose()
    return path


@pytest.fixture
def store(tmp_path: Path, template: Path) -> Iterator[CatalogStore]:
    shutil.copyfile(template, tmp_path / "catalog.db")
    s = CatalogStore(f"sqlite:///{tmp_path}/catalog.db")
    yield s
    s.dispose()


def ledger_of(store: CatalogStore) -> Ledger:
    return Ledger(store, "cz-dsjj", WorkdayCalendar())


def finding(subject: str = "x", kind: str = "late-provision", dept: str = MZJ) -> Finding:
    return Finding(kind, dept, subject, NOW, f"{kind} {subject}", {"resource_code": MARRIAGE})


def outbox(store: CatalogStore) -> list[sa.Row[tuple[str, dict[str, object]]]]:
    with store.connect() as conn:
        return list(
            conn.execute(
                sa.select(OutboxRow.key, OutboxRow.value)
                .where(OutboxRow.topic == NAMING.supervision_topic)
                .order_by(OutboxRow.id)
            ).all()
        )


def test_the_same_episode_is_one_violation_and_conditions_reopen_after_closing(
    store: CatalogStore,
) -> None:
    ledger = ledger_of(store)
    first = ledger.record([finding("a"), finding("b")], now=NOW)
    again = ledger.record([finding("a"), finding("b")], now=NOW)
    assert len(first.new) == 2 and again.new == () and again.known == 2
    dead = Finding("inconsistent-data", MZJ, f"dead-letters:{MZJ}", NOW, "rate", {})
    (vid,) = ledger.record([dead], now=NOW).new
    closed = ledger.record([], cleared=[("inconsistent-data", dead.subject)], now=NOW)
    assert closed.closed == (vid,) and ledger.get(vid).state == "closed"
    # The condition came back: a second episode. An event finding never reopens.
    (again_id,) = ledger.record([dead], now=NOW).new
    assert ledger.get(again_id).episode == 2
    ledger.close(first.new[0], "cz-dsjj", "核实已发布", now=NOW)
    assert ledger.record([finding("a")], now=NOW).new == ()
    assert [v.id for v in ledger.violations(state="open")] == [first.new[1], again_id]


def test_the_workflow_records_every_step_with_actor_time_and_an_outbox_row(
    store: CatalogStore,
) -> None:
    ledger = ledger_of(store)
    spec = store.current()
    (vid,) = ledger.record([finding()], now=NOW).new
    with pytest.raises(UserError, match="only the operator"):
        ledger.notify(vid, "cz-mzj", 5, "请整改", now=NOW)
    with pytest.raises(UserError, match="must say"):
        ledger.notify(vid, "cz-dsjj", 5, " ", now=NOW)
    v = ledger.notify(vid, "cz-dsjj", 5, "按更新周期发布数据", now=NOW)
    assert v.state == "notified" and v.due == dt.date(2026, 3, 9)  # 5 working days
    with pytest.raises(UserError, match="only that department responds"):
        ledger.respond(vid, "cz-gaj", "已发布", spec, now=NOW)
    with pytest.raises(TransitionError, match="has not passed"):
        ledger.escalate(vid, "cz-dsjj", now=NOW)
    later = NOW + dt.timedelta(days=10)
    assert [x.id for x in ledger.escalate_overdue("cz-dsjj", now=later)] == [vid]
    assert ledger.escalate_overdue("cz-dsjj", now=later) == []  # once
    ledger.respond(vid, "cz-mzj", "已补发全部数据并设置自动发布", spec, now=later)
    v = ledger.close(vid, "cz-dsjj", "核实数据已按时发布", now=later)
    assert v.state == "closed" and v.closed_at is not None
    steps = [(e.action, e.actor) for e in ledger.history(vid)]
    assert steps == [
        ("recorded", "govbus-supervise"),
        ("notify", "cz-dsjj"),
        ("escalate", "cz-dsjj"),
        ("respond", "cz-mzj"),
        ("close", "cz-dsjj"),
    ]
    rows = outbox(store)
    assert [r.key for r in rows] == [f"violation:{vid}"] * 5
    assert rows[-1].value["violation"]["state"] == "closed"  # type: ignore[index]
    assert rows[1].value["event"]["detail"]["due"] == "2026-03-09"  # type: ignore[index]
    assert ledger.pending_outbox() == 5


def test_filters_by_department_kind_state_and_due_date(store: CatalogStore) -> None:
    ledger = ledger_of(store)
    spec = store.current()
    a, b = ledger.record([finding("a"), finding("b", "unanswered-request", GAJ)], now=NOW).new
    ledger.notify(a, "cz-dsjj", 3, "请整改数据", now=NOW)
    other = ledger.record_other("cz-gaj", "未经批准向第三方提供共享数据", "cz-dsjj", spec, now=NOW)
    assert other.kind == "other" and other.article == "26(7)"
    assert [v.id for v in ledger.violations(department=GAJ)] == [b, other.id]
    assert [v.id for v in ledger.violations(kind="26(3)")] == [b]
    assert [v.id for v in ledger.violations(state="notified")] == [a]
    assert [v.id for v in ledger.violations(due_before=dt.date(2026, 3, 6))] == [a]
    assert ledger.violations(due_before=dt.date(2026, 3, 5)) == []
    with pytest.raises(UserError, match="unknown department"):
        ledger.record_other("nobody", "some reason", "cz-dsjj", spec)


def test_database_detectors_find_overdue_deadlines_and_requests_and_see_them_clear(
    store: CatalogStore,
) -> None:
    ledger = ledger_of(store)
    cal = WorkdayCalendar()
    record_trigger(store, "law-revised", "法规修订", ["cz-gaj"], NOW.date(), calendar=cal, now=NOW)
    svc = ShareRequests(store, cal)
    req = svc.submit(
        "cz-rsj",
        MARRIAGE,
        purpose="administrative-basis",
        duty="核定失业保险金发放对象",
        valid_until=dt.date(2026, 12, 31),
        now=NOW,
    )
    late = NOW + dt.timedelta(days=40)
    svc.sweep(late)
    found = detect_from_database(store, late)
    assert {(f.kind, f.department) for f in found.findings} == {
        ("catalog-not-updated", GAJ),
        ("unanswered-request", MZJ),
    }
    result = ledger.record(found.findings, found.cleared, late)
    assert len(result.new) == 2
    assert ledger.record(found.findings, found.cleared, late).new == ()
    # The provider answers; the police update their catalog: both conditions clear.
    svc.approve(req.id, "cz-mzj", now=late)
    spec = store.current()
    police = [r for r in spec.resources if r.provider == GAJ]
    changed = dataclasses.replace(police[0], abstract=police[0].abstract + "（修订）")
    store.apply(
        dataclasses.replace(
            spec, resources=tuple(changed if r is police[0] else r for r in spec.resources)
        ),
        "cz-gaj",
        "依法修订",
        now=late,
    )
    cleared = detect_from_database(store, late + dt.timedelta(days=1))
    closed = ledger.record(cleared.findings, cleared.cleared, late).closed
    assert sorted(closed) == sorted(result.new)


def test_the_evaluation_and_its_reports_come_from_the_records_and_are_reproducible(
    store: CatalogStore, tmp_path: Path
) -> None:
    ledger = ledger_of(store)
    (vid,) = ledger.record([finding("a")], now=NOW).new
    ledger.notify(vid, "cz-dsjj", 5, "按更新周期发布数据", now=NOW)
    ledger.respond(vid, "cz-mzj", "已补发全部数据", store.current(), now=NOW + dt.timedelta(days=1))
    p = period(2026, dt.date(2026, 6, 30))
    years = department_years(store, ledger, p)
    mzj = next(y for y in years if y.department_code == MZJ)
    assert (mzj.late_resources, mzj.violations, mzj.notices, mzj.rectified_in_time) == (1, 1, 1, 1)
    scores = evaluate(years)
    assert len(scores) == len(store.current().departments)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    for out in (a, b):
        write_xlsx(scores, p, out / "e.xlsx")
        write_html(scores, p, out / "e.html")
    assert (a / "e.xlsx").read_bytes() == (b / "e.xlsx").read_bytes()
    assert (a / "e.html").read_bytes() == (b / "e.html").read_bytes()
    again = evaluate(department_years(store, ledger, p))
    assert again == scores
    wb = load_workbook(a / "e.xlsx")
    charts = wb["总览"]._charts
    assert len(charts) == 1 and len(wb["指标"]._charts) == 1
    with zipfile.ZipFile(a / "e.xlsx") as z:
        assert any(n.startswith("xl/charts/chart") for n in z.namelist())
        assert SCORE_CHART in z.read("xl/charts/chart1.xml").decode()
    assert wb.properties.modified == p.cutoff.replace(tzinfo=None)
    page = (a / "e.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 2 and SCORE_CHART in page and "常州市民政局" in page
    mine = next(s for s in scores if s.year.department_code == MZJ)
    text = department_report(mine, len(scores), ledger.violations(MZJ), p)
    assert "第二十条" in text and f"[{vid}]" in text and "数据按时提供率" in text


def test_migration_0005_downgrades_and_upgrades_again(store: CatalogStore) -> None:
    ledger_of(store).record([finding("a")], now=NOW)
    alembic(store, "downgrade", "0004")
    with store.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert not {"supervision_violation", "supervision_event"} & tables
    assert store.current() == load_yaml(SAMPLE_CATALOG_PATH)  # the catalog is untouched
    alembic(store, "upgrade", "head")
    ledger = ledger_of(store)
    assert ledger.violations() == []
    assert len(ledger.record([finding("a")], now=NOW).new) == 1
