"""Each department keeps its own part of the catalog, each district its own (articles 8-9).

Tests taking the ``store`` fixture run again on PostgreSQL (tests/integration/
test_catalog_store_pg.py). The migration from whole-catalog snapshots to deltas is tested here
on SQLite and there on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from govbus.catalog import deadlines as dl
from govbus.catalog.model import CatalogEntryRow, DepartmentRow, OutboxRow, ResourceRow
from govbus.catalog.rules import CatalogRuleError
from govbus.catalog.store import MIGRATIONS_DIR, CatalogStore
from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, load_yaml
from govbus.vocabulary.errors import UserError
from govbus.vocabulary.identifiers import org_code_check_char, uscc_check_char
from govbus.vocabulary.spec import CatalogSpec, Department, InfoItem, Resource, plain_fields

POLICE = "1132040001410015XY"  # 常州市公安局 (cz-gaj)
CIVIL = "1132040001410023XJ"  # 常州市民政局 (cz-mzj)
TN_CIVIL = "11320402014350271Q"  # 常州市天宁区民政局 (tn-mzj), district 320402
TN_MARKET = "11320402MB01739643"  # 常州市天宁区市场监督管理局 (tn-scjgj), no resources
HOUSEHOLD = "10101/1132040001410015XY-000001"  # 人口户籍基本信息 (police)
DRIVING = "30101/1132040001410015XY-000003"  # 机动车驾驶证信息 (police)
SOCIAL_AID = "20201/1132040001410023XJ-000002"  # 社会救助对象信息 (civil)
ELDERLY = "31101/11320402014350271Q-000001"  # 天宁区居家养老服务对象信息 (tn-mzj)
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


def own_part(spec: CatalogSpec, code: str) -> CatalogSpec:
    """A department's file: its record and the resources it provides."""
    dept = spec.department(code)
    assert dept is not None
    return CatalogSpec((dept,), tuple(r for r in spec.resources if r.provider == code))


def edit(spec: CatalogSpec, code: str, **changes: Any) -> CatalogSpec:
    assert spec.resource(code) is not None
    return dataclasses.replace(
        spec,
        resources=tuple(
            dataclasses.replace(r, **changes) if r.code == code else r for r in spec.resources
        ),
    )


def resource(spec: CatalogSpec, code: str) -> Resource:
    found = spec.resource(code)
    assert found is not None
    return found


def department(spec: CatalogSpec, code: str) -> Department:
    found = spec.department(code)
    assert found is not None
    return found


def outbox_keys(store: CatalogStore) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(OutboxRow.key).order_by(OutboxRow.id)).scalars())


# --- a department's change ----------------------------------------------------------------------


def test_department_import_replaces_only_its_own_resources(
    store: CatalogStore, sample: CatalogSpec
) -> None:
    store.apply(sample, "operator", "initial", now=T0)
    events_before = len(outbox_keys(store))
    mine = edit(own_part(sample, POLICE), DRIVING, abstract="机动车驾驶证的核发、换证、注销信息。")
    assert store.apply(mine, "police maintainer", "abstract", department="cz-gaj") == 2
    expected = edit(sample, DRIVING, abstract="机动车驾驶证的核发、换证、注销信息。")
    assert store.current() == expected  # the city's catalog: everyone else's part untouched
    (v2,) = [v for v in store.history() if v.number == 2]
    assert v2.scope == f"department:{POLICE}" and v2.departments == (POLICE,)
    assert v2.summary == "~1 resource"
    assert outbox_keys(store)[events_before:] == [DRIVING]  # one event per changed resource
    assert store.version(1) == sample
    # The same file again changes nothing.
    assert store.apply(mine, "police maintainer", "again", department=POLICE) == 2


