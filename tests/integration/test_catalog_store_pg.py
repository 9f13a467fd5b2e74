"""The catalog store's core tests again, on PostgreSQL: each test gets a database of its own.

Also here: two departments changing their catalogs at the same moment, in real concurrent
transactions.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from govbus.catalog.rules import CatalogRuleError
from govbus.catalog.store import CatalogStore
from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, load_yaml
from govbus.vocabulary.spec import CatalogSpec, InfoItem
from tests.integration.fixtures import pg_database
from tests.unit.test_catalog_departments import (  # noqa: F401
    CIVIL,
    DRIVING,
    POLICE,
    SOCIAL_AID,
    edit,
    own_part,
    resource,
    test_a_department_may_not_change_another_departments_resources,
    test_a_version_stores_what_changed_not_the_catalog,
    test_deadline_is_met_by_the_departments_own_change,
    test_department_file_without_its_record_keeps_it,
    test_department_import_replaces_only_its_own_resources,
    test_district_catalog_is_imported_and_the_city_is_the_union,
    test_district_may_not_drop_a_department_others_name,
    test_migration_turns_snapshots_into_deltas_and_back,
    test_new_department_adds_itself,
    test_part_history_and_as_of,
    test_removing_what_another_department_refers_to_is_refused,
    test_single_source_is_checked_across_departments_and_names_the_other,
)

# Collected here again, so each runs with this module's PostgreSQL ``store`` fixture.
from tests.unit.test_catalog_store import (  # noqa: F401
    test_apply_writes_one_event_per_changed_resource_and_department,
    test_deadline_across_national_day_2025,
    test_deadline_across_spring_festival_2026,
    test_deadline_beyond_the_calendar_is_uncertain_until_the_notice_is_entered,
    test_deadline_met_by_the_next_change_of_that_department_only,
    test_failed_apply_rolls_back_version_rows_deadlines_and_outbox,
    test_first_apply_is_version_1_with_normalised_rows,
    test_history_lists_author_reason_time_and_summary,
    test_incompatible_schema_change_is_refused,
    test_migrate_creates_the_tables_the_model_declares,
    test_migrate_twice_keeps_the_data,
    test_no_op_apply_makes_no_version,
    test_rule_violation_stores_nothing,
    test_second_apply_is_version_2_with_its_diff,
    test_unknown_department_and_kind_are_refused,
    test_version_returns_the_old_catalog,
)

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def sample() -> CatalogSpec:
    return load_yaml(SAMPLE_CATALOG_PATH)


@pytest.fixture
def fresh_store(pg_dsn: str) -> Iterator[CatalogStore]:
    """An unmigrated store on a database of its own (the migration tests start from here)."""
    with pg_database(pg_dsn) as dsn:
        s = CatalogStore(dsn)
        assert s.engine.dialect.name == "postgresql"
        try:
            yield s
        finally:
            s.dispose()


@pytest.fixture
def store(fresh_store: CatalogStore) -> CatalogStore:
    fresh_store.migrate()
    return fresh_store


def test_sql_users_can_ask_who_holds_what(store: CatalogStore, sample: CatalogSpec) -> None:
    store.apply(sample, "alice", "initial")
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select d.name, r.name, h.item from holder h "
                "join department d on d.code = h.department "
                "join resource r on r.code = h.resource order by 1, 2, 3"
            )
        ).all()
        # Entries are JSON the server can query, with Chinese stored as text, not \\u escapes.
        first_department = conn.execute(
            sa.text(
                "select body->>'name' from catalog_entry where kind = 'department' "
                "order by position limit 1"
            )
        ).scalar_one()
        raw = conn.execute(
            sa.text(
                "select body::text from catalog_entry where kind = 'department' "
                "order by position limit 1"
            )
        ).scalar_one()
    names = {d.code: d.name for d in sample.departments}
    expected = sorted(
        (names[h.department], r.name, item)
        for r in sample.resources
        for h in r.holders
        for item in h.items
    )
    assert [tuple(row) for row in rows] == expected
    assert first_department == sample.departments[0].name
    assert sample.departments[0].name in raw


# --- two departments at once ----------------------------------------------------------------


def _waiting_on_a_lock(store: CatalogStore) -> bool:
    with store.engine.connect() as conn:
        return bool(
            conn.execute(
                sa.text(
                    "select count(*) from pg_stat_activity "
                    "where datname = current_database() and wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )


def _at_once(
    first: CatalogStore,
    second: CatalogStore,
    changes: dict[str, tuple[CatalogStore, CatalogSpec, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    """Run both departments' imports in threads: the first holds its transaction open (after
    checking, before writing) until the second's transaction is waiting for it in the server."""
    inside, release = threading.Event(), threading.Event()
    write = CatalogStore._write_entries

    def held(self: CatalogStore, conn: sa.Connection, number: int, change: Any) -> None:
        if self is first:
            inside.set()
            release.wait(60)
        write(self, conn, number, change)

    monkeypatch.setattr(CatalogStore, "_write_entries", held)
    results: dict[str, Any] = {}

    def run(name: str) -> None:
        store, spec, department = changes[name]
        try:
            results[name] = store.apply(spec, name, "at once", department=department)
        except Exception as exc:  # the refusal is the result
            results[name] = exc

    names = list(changes)
    threads = [threading.Thread(target=run, args=(n,)) for n in names]
    threads[0].start()
    assert inside.wait(60), "the first import never got inside its transaction"
    threads[1].start()
    for _ in range(600):  # the second transaction really is concurrent: the server makes it wait
        if _waiting_on_a_lock(first):
            break
        time.sleep(0.05)
    else:
        release.set()
        pytest.fail("the second import never waited for the first")
    release.set()
    for t in threads:
        t.join(60)
    return results


