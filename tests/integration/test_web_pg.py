"""The console's accounts, audit and share-request pages on the real PostgreSQL (the same
flows tests/unit/test_web_console.py runs on SQLite), and migration 0004 up and down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from govbus.catalog.store import MIGRATIONS_DIR
from govbus.share.requests import ShareRequests
from tests.integration.fixtures import pg_database
from tests.unit.test_web_console import apply_for_employment
from tests.webconsole import PASSWORD, ConsoleWorld, make_world, post

pytestmark = pytest.mark.postgres


@pytest.fixture
def world(pg_dsn: str, tmp_path: Path) -> Iterator[ConsoleWorld]:
    with pg_database(pg_dsn) as dsn:
        made = make_world(tmp_path / "state", dsn)
        assert made.store.engine.dialect.name == "postgresql"
        try:
            yield made
        finally:
            made.store.dispose()


def test_accounts_and_audit_on_postgres(world: ConsoleWorld) -> None:
    accounts = world.accounts
    assert accounts.authenticate("rsj-approver", PASSWORD) is not None
    assert accounts.authenticate("rsj-approver", "nope-nope-nope") is None
    accounts.audit(accounts.all_accounts()[0], "test", "x", "ok", {"中文": "值"})
    (entry,) = accounts.audit_log(limit=1)
    assert entry.detail == {"中文": "值"} and entry.at.tzinfo is not None


def test_share_flow_and_refusals_on_postgres(world: ConsoleWorld) -> None:
    request_id = apply_for_employment(world)
    assert post(world.client("mzj-approver"), f"/requests/{request_id}/approve",
                {}).status_code == 403  # fmt: skip
    approver = world.client("rsj-approver")
    assert post(approver, f"/requests/{request_id}/deny", {"reason": "拒绝"}).status_code == 400
    assert post(approver, f"/requests/{request_id}/approve", {}).status_code == 303
    share = ShareRequests(world.store, coordinator=world.settings.share_coordinator)
    assert share.request(request_id).state == "approved"
    outcomes = {(e.username, e.action, e.outcome) for e in world.accounts.audit_log()}
    assert ("mzj-approver", "share.approve", "refused") in outcomes
    assert ("rsj-approver", "share.approve", "ok") in outcomes


def test_migration_0004_down_and_up(world: ConsoleWorld) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with world.store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0003")
    with world.store.engine.connect() as conn:
        assert "account" not in sa.inspect(conn).get_table_names()
    world.store.migrate()
    with world.store.engine.connect() as conn:
        assert {"account", "account_audit"} <= set(sa.inspect(conn).get_table_names())