def test_a_version_stores_what_changed_not_the_catalog(
    store: CatalogStore, sample: CatalogSpec
) -> None:
    store.apply(sample, "operator", "initial", now=T0)
    mine = edit(own_part(sample, POLICE), DRIVING, abstract="新摘要。")
    store.apply(mine, "police", "abstract", department=POLICE)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(CatalogEntryRow.code, CatalogEntryRow.until).where(CatalogEntryRow.since == 2)
        ).all()
        ended = conn.execute(
            sa.select(CatalogEntryRow.code).where(CatalogEntryRow.until == 2)
        ).all()
    assert [tuple(r) for r in rows] == [(DRIVING, None)]
    assert [tuple(r) for r in ended] == [(DRIVING,)]


def test_department_file_without_its_record_keeps_it(
    store: CatalogStore, sample: CatalogSpec
) -> None:
    store.apply(sample, "operator", "initial")
    resources_only = CatalogSpec((), own_part(sample, CIVIL).resources)
    assert store.apply(resources_only, "civil", "same", department="cz-mzj") == 1
    fewer = CatalogSpec((), tuple(r for r in resources_only.resources if r.code != SOCIAL_AID))
    # 社会救助对象信息 is related to nothing: the department may withdraw it.
    assert store.apply(fewer, "civil", "withdrawn", department=CIVIL) == 2
    assert store.current().resource(SOCIAL_AID) is None
    assert store.current().department(CIVIL) == sample.department(CIVIL)


def test_a_department_may_not_change_another_departments_resources(
    store: CatalogStore, sample: CatalogSpec
) -> None:
    store.apply(sample, "operator", "initial")
    theirs = CatalogSpec(
        own_part(sample, POLICE).departments,
        (*own_part(sample, POLICE).resources, resource(sample, SOCIAL_AID)),
    )
    with pytest.raises(UserError, match=r"provided by 常州市民政局 \(1132040001410023XJ\).*cz-gaj"):
        store.apply(theirs, "police", "overreach", department=POLICE)
    renamed = dataclasses.replace(department(sample, CIVIL), name="民政局（改）")
    other_record = CatalogSpec((renamed, department(sample, POLICE)), ())
    with pytest.raises(UserError, match=r"cz-mzj.*differs from the catalog in name"):
        store.apply(other_record, "police", "overreach", department=POLICE)
    assert store.latest_number() == 1
    # Other departments as the catalog has them may stay in the file (e.g. holders, to read).
    readable = store.part(department=POLICE)
    assert {d.code for d in readable.departments} > {POLICE}
    assert store.apply(readable, "police", "same", department=POLICE) == 1


def test_single_source_is_checked_across_departments_and_names_the_other(
    store: CatalogStore, sample: CatalogSpec
) -> None:
    store.apply(sample, "operator", "initial")
    aid = resource(sample, SOCIAL_AID)
    claim = InfoItem(name="户籍地址", code="household_address", data_type="C", length=200)
    mine = edit(own_part(sample, CIVIL), SOCIAL_AID, items=(*aid.items, claim))
    with pytest.raises(CatalogRuleError) as caught:
        store.apply(mine, "civil", "claims an item of the police", department=CIVIL)
    (v,) = caught.value.violations
    assert v.rule == "single-source" and v.resource == SOCIAL_AID
    assert "常州市公安局 (1132040001410015XY)" in v.message and HOUSEHOLD in v.message
    assert store.latest_number() == 1


def test_removing_what_another_department_refers_to_is_refused(
    store: CatalogStore, sample: CatalogSpec
) -> None:
    store.apply(sample, "operator", "initial")
    without = CatalogSpec(
        own_part(sample, POLICE).departments,
        tuple(r for r in own_part(sample, POLICE).resources if r.code != HOUSEHOLD),
    )
    with pytest.raises(CatalogRuleError) as caught:
        store.apply(without, "police", "withdraw", department=POLICE)
    messages = [v.message for v in caught.value.violations]
    assert all(v.rule == "related-exists" for v in caught.value.violations)
    assert any("常州市卫生健康委员会" in m and HOUSEHOLD in m for m in messages), messages
    assert store.current() == sample


