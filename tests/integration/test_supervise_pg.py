"""The violation ledger on PostgreSQL: the SQLite tests again, on a database of their own."""

from __future__ import annotations

import datetime as dt

import pytest

from govbus.catalog.store import CatalogStore
from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, load_yaml

# Collected here again, so each runs with this module's PostgreSQL ``store`` fixture.
from tests.unit.test_supervise_ledger import (  # noqa: F401
    NOW,
    test_database_detectors_find_overdue_deadlines_and_requests_and_see_them_clear,
    test_filters_by_department_kind_state_and_due_date,
    test_migration_0005_downgrades_and_upgrades_again,
    test_the_evaluation_and_its_reports_come_from_the_records_and_are_reproducible,
    test_the_same_episode_is_one_violation_and_conditions_reopen_after_closing,
    test_the_workflow_records_every_step_with_actor_time_and_an_outbox_row,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(pg_store: CatalogStore) -> CatalogStore:
    """The shared ``pg_store`` holding the sample catalog, stored a month before ``NOW``."""
    pg_store.apply(load_yaml(SAMPLE_CATALOG_PATH), "a", "x", now=NOW - dt.timedelta(days=30))
    return pg_store
