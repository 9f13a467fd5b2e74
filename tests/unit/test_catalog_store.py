"""The versioned catalog store on SQLite: versions, diffs, article 9 deadlines and the outbox.

Tests taking the ``store`` fixture are the store's core behaviour; tests/integration/
test_catalog_store_pg.py runs the same functions on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from govbus.catalog import deadlines as dl
from govbus.catalog.model import Base, HolderRow, OutboxRow, ResourceRow, TriggerDeadlineRow
from govbus.catalog.rules import CatalogRuleError
from govbus.catalog.store import (
    CatalogDiff,
    CatalogEvolutionError,
    CatalogStore,
    FieldChange,
    StoreError,
    VersionNotFoundError,
    diff_specs,
)
from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, load_yaml
from govbus.vocabulary.spec import CatalogSpec, InfoItem, Resource
from govbus.vocabulary.workdays import WorkdayCalendar

POLICE = "1132040001410015XY"  # 常州市公安局
CIVIL = "1132040001410023XJ"  # 常州市民政局
HOUSEHOLD = "10101/1132040001410015XY-000001"  # 人口户籍基本信息, provided by the police
SOCIAL_ORG = "10203/1132040001410023XJ-000001"  # 社会组织登记信息, provided by 民政局
SOCIAL_AID = "20201/1132040001410023XJ-000002"  # 社会救助对象信息 (conditional), 民政局
T0 = dt.datetime(2025, 9, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def sample() -> CatalogSpec:
    return load_yaml(SAMPLE_CATALOG_PATH)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CatalogStore]:
    s = CatalogStore(f"sqlite:///{tmp_path}/db/catalog.db")
    s.migrate()
    yield s
    s.dispose()


# --- spec edits ---------------------------------------------------------------------------------


def edit_resource(spec: CatalogSpec, code: str, **changes: Any) -> CatalogSpec:
    assert spec.resource(code) is not None
    return dataclasses.replace(
        spec,
        resources=tuple(
            dataclasses.replace(r, **changes) if r.code == code else r for r in spec.resources
        ),
    )


def edit_item(spec: CatalogSpec, code: str, item: str, **changes: Any) -> CatalogSpec:
    res = spec.resource(code)
    assert res is not None and res.item(item) is not None
    items = tuple(dataclasses.replace(i, **changes) if i.code == item else i for i in res.items)
    return edit_resource(spec, code, items=items)


def add_item(spec: CatalogSpec, code: str, item: InfoItem) -> CatalogSpec:
    res = spec.resource(code)
    assert res is not None
    return edit_resource(spec, code, items=(*res.items, item))


def drop_resource(spec: CatalogSpec, code: str) -> CatalogSpec:
    return dataclasses.replace(spec, resources=tuple(r for r in spec.resources if r.code != code))


def rename_department(spec: CatalogSpec, code: str, name: str) -> CatalogSpec:
    return dataclasses.replace(
        spec,
        departments=tuple(
            dataclasses.replace(d, name=name) if d.code == code else d for d in spec.departments
        ),
    )


def removable(spec: CatalogSpec) -> Resource:
    """A resource no other resource refers to, so removing it keeps the catalog valid."""
    return next(
        r
        for r in spec.resources
        if r.provider != POLICE and all(r.code not in o.related for o in spec.resources)
    )


FORMER_NAME = InfoItem(name="曾用名", code="former_name", data_type="C", length=50)


def outbox(store: CatalogStore) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(OutboxRow).order_by(OutboxRow.id)).all())


def count(store: CatalogStore, table: Any) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


# --- schema -------------------------------------------------------------------------------------


def test_migrate_creates_the_tables_the_model_declares(store: CatalogStore) -> None:
    with store.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        # Autogenerate finds nothing to do: the migration and the model agree column by column.
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables
    assert differences == []


def test_migrate_twice_keeps_the_data(store: CatalogStore, sample: CatalogSpec) -> None:
    store.apply(sample, "alice", "initial")
    store.migrate()
    assert store.current() == sample


def test_unmigrated_database_is_refused_with_the_fix(tmp_path: Path) -> None:
    store = CatalogStore(f"sqlite:///{tmp_path}/empty.db")
    with pytest.raises(StoreError, match=r"migrate"):
        store.current()
    store.dispose()


# --- versions -----------------------------------------------------------------------------------


def test_first_apply_is_version_1_with_normalised_rows(
    store: CatalogStore, sample: CatalogSpec
) -> None:
    assert store.current() == CatalogSpec()
    assert store.apply(sample, "alice", "initial catalog", now=T0) == 1
    assert store.current() == sample
    assert count(store, ResourceRow) == len(sample.resources)
    with store.engine.connect() as conn:
        provider = conn.execute(
            sa.select(ResourceRow.provider).where(ResourceRow.code == HOUSEHOLD)
        ).scalar_one()
        holders = conn.execute(sa.select(HolderRow.department, HolderRow.item)).all()
    assert provider == POLICE
    expected_holders = {
        (h.department, i) for r in sample.resources for h in r.holders for i in h.items
    }
    assert set(holders) == expected_holders and expected_holders


def test_second_apply_is_version_2_with_its_diff(store: CatalogStore, sample: CatalogSpec) -> None:
    store.apply(sample, "alice", "initial", now=T0)
    v2 = add_item(edit_resource(sample, HOUSEHOLD, name="人口户籍信息"), HOUSEHOLD, FORMER_NAME)
    assert store.apply(v2, "bob", "add 曾用名", now=T0 + dt.timedelta(days=1)) == 2
    assert store.current() == v2
    diff = store.diff(1, 2)
    assert diff.added_resources == () and diff.removed_resources == ()
    (change,) = diff.changed_resources
    assert change.code == HOUSEHOLD
    assert change.changes == (FieldChange("name", "人口户籍基本信息", "人口户籍信息"),)
    assert change.items_added == ("former_name",)
    with store.engine.connect() as conn:
        names = conn.execute(
            sa.text("select code from info_item where resource = :r order by position"),
            {"r": HOUSEHOLD},
        ).scalars()
        assert list(names)[-1] == "former_name"


def test_no_op_apply_makes_no_version(store: CatalogStore, sample: CatalogSpec) -> None:
    assert store.apply(sample, "alice", "initial") == 1
    reordered = dataclasses.replace(sample, resources=tuple(reversed(sample.resources)))
    assert store.apply(sample, "bob", "same again") == 1
    assert store.apply(reordered, "bob", "only the order differs") == 1
    assert [v.number for v in store.history()] == [1]
    assert len(outbox(store)) == len(sample.departments) + len(sample.resources)


def test_history_lists_author_reason_time_and_summary(
    store: CatalogStore, sample: CatalogSpec
) -> None:
    store.apply(sample, "alice", "initial", now=T0)
    gone = removable(sample)
    store.apply(
        drop_resource(sample, gone.code),
        "bob",
        f"retire {gone.name}",
        now=T0 + dt.timedelta(hours=1),
    )
    first, second = store.history()
    assert (first.number, first.author, first.reason) == (1, "alice", "initial")
    assert first.created_at == T0
    assert (
        first.summary
        == f"+{len(sample.departments)} departments, +{len(sample.resources)} resources"
    )
    assert (second.number, second.author) == (2, "bob")
    assert second.created_at == T0 + dt.timedelta(hours=1)
    assert second.summary == "-1 resource"


def test_version_returns_the_old_catalog(store: CatalogStore, sample: CatalogSpec) -> None:
    store.apply(sample, "alice", "initial")
    v2 = edit_item(sample, HOUSEHOLD, "household_address", length=300)
    store.apply(v2, "bob", "longer address")
    assert store.version(1) == sample
    assert store.version(2) == v2
    assert store.version(0) == CatalogSpec()
    with pytest.raises(
        VersionNotFoundError, match=r"version 3 does not exist \(versions are 1..2\)"
    ):
        store.version(3)


def test_rule_violation_stores_nothing(store: CatalogStore, sample: CatalogSpec) -> None:
    store.apply(sample, "alice", "initial")
    conditional = next(r for r in sample.resources if r.share_type == "conditional")
    broken = edit_resource(sample, conditional.code, share_conditions="")
    with pytest.raises(CatalogRuleError) as info:
        store.apply(broken, "bob", "oops")
    assert any(v.resource == conditional.code for v in info.value.violations)
    assert [v.number for v in store.history()] == [1]
    assert len(outbox(store)) == len(sample.departments) + len(sample.resources)


def test_incompatible_schema_change_is_refused(store: CatalogStore, sample: CatalogSpec) -> None:
    store.apply(sample, "alice", "initial")
    required = dataclasses.replace(FORMER_NAME, required=True)
    with pytest.raises(CatalogEvolutionError, match=r"former_name.*required") as info:
        store.apply(add_item(sample, HOUSEHOLD, required), "bob", "required item")
    assert [code for code, _ in info.value.problems] == [HOUSEHOLD]
    assert store.current() == sample


class FailsAfterWriting(CatalogStore):
    """Fault injection: the last step of apply fails after every other write was made."""

    def _write_outbox(self, conn: sa.Connection, *args: Any) -> None:
        super()._write_outbox(conn, *args)
        raise RuntimeError("injected failure after the outbox insert")


def test_failed_apply_rolls_back_version_rows_deadlines_and_outbox(
    store: CatalogStore, sample: CatalogSpec
) -> None:
    store.apply(sample, "alice", "initial")
    dl.record_trigger(store, "law-revised", "户籍管理条例修订", [POLICE], dt.date(2025, 9, 26))
    failing = FailsAfterWriting(store.dsn)
    try:
        with pytest.raises(RuntimeError, match="injected"):
            failing.apply(add_item(sample, HOUSEHOLD, FORMER_NAME), "bob", "never happens")
    finally:
        failing.dispose()
    assert store.current() == sample
    assert [v.number for v in store.history()] == [1]
    assert len(outbox(store)) == len(sample.departments) + len(sample.resources)
    assert count(store, ResourceRow) == len(sample.resources)
    with store.engine.connect() as conn:
        met = conn.execute(sa.select(TriggerDeadlineRow.met_by_version)).scalars().all()
    assert met == [None]


# --- the outbox ---------------------------------------------------------------------------------


def test_apply_writes_one_event_per_changed_resource_and_department(
    store: CatalogStore, sample: CatalogSpec
) -> None:
    store.apply(sample, "alice", "initial", now=T0)
    first = outbox(store)
    assert len(first) == len(sample.departments) + len(sample.resources)
    assert {r.key for r in first} == {r.code for r in sample.resources} | {
        f"department:{d.code}" for d in sample.departments
    }
    assert all(r.topic == "govbus.catalog" and r.published_at is None for r in first)
    household = next(r for r in first if r.key == HOUSEHOLD)
    assert household.value["op"] == "upsert" and household.value["version"] == 1
    assert household.value["resource"]["name"] == "人口户籍基本信息"

    gone = removable(sample)
    v2 = rename_department(
        add_item(drop_resource(sample, gone.code), HOUSEHOLD, FORMER_NAME),
        CIVIL,
        "常州市民政局（新）",
    )
    store.apply(v2, "bob", "v2", now=T0)
    new = outbox(store)[len(first) :]
    by_key = {r.key: r.value for r in new}
    assert set(by_key) == {HOUSEHOLD, gone.code, f"department:{CIVIL}"}
    assert by_key[HOUSEHOLD]["op"] == "upsert" and by_key[HOUSEHOLD]["version"] == 2
    assert by_key[HOUSEHOLD]["resource"]["items"][-1]["code"] == "former_name"
    assert by_key[gone.code] == {
        "op": "delete",
        "version": 2,
        "resource": by_key[gone.code]["resource"],
    }
    assert by_key[gone.code]["resource"]["code"] == gone.code
    assert by_key[f"department:{CIVIL}"]["department"]["name"] == "常州市民政局（新）"
    # Resource events follow the department events of the same version (ids increase).
    assert [r.id for r in new] == sorted(r.id for r in new)


# --- diff_specs (pure) --------------------------------------------------------------------------


def test_diff_specs_finds_added_removed_and_changed_resources(sample: CatalogSpec) -> None:
    gone = removable(sample)
    old = drop_resource(sample, HOUSEHOLD)
    new = drop_resource(
        edit_resource(sample, SOCIAL_AID, share_type="unconditional", share_conditions=""),
        gone.code,
    )
    diff = diff_specs(old, new)
    assert [r.code for r in diff.added_resources] == [HOUSEHOLD]
    assert [(r.code, r.provider) for r in diff.removed_resources] == [(gone.code, gone.provider)]
    (change,) = diff.changed_resources
    old_res = sample.resource(SOCIAL_AID)
    assert old_res is not None
    assert change.code == SOCIAL_AID
    fields = {c.field: (c.old, c.new) for c in change.changes}
    assert fields["share_type"] == (old_res.share_type, "unconditional")
    assert diff.departments_touched() == {POLICE, CIVIL, gone.provider}
    assert diff.summary() == "+1 resource, -1 resource, ~1 resource"


def test_diff_specs_finds_item_changes_with_old_and_new_values(sample: CatalogSpec) -> None:
    res = sample.resource(HOUSEHOLD)
    assert res is not None
    address = res.item("household_address")
    assert address is not None and address.length != 300
    old_len = address.length
    items = tuple(
        dataclasses.replace(i, length=300) if i.code == "household_address" else i
        for i in res.items
        if i.code != "gender"
    )
    new = edit_resource(sample, HOUSEHOLD, items=(*items, FORMER_NAME))
    (change,) = diff_specs(sample, new).changed_resources
    assert change.items_added == ("former_name",)
    assert change.items_removed == ("gender",)
    (item,) = change.items_changed
    assert item.code == "household_address"
    assert item.changes == (FieldChange("length", old_len, 300),)
    assert change.changes == ()
    lines = diff_specs(sample, new).render()
    assert lines[0] == f"~ resource {HOUSEHOLD} 人口户籍基本信息"
    assert "    + item former_name" in lines
    assert "    - item gender" in lines
    assert f"        length: {old_len} -> 300" in lines


def test_diff_specs_of_departments_and_item_order(sample: CatalogSpec) -> None:
    res = sample.resource(HOUSEHOLD)
    assert res is not None
    swapped = edit_resource(sample, HOUSEHOLD, items=(res.items[1], res.items[0], *res.items[2:]))
    renamed = rename_department(swapped, CIVIL, "民政局")
    diff = diff_specs(sample, renamed)
    (dept,) = diff.changed_departments
    assert dept.changes == (FieldChange("name", "常州市民政局", "民政局"),)
    (change,) = diff.changed_resources
    order = next(c for c in change.changes if c.field == "item_order")
    assert order.old[:2] == [res.items[0].code, res.items[1].code]
    assert order.new[:2] == [res.items[1].code, res.items[0].code]
    assert "~ department 1132040001410023XJ 民政局" in diff.render()
    assert diff_specs(sample, sample).is_empty
    assert diff_specs(sample, sample).render() == ["no change"]


def test_diff_survives_its_stored_json_form(sample: CatalogSpec) -> None:
    new = rename_department(
        add_item(drop_resource(sample, HOUSEHOLD), SOCIAL_ORG, FORMER_NAME), CIVIL, "x"
    )
    diff = diff_specs(sample, new)
    assert CatalogDiff.from_dict(diff.to_dict()) == diff


# --- article 9 deadlines ------------------------------------------------------------------------


def test_deadline_across_national_day_2025(store: CatalogStore) -> None:
    # 国办发明电〔2024〕12号: 国庆节、中秋节 October 1-8 off; Sunday September 28 and
    # Saturday October 11 are worked. From Friday September 26 (not counted): Sep 28, 29, 30
    # (1-3), Oct 9, 10, 11 (4-6), 13-17 (7-11), 20-23 (12-15).
    info = dl.record_trigger(
        store, "law-revised", "户籍管理条例修订", [POLICE], dt.date(2025, 9, 26)
    )
    assert info.deadlines == (dl.TriggerDeadline(POLICE, dt.date(2025, 10, 23), True, None),)
    (status,) = dl.deadlines(store, dt.date(2025, 10, 23))
    assert (status.due, status.certain, status.state) == (dt.date(2025, 10, 23), True, "open")


def test_deadline_across_spring_festival_2026(store: CatalogStore, sample: CatalogSpec) -> None:
    store.apply(sample, "alice", "initial")  # the department is named by its id
    # 2026 notice: 春节 February 15-23 off; Saturdays February 14 and 28 are worked. From
    # Tuesday February 10: Feb 11, 12, 13, 14 (1-4), 24-27 (5-8), 28 (9), Mar 2-6 (10-14), 9 (15).
    dl.record_trigger(store, "mandate-changed", "职能调整", ["cz-mzj"], dt.date(2026, 2, 10))
    (status,) = dl.deadlines(store, dt.date(2026, 3, 1))
    assert (status.department, status.due, status.certain) == (CIVIL, dt.date(2026, 3, 9), True)


def test_deadline_met_by_the_next_change_of_that_department_only(
    store: CatalogStore, sample: CatalogSpec
) -> None:
    store.apply(sample, "alice", "initial")
    # A change before the trigger does not count.
    v2 = edit_item(sample, HOUSEHOLD, "household_address", length=300)
    store.apply(v2, "bob", "before the trigger")
    trigger = dl.record_trigger(store, "law-revised", "修订", [POLICE, CIVIL], dt.date(2025, 9, 26))
    assert {s.state for s in dl.deadlines(store, dt.date(2025, 10, 1))} == {"open"}

    v3 = add_item(v2, HOUSEHOLD, FORMER_NAME)
    assert store.apply(v3, "bob", "article 9 update") == 3
    statuses = {s.department: s for s in dl.deadlines(store, dt.date(2025, 10, 24))}
    assert statuses[POLICE].state == "met" and statuses[POLICE].met_by_version == 3
    assert statuses[POLICE].trigger == trigger.id
    assert statuses[CIVIL].state == "overdue" and statuses[CIVIL].met_by_version is None
    # On the due day itself it is still open.
    on_due = {s.department: s.state for s in dl.deadlines(store, dt.date(2025, 10, 23))}
    assert on_due[CIVIL] == "open"
    # The department's own row counts as its catalog too.
    store.apply(rename_department(v3, CIVIL, "常州市民政局（更名）"), "carol", "rename")
    statuses = {s.department: s for s in dl.deadlines(store, dt.date(2025, 10, 24))}
    assert (statuses[CIVIL].state, statuses[CIVIL].met_by_version) == ("met", 4)
    assert statuses[POLICE].met_by_version == 3


def test_unknown_department_and_kind_are_refused(store: CatalogStore) -> None:
    with pytest.raises(ValueError, match=r"'nobody' is neither a department id"):
        dl.record_trigger(store, "law-revised", "x", ["nobody"], dt.date(2025, 9, 26))
    with pytest.raises(ValueError, match=r"unknown trigger kind 'whim'.*law-revised"):
        dl.record_trigger(store, "whim", "x", [POLICE], dt.date(2025, 9, 26))


def test_deadline_beyond_the_calendar_is_uncertain_until_the_notice_is_entered(
    store: CatalogStore, tmp_path: Path
) -> None:
    info = dl.record_trigger(store, "law-revised", "x", [POLICE], dt.date(2035, 3, 1))
    (deadline,) = info.deadlines
    # Counted Monday-Friday from Thursday 2035-03-01 and flagged, not presented as firm.
    assert (deadline.due, deadline.certain) == (dt.date(2035, 3, 22), False)
    assert deadline.reason is not None and "2035" in deadline.reason
    # Test data, not a real notice: 2035 entered with March 5-7 off and Saturday March 10 worked.
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text(
        "2035:\n  source: test\n  holidays: [2035-01-01, 2035-03-05..2035-03-07]\n"
        "  workdays: [2035-03-10]\n",
        encoding="utf-8",
    )
    (status,) = dl.deadlines(store, dt.date(2035, 3, 23), WorkdayCalendar(overrides))
    # Mar 2 (1), 8, 9, 10 (2-4), 12-16 (5-9), 19-23 (10-14), 26 (15).
    assert (status.due, status.certain, status.reason, status.state) == (
        dt.date(2035, 3, 26),
        True,
        None,
        "open",
    )
    without = tmp_path / "no-overrides.yaml"
    without.write_text("# no years entered\n", encoding="utf-8")
    (still,) = dl.deadlines(store, dt.date(2035, 3, 23), WorkdayCalendar(without))
    assert (still.due, still.certain, still.state) == (dt.date(2035, 3, 22), False, "overdue")
    assert still.reason == deadline.reason.replace(
        str(WorkdayCalendar().overrides_path), str(without)
    )