def test_new_department_adds_itself(store: CatalogStore, sample: CatalogSpec) -> None:
    store.apply(sample, "operator", "initial")
    new = Department("tn-jyj", new_uscc("320402", "01435099"), "天宁区教育局", "district", "320402")
    assert store.apply(CatalogSpec((new,), ()), "tn", "new office", department="tn-jyj") == 2
    assert store.current().department(new.code) == new
    with pytest.raises(UserError, match="neither in the catalog nor in the file"):
        store.apply(CatalogSpec(), "x", "y", department="tn-nobody")


def new_uscc(region: str, org8: str) -> str:
    """A valid 统一社会信用代码 of an organ (11) in ``region``."""
    first17 = f"11{region}{org8}{org_code_check_char(org8)}"
    return first17 + uscc_check_char(first17)


# --- a district's catalog -----------------------------------------------------------------------


def district_part(spec: CatalogSpec, region: str) -> CatalogSpec:
    depts = tuple(d for d in spec.departments if d.region == region)
    codes = {d.code for d in depts}
    return CatalogSpec(depts, tuple(r for r in spec.resources if r.provider in codes))


def test_district_catalog_is_imported_and_the_city_is_the_union(
    store: CatalogStore, sample: CatalogSpec
) -> None:
    store.apply(sample, "operator", "initial")
    tianning = district_part(sample, "320402")
    assert {d.code for d in tianning.departments} == {TN_CIVIL, TN_MARKET}
    changed = edit(
        dataclasses.replace(
            tianning, departments=tuple(d for d in tianning.departments if d.code != TN_MARKET)
        ),
        ELDERLY,
        abstract="天宁区居家养老服务对象及补贴信息。",
    )
    assert store.apply(changed, "天宁区大数据", "district catalog", district="320402") == 2
    city = store.current()
    assert city.department(TN_MARKET) is None  # left out of the district's file: removed
    assert resource(city, ELDERLY).abstract == "天宁区居家养老服务对象及补贴信息。"
    assert city.for_region("320412") == sample.for_region("320412")
    assert city.for_region("320400") == sample.for_region("320400")
    (v2,) = [v for v in store.history() if v.number == 2]
    assert v2.scope == "district:320402"
    assert store.part(district="320402").resources == changed.resources


def test_district_may_not_drop_a_department_others_name(
    store: CatalogStore, sample: CatalogSpec
) -> None:
    store.apply(sample, "operator", "initial")
    tianning = district_part(sample, "320402")
    only_market = CatalogSpec((department(sample, TN_MARKET),), ())
    with pytest.raises(CatalogRuleError) as caught:
        store.apply(only_market, "tn", "drop 民政局", district="320402")
    messages = " ".join(v.message for v in caught.value.violations)
    assert "holder 11320402014350271Q would no longer be a catalog department" in messages
    assert "常州市公安局" in messages  # the department whose resource names it
    # A city department's resource in a district file is refused.
    with pytest.raises(UserError, match="not a department of district 320402"):
        store.apply(
            CatalogSpec(tianning.departments, (resource(sample, HOUSEHOLD),)),
            "tn",
            "x",
            district="320402",
        )


# --- reading the parts and the past -------------------------------------------------------------


def test_part_history_and_as_of(store: CatalogStore, sample: CatalogSpec) -> None:
    store.apply(sample, "operator", "initial", now=T0)
    mine = edit(own_part(sample, POLICE), DRIVING, abstract="新摘要。")
    store.apply(mine, "police", "abstract", department=POLICE, now=T0 + dt.timedelta(days=3))
    part = store.part(department="cz-gaj")
    assert part.departments[0].code == POLICE
    assert [r.code for r in part.resources] == [r.code for r in mine.resources]
    holders = {h.department for r in part.resources for h in r.holders}
    assert holders <= {d.code for d in part.departments}  # the file reads on its own
    assert store.part(department=POLICE, version=1) == dataclasses.replace(
        part, resources=own_part(sample, POLICE).resources
    )
    assert [v.number for v in store.history(department="cz-gaj")] == [1, 2]
    assert [v.number for v in store.history(department=CIVIL)] == [1]
    assert store.as_of(T0 + dt.timedelta(days=1)) == sample
    assert store.as_of(T0 + dt.timedelta(days=4)) == store.current()
    assert store.as_of(T0 - dt.timedelta(days=1)) == CatalogSpec()


