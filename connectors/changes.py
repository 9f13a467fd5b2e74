"""Change capture by watermark: which rows changed since the last batch the broker acknowledged.

A front-end table carries an update-time column its business system sets on every insert and
update. The watermark is the (update time, primary key) of the last row published; the next
batch is the rows after it in that order::

    WHERE (t, k1, k2) > (:t, :k1, :k2) ORDER BY t, k1, k2 LIMIT :batch

spelled with AND/OR (``after``) so every dialect runs it (Oracle and 达梦 have no row-value
comparison). The key makes the order total: rows with equal update times are neither skipped
(a batch may end between two of them) nor repeated.

Deleted rows are found the same way in a delete log table (its time column and the deleted
row's key columns), or are rows whose soft-delete flag is set (they come with the changes:
setting the flag is an update).

The watermark is stored in the front-end database itself (``WatermarkStore``, table
``govbus_agent_watermark``) only after the broker acknowledged the batch: a crash between
publishing and storing publishes the batch again on restart, never loses it, and the
one-data-one-source key makes the repeat a no-op for consumers (same key, same value).

Caveat (docs/agent.md): a row whose transaction commits after a later-stamped row was
published is only seen if its update time is not behind the watermark; the business system
should stamp rows at commit (or the database's clock, in one writer), as is usual for 前置库.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from govbus.vocabulary.clock import CHINA_TZ

__all__ = [
    "WATERMARK_TABLE",
    "Watermark",
    "WatermarkStore",
    "after",
    "lag_seconds",
    "newest",
    "rows_after",
]

WATERMARK_TABLE = "govbus_agent_watermark"


@dataclass(frozen=True)
class Watermark:
    """The (update time, primary key) of the last row published from a stream of a table."""

    time: Any
    key: tuple[Any, ...]


def after(columns: Sequence[sa.ColumnElement[Any]], values: Sequence[Any]) -> Any:
    """``(c1, c2, …) > (v1, v2, …)`` in lexicographic order, with AND/OR only."""
    first, value = columns[0], values[0]
    if len(columns) == 1:
        return first > value
    return sa.or_(first > value, sa.and_(first == value, after(columns[1:], values[1:])))


def rows_after(
    conn: Connection,
    table: sa.Table,
    time_column: str,
    key_columns: Sequence[str],
    mark: Watermark | None,
    limit: int,
    columns: Sequence[str] = (),
) -> list[Mapping[str, Any]]:
    """Up to ``limit`` rows after ``mark`` (all from the start if None), in watermark order:
    ``columns`` and the time and key columns (every column if ``columns`` is empty). Rows
    without an update time are not changes the agent can place; they are never read."""
    order = [table.c[time_column], *(table.c[k] for k in key_columns)]
    wanted = dict.fromkeys([*columns, time_column, *key_columns]) if columns else None
    selected = [table.c[c] for c in wanted] if wanted else [table]
    query = sa.select(*selected).where(table.c[time_column].is_not(None)).order_by(*order)
    if mark is not None:
        query = query.where(after(order, [mark.time, *mark.key]))
    result = conn.execute(query.limit(limit))
    names = list(result.keys())
    # One fetch for the batch; plain dicts, as each row is read column by column.
    return [dict(zip(names, row, strict=True)) for row in result.all()]


def newest(conn: Connection, table: sa.Table, time_column: str) -> Any:
    """The newest update time in the table (None if it is empty)."""
    return conn.execute(sa.select(sa.func.max(table.c[time_column]))).scalar()


def lag_seconds(newest_time: Any, mark: Watermark | None) -> float:
    """How far the watermark is behind the newest row, in seconds (0 when caught up or when
    the update times are not date-times)."""
    if newest_time is None or mark is None:
        return 0.0
    if isinstance(newest_time, dt.datetime) and isinstance(mark.time, dt.datetime):
        if (newest_time.tzinfo is None) != (mark.time.tzinfo is None):
            return 0.0
        return max(0.0, (newest_time - mark.time).total_seconds())
    return 0.0


# --- storing watermarks -------------------------------------------------------------------------


def _dumped(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    return value


def _loaded(value: Any) -> Any:
    if isinstance(value, dict):
        (kind, text), *_ = value.items()
        if kind == "datetime":
            return dt.datetime.fromisoformat(text)
        if kind == "date":
            return dt.date.fromisoformat(text)
        if kind == "decimal":
            return decimal.Decimal(text)
        if kind == "hex":
            return bytes.fromhex(text)
    return value


class WatermarkStore:
    """Watermarks of one department's source agent, kept in the front-end database.

    One row per (department, stream): a stream is ``<table>`` (its changes) or
    ``<table>#deletes`` (its delete log).
    """

    def __init__(self, engine: Engine, department: str) -> None:
        self.engine = engine
        self.department = department
        self.table = sa.Table(
            WATERMARK_TABLE,
            sa.MetaData(),
            sa.Column("department", sa.String(64), primary_key=True),
            sa.Column("stream", sa.String(255), primary_key=True),
            sa.Column("watermark", sa.Text, nullable=False),
            sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        )
        self.table.create(engine, checkfirst=True)

    def get(self, stream: str) -> Watermark | None:
        with self.engine.connect() as conn:
            text = conn.execute(
                sa.select(self.table.c.watermark).where(
                    self.table.c.department == self.department, self.table.c.stream == stream
                )
            ).scalar()
        if text is None:
            return None
        data = json.loads(text)
        return Watermark(_loaded(data["time"]), tuple(_loaded(v) for v in data["key"]))

    def put(self, marks: dict[str, Watermark]) -> None:
        """Store the watermarks of several streams in one transaction."""
        now = dt.datetime.now(CHINA_TZ)
        with self.engine.begin() as conn:
            for stream, mark in marks.items():
                text = json.dumps(
                    {"time": _dumped(mark.time), "key": [_dumped(v) for v in mark.key]},
                    ensure_ascii=False,
                )
                where = sa.and_(
                    self.table.c.department == self.department, self.table.c.stream == stream
                )
                done = conn.execute(
                    self.table.update().where(where).values(watermark=text, stored_at=now)
                )
                if done.rowcount == 0:
                    conn.execute(
                        self.table.insert().values(
                            department=self.department, stream=stream, watermark=text,
                            stored_at=now,
                        )
                    )  # fmt: skip
