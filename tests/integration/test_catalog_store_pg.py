"""The catalog store's core tests again, on PostgreSQL: each test gets a database of its own."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from govbus.catalog.store import CatalogStore
from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, load_yaml
from govbus.vocabulary.spec import CatalogSpec

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
def store(pg_store: CatalogStore) -> CatalogStore:
    """The shared ``pg_store``: an empty, migrated catalog on a database of the test's own."""
    return pg_store


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
        # Snapshots are JSON the server can query, with Chinese stored as text, not \\u escapes.
        first_department = conn.execute(
            sa.text("select snapshot->'departments'->0->>'name' from catalog_version")
        ).scalar_one()
        raw = conn.execute(sa.text("select snapshot::text from catalog_version")).scalar_one()
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