def test_deadline_is_met_by_the_departments_own_change(
    store: CatalogStore, sample: CatalogSpec
) -> None:
    store.apply(sample, "operator", "initial", now=T0)
    dl.record_trigger(
        store, "law-revised", "户籍管理条例修订", [POLICE, CIVIL], dt.date(2025, 9, 2)
    )
    mine = edit(own_part(sample, POLICE), DRIVING, abstract="新摘要。")
    number = store.apply(mine, "police", "per the revision", department=POLICE)
    states = {d.department: d for d in dl.deadlines(store, dt.date(2025, 9, 10))}
    assert states[POLICE].state == "met" and states[POLICE].met_by_version == number
    assert states[CIVIL].state == "open"
    by_district = dl.deadlines(store, dt.date(2025, 9, 10), district="320400")
    assert {d.department for d in by_district} == {POLICE, CIVIL}
    assert dl.deadlines(store, dt.date(2025, 9, 10), district="320402") == []
    (civil,) = dl.deadlines(store, dt.date(2025, 9, 10), department="cz-mzj")
    assert civil.department_name == "常州市民政局" and civil.region == "320400"


# --- the migration from snapshots to deltas -----------------------------------------------------


def alembic(store: CatalogStore, action: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        getattr(command, action)(config, revision)


def snapshot_versions(sample: CatalogSpec) -> list[CatalogSpec]:
    v2 = edit(sample, DRIVING, abstract="新摘要。")
    v3 = dataclasses.replace(v2, resources=tuple(r for r in v2.resources if r.code != SOCIAL_AID))
    return [sample, v2, v3]


def test_migration_turns_snapshots_into_deltas_and_back(
    fresh_store: CatalogStore, sample: CatalogSpec
) -> None:
    store = fresh_store
    store.migrate("0002")  # a database as the snapshot-per-version code left it
    versions = snapshot_versions(sample)
    table = sa.table(
        "catalog_version",
        sa.column("number"),
        sa.column("author"),
        sa.column("created_at"),
        sa.column("reason"),
        sa.column("snapshot", sa.JSON),
        sa.column("diff", sa.JSON),
    )
    with store.engine.begin() as conn:
        for n, spec in enumerate(versions, start=1):
            conn.execute(
                sa.insert(table),
                {
                    "number": n,
                    "author": "alice",
                    "created_at": T0 + dt.timedelta(days=n),
                    "reason": f"v{n}",
                    "snapshot": spec.to_dict(),
                    "diff": {},
                },
            )
        # The old code kept the normalised tables of the current catalog, as the new one does.
        conn.execute(sa.insert(DepartmentRow), [plain_fields(d) for d in versions[-1].departments])
        CatalogStore._insert_resources(list(versions[-1].resources), conn)
    store.migrate()
    for n, spec in enumerate(versions, start=1):
        assert store.version(n) == spec
    assert store.current() == versions[-1]
    history = store.history()
    assert history[1].departments == (POLICE,) and history[2].departments == (CIVIL,)
    with store.engine.connect() as conn:
        entries = conn.execute(sa.select(sa.func.count()).select_from(CatalogEntryRow))
        # Version 1 in full, then one entry for the changed resource; a removal adds none.
        assert entries.scalar_one() == len(sample.departments) + len(sample.resources) + 1
    # The normalised tables were already current; the next change works on the new schema.
    mine = edit(own_part(versions[-1], POLICE), DRIVING, abstract="再改。")
    assert store.apply(mine, "police", "after the migration", department=POLICE) == 4
    alembic(store, "downgrade", "0002")
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.number, table.c.snapshot).order_by("number")).all()
    assert [CatalogSpec.from_dict(r.snapshot) for r in rows[:3]] == versions
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ResourceRow)).scalar_one()


@pytest.fixture
def fresh_store(tmp_path: Path) -> Iterator[CatalogStore]:
    s = CatalogStore(f"sqlite:///{tmp_path}/db/fresh.db")
    yield s
    s.dispose()
