"""The sink's tables on SQLite and the real PostgreSQL: created from the resource's schema,
migrated additively, a breaking change refused with what to do; upserts and deletes by key."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.mapping import SinkTable, Where
from connectors.sink import TableWriter
from connectors.sink_tables import PROVENANCE, SchemaChangeError, ensure_table
from govbus.subscribe.consumer import Record
from govbus.vocabulary.spec import InfoItem, ResourceKey
from tests.factories import PROVIDER, person_resource
from tests.integration.fixtures import citizen_id, pg_database

pytestmark = pytest.mark.postgres

ITEMS = (
    InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),
    InfoItem("姓名", "citizen_name", "C", 50, required=True),
    InfoItem("月救助金额（元）", "subsidy", "Y"),
)
RESOURCE = person_resource(ITEMS)
SINK = SinkTable(RESOURCE.code, "rs_people", "work-reference", Where("m.yaml", 3, 5))
CST = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path, pg_dsn: str) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'frontend.db'}")
        yield engine
        engine.dispose()
        return
    with pg_database(pg_dsn) as dsn:
        engine = sa.create_engine(dsn)
        yield engine
        engine.dispose()


def test_created_then_migrated_additively(database: sa.Engine) -> None:
    table, added = ensure_table(database, SINK, RESOURCE)
    assert added == []
    assert [c.name for c in table.primary_key.columns] == ["citizen_id"]
    assert {"citizen_name", "subsidy", *PROVENANCE} <= set(table.c.keys())
    # The catalog adds an item: the column is added, nullable; nothing else changes.
    newer = dataclasses.replace(RESOURCE, items=(*ITEMS, InfoItem("联系电话", "phone", "C", 20)))
    table, added = ensure_table(database, SINK, newer)
    assert added == ["phone"] and table.c.phone.nullable
    assert ensure_table(database, SINK, newer)[1] == []  # idempotent


def test_breaking_changes_stop_the_sink_with_what_to_do(database: sa.Engine) -> None:
    ensure_table(database, SINK, RESOURCE)
    retyped = dataclasses.replace(
        RESOURCE, items=(ITEMS[0], dataclasses.replace(ITEMS[1], data_type="I"), ITEMS[2])
    )
    with pytest.raises(SchemaChangeError, match=r"column citizen_name is VARCHAR.*is now 整型"):
        ensure_table(database, SINK, retyped)
    rekeyed = dataclasses.replace(
        RESOURCE, key=ResourceKey(("citizen_id", "citizen_name"), "natural-person")
    )
    with pytest.raises(SchemaChangeError, match=r"its primary key is \(citizen_id\) but"):
        ensure_table(database, SINK, rekeyed)
    longer = dataclasses.replace(
        RESOURCE, items=(ITEMS[0], dataclasses.replace(ITEMS[1], length=80), ITEMS[2])
    )
    with pytest.raises(SchemaChangeError, match=r"holds 50 characters .* now has length 80"):
        ensure_table(database, SINK, longer)


def _record(n: int, name: str | None, offset: int) -> Record:
    value = None if name is None else {"citizen_id": citizen_id(n), "citizen_name": name,
                                       "subsidy": Decimal("10.5")}  # fmt: skip
    return Record(
        key=citizen_id(n), value=value, provider=PROVIDER, resource_code=RESOURCE.code,
        catalog_version=None if name is None else 3,
        event_time=None if name is None else dt.datetime(2026, 1, 1, tzinfo=CST),
        trace_id=None, partition=0, offset=offset,
    )  # fmt: skip


def test_upserts_and_deletes_by_key_in_one_transaction(database: sa.Engine) -> None:
    table, _ = ensure_table(database, SINK, RESOURCE)
    writer = TableWriter(database, SINK, RESOURCE, table, "rsj")
    for n in (1, 2, 3):
        writer.handle(_record(n, f"人{n}", n))
    writer.handle(_record(2, "改名", 4))  # the last of a key in a batch wins
    writer.commit()
    writer.handle(_record(3, None, 5))  # a tombstone
    writer.handle(_record(1, "再改", 6))
    writer.commit()
    writer.commit()  # nothing pending: nothing written
    assert writer.written == 5
    with database.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(table.c.citizen_id)).mappings().all()
    assert [(r["citizen_id"], r["citizen_name"]) for r in rows] == [
        (citizen_id(1), "再改"),
        (citizen_id(2), "改名"),
    ]
    assert rows[0]["govbus_provider"] == PROVIDER and rows[0]["govbus_catalog_version"] == 3
    assert rows[0]["subsidy"] == Decimal("10.50")
