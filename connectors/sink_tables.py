"""The sink's tables: a resource's schema as a front-end table, created or migrated additively.

A resource (or its public view) becomes a table with one column per info item, named by the
item code (or the mapping's ``columns`` rename), the one-data-one-source key items as the
primary key, and four provenance columns:

    govbus_provider             统一社会信用代码 of the providing department
    govbus_catalog_version      the catalog version the record was written under
    govbus_event_time           the record's event time (when it changed at the provider)
    govbus_under_verification   true while the record has an open dispute (article 19);
                                NULL when the sink does not read the verification status

SQL types by data type: C ``VARCHAR(length)`` (TEXT without a length; a key column 255),
M TEXT, N/B/F double, Y ``NUMERIC(18, 2)``, I BIGINT, D DATE, T TIMESTAMP WITH TIME ZONE,
L BOOLEAN, G binary.

When the table exists it is migrated, additively only (Alembic's operations, so each dialect
gets its own ALTER TABLE): a missing column is added (nullable). A breaking difference stops
the sink before it reads anything, saying what to do (``SchemaChangeError``): a different
primary key, a column whose type no longer fits its item (e.g. text became a number), a text
column shorter than the item's length. Columns the resource no longer has are left alone
(NULL from then on).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy.engine import Engine

from connectors.database import FEEDS, category, reflect
from connectors.mapping import SinkTable
from govbus.vocabulary.errors import Conflict
from govbus.vocabulary.schemas import MONEY_PRECISION, MONEY_SCALE
from govbus.vocabulary.spec import DATA_TYPE_NAMES, InfoItem, Resource

__all__ = ["PROVENANCE", "SchemaChangeError", "desired_table", "ensure_table"]

PROVENANCE = (
    "govbus_provider",
    "govbus_catalog_version",
    "govbus_event_time",
    "govbus_under_verification",
)
_KEY_TEXT_LENGTH = 255


class SchemaChangeError(Conflict):
    """The existing table cannot take the resource's schema without a breaking change."""


def _sql_type(item: InfoItem, is_key: bool) -> sa.types.TypeEngine[Any]:
    kind = item.data_type
    if kind == "C":
        length = item.length or (_KEY_TEXT_LENGTH if is_key else None)
        return sa.String(length) if length else sa.Text()
    types: dict[str, sa.types.TypeEngine[Any]] = {
        "M": sa.Text(),
        "N": sa.Double(),
        "B": sa.Double(),
        "F": sa.Double(),
        "Y": sa.Numeric(MONEY_PRECISION, MONEY_SCALE),
        "I": sa.BigInteger(),
        "D": sa.Date(),
        "T": sa.DateTime(timezone=True),
        "L": sa.Boolean(),
        "G": sa.LargeBinary(),
    }
    return types[kind]


def desired_table(sink: SinkTable, resource: Resource) -> sa.Table:
    """The table the sink keeps for ``resource``."""
    columns: list[sa.Column[Any]] = []
    for item in resource.items:
        is_key = item.code in resource.key.items
        columns.append(
            sa.Column(
                sink.column(item.code),
                _sql_type(item, is_key),
                primary_key=is_key,
                nullable=not is_key,
                comment=item.name,
            )
        )
    columns += [
        sa.Column("govbus_provider", sa.String(18)),
        sa.Column("govbus_catalog_version", sa.Integer()),
        sa.Column("govbus_event_time", sa.DateTime(timezone=True)),
        sa.Column("govbus_under_verification", sa.Boolean()),
    ]
    return sa.Table(sink.table, sa.MetaData(), *columns, comment=resource.name)


def ensure_table(engine: Engine, sink: SinkTable, resource: Resource) -> tuple[sa.Table, list[str]]:
    """Create the table, or migrate it additively; the table and the columns added."""
    wanted = desired_table(sink, resource)
    existing = reflect(engine, sink.table)
    if existing is None:
        wanted.create(engine)
        return wanted, []
    what = f"sink table {sink.table} (resource {resource.code} {resource.name})"
    have_key = [c.name for c in existing.primary_key.columns]
    want_key = [c.name for c in wanted.primary_key.columns]
    if sorted(have_key) != sorted(want_key):
        raise SchemaChangeError(
            f"{what}: its primary key is ({', '.join(have_key) or 'none'}) but the resource's "
            f"key is ({', '.join(want_key)}): a breaking change; rename or drop the table and "
            "let the sink create it again (it then reads the resource from the start)"
        )
    items = {sink.column(i.code): i for i in resource.items}
    missing = []
    for column in wanted.columns:
        if column.name not in existing.c:
            missing.append(column)
            continue
        item = items.get(column.name)
        if item is not None:
            _check_fits(what, existing.c[column.name], item)
    if missing:
        with engine.begin() as conn:
            ops = Operations(MigrationContext.configure(conn))
            for column in missing:
                ops.add_column(
                    sink.table, sa.Column(column.name, column.type, nullable=True,
                                          comment=column.comment)
                )  # fmt: skip
    table = reflect(engine, sink.table)
    assert table is not None
    return table, [c.name for c in missing]


def _check_fits(what: str, column: sa.Column[Any], item: InfoItem) -> None:
    kind = category(column.type)
    fits = kind is not None and item.data_type in FEEDS[kind]
    if fits and kind == "integer" and item.data_type not in ("I", "L"):
        fits = False  # a number or text item would lose its fraction or letters
    if fits and kind == "text" and item.data_type not in ("C", "M"):
        fits = False  # the sink writes dates, times and bytes as such, not as text
    if not fits:
        raise SchemaChangeError(
            f"{what}: column {column.name} is {column.type} but item {item.code} ({item.name}) "
            f"is now {DATA_TYPE_NAMES[item.data_type]} ({item.data_type}): a breaking change; "
            "migrate the column by hand (or drop the table to have it created again)"
        )
    length = getattr(column.type, "length", None)
    if item.data_type == "C" and item.length and length and length < item.length:
        raise SchemaChangeError(
            f"{what}: column {column.name} holds {length} characters but item {item.code} "
            f"({item.name}) now has length {item.length}: widen the column by hand"
        )