def test_two_departments_changing_their_own_parts_at_once_both_succeed(
    store: CatalogStore, sample: CatalogSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.apply(sample, "operator", "initial")
    other = CatalogStore(store.dsn)
    try:
        police = edit(own_part(sample, POLICE), DRIVING, abstract="公安局的新摘要。")
        civil = edit(own_part(sample, CIVIL), SOCIAL_AID, abstract="民政局的新摘要。")
        results = _at_once(
            store,
            other,
            {"police": (store, police, POLICE), "civil": (other, civil, CIVIL)},
            monkeypatch,
        )
    finally:
        other.dispose()
    assert results == {"police": 2, "civil": 3}
    current = store.current()
    assert resource(current, DRIVING).abstract == "公安局的新摘要。"
    assert resource(current, SOCIAL_AID).abstract == "民政局的新摘要。"
    assert [v.scope for v in store.history()[1:]] == [
        f"department:{POLICE}",
        f"department:{CIVIL}",
    ]


def test_of_two_departments_claiming_the_same_item_at_once_the_later_is_refused(
    store: CatalogStore, sample: CatalogSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.apply(sample, "operator", "initial")
    pet = InfoItem(name="犬只登记证号", code="dog_licence_no", data_type="C", length=20)
    driving, aid = resource(sample, DRIVING), resource(sample, SOCIAL_AID)
    police = edit(own_part(sample, POLICE), DRIVING, items=(*driving.items, pet))
    civil = edit(own_part(sample, CIVIL), SOCIAL_AID, items=(*aid.items, pet))
    other = CatalogStore(store.dsn)
    try:
        results = _at_once(
            store,
            other,
            {"police": (store, police, POLICE), "civil": (other, civil, CIVIL)},
            monkeypatch,
        )
    finally:
        other.dispose()
    assert results["police"] == 2
    refused = results["civil"]
    assert isinstance(refused, CatalogRuleError), refused
    (v,) = refused.violations
    assert v.rule == "single-source" and v.item == "dog_licence_no"
    assert "常州市公安局 (1132040001410015XY)" in v.message and DRIVING in v.message
    assert store.latest_number() == 2
    assert resource(store.current(), SOCIAL_AID) == aid
    assert dataclasses.replace(resource(store.current(), DRIVING)) == resource(police, DRIVING)
