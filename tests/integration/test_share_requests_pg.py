"""Share requests on PostgreSQL: the core service tests again, and concurrent answers.

Each test gets a database of its own holding the sample catalog (plus a provincial department).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from govbus.catalog.model import OutboxRow
from govbus.catalog.store import CatalogStore
from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, load_yaml
from govbus.share.model import ShareEventRow, ShareGrantRow
from govbus.share.requests import ShareError, ShareRequests
from govbus.vocabulary.naming import SHARE_TOPIC
from govbus.vocabulary.workdays import WorkdayCalendar

# Collected here again, so each runs with this module's PostgreSQL ``store`` fixture.
from tests.unit.test_share_requests import (  # noqa: F401
    NOW,
    PROVINCIAL,
    REASON,
    submit,
    svc,
    test_a_denial_goes_to_negotiation_then_coordination_and_stops_there_for_city_departments,
    test_a_provincial_department_takes_it_to_the_steering_group,
    test_an_overdue_request_is_escalated_and_a_violation_recorded_once,
    test_approve_grants_until_the_end_of_the_validity_asked_for,
    test_every_event_has_its_outbox_row_and_refusals_write_nothing,
    test_grants_lists_only_valid_grants_for_the_reconciler,
    test_listings_filter_by_department_provider_state_and_deadline,
    test_metrics_are_derived_from_the_database,
    test_migrations_create_the_share_tables_the_model_declares,
    test_revoke_by_the_provider_or_the_operator_with_a_reason,
    test_submit_records_the_request_with_its_deadline_and_an_outbox_event,
    test_sweep_records_expired_grants_once,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(pg_store: CatalogStore) -> CatalogStore:
    """The shared ``pg_store`` holding the sample catalog plus a provincial department."""
    spec = load_yaml(SAMPLE_CATALOG_PATH)
    pg_store.apply(dataclasses.replace(spec, departments=(*spec.departments, PROVINCIAL)), "a", "x")
    return pg_store


def race(*calls: Callable[[], object]) -> list[object]:
    """Run the calls at once in threads; each result is its return value or its exception."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(n: int, call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            results[n] = call()
        except Exception as exc:
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n, c)) for n, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_concurrent_approvals_of_one_request_exactly_one_wins(store: CatalogStore) -> None:
    calendar = WorkdayCalendar()
    for round_ in range(5):
        # Two services as two provider sessions; the engine gives each thread a connection.
        a, b = ShareRequests(store, calendar), ShareRequests(store, calendar)
        rid = submit(a, dept=("cz-rsj", "cz-gaj", "cz-fgw", "cz-jyj", "cz-tjj")[round_])
        results = race(
            lambda a=a, rid=rid: a.approve(rid, "cz-mzj", now=NOW),  # type: ignore[misc]
            lambda b=b, rid=rid: b.approve(rid, "cz-mzj", now=NOW),  # type: ignore[misc]
        )
        errors = [r for r in results if isinstance(r, Exception)]
        assert len(errors) == 1, results
        assert isinstance(errors[0], ShareError)
        assert "not pending" in str(errors[0]) or "answered meanwhile" in str(errors[0])
        with store.connect() as conn:
            grants = conn.execute(
                sa.select(sa.func.count()).where(ShareGrantRow.request == rid)
            ).scalar_one()
            approvals = conn.execute(
                sa.select(sa.func.count()).where(
                    ShareEventRow.request == rid, ShareEventRow.kind == "approved"
                )
            ).scalar_one()
        assert (grants, approvals) == (1, 1)
    assert len(ShareRequests(store).grants(NOW)) == 5


def test_a_concurrent_approval_and_denial_leave_one_answer(store: CatalogStore) -> None:
    service = ShareRequests(store, WorkdayCalendar())
    rid = submit(service)
    results = race(
        lambda: service.approve(rid, "cz-mzj", now=NOW),
        lambda: service.deny(rid, "cz-mzj", REASON, now=NOW),
    )
    assert sum(isinstance(r, ShareError) for r in results) == 1, results
    state = service.request(rid).state
    assert state in ("approved", "denied")
    assert [e.kind for e in service.history(rid)] == ["submitted", state]
    with store.connect() as conn:
        outbox = conn.execute(
            sa.select(OutboxRow.value).where(OutboxRow.topic == SHARE_TOPIC).order_by(OutboxRow.id)
        ).scalars()
        assert [v["kind"] for v in outbox] == ["submitted", state]
