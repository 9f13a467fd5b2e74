"""Catalog versions as deltas: one row per changed department or resource, not a snapshot.

Each version used to store the whole catalog (``catalog_version.snapshot``), ~70 MB per version
for a 10,000-resource city. From here on a version stores only what changed: ``catalog_entry``
holds every department and resource as it was from version ``since`` until the version that
changed or removed it (``until``, NULL while current), so any version is the entries valid at it.
``catalog_version`` gains the change's ``scope`` (the city, a department or a district) and the
codes of the departments whose catalog it changed; ``info_item.code`` gets an index (who else
declares this item, for one data one source across departments).

Upgrading replays the stored snapshots one at a time into entries and drops the snapshot column;
downgrading rebuilds every snapshot from the entries.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than taken from govbus.catalog.model (see 0001).
USCC = sa.String(18)
RESOURCE_CODE = sa.String(40)

version_table = sa.table(
    "catalog_version",
    sa.column("number", sa.Integer),
    sa.column("snapshot", sa.JSON),
    sa.column("scope", sa.Text),
    sa.column("departments", sa.JSON),
)
entry_table = sa.table(
    "catalog_entry",
    sa.column("kind", sa.String),
    sa.column("code", sa.String),
    sa.column("owner", sa.String),
    sa.column("position", sa.Integer),
    sa.column("since", sa.Integer),
    sa.column("until", sa.Integer),
    sa.column("body", sa.JSON),
)


# Columns are added and dropped in place (SQLite 3.35+ does both), not by batch mode: batch mode
# copies catalog_version to a new table and drops the old one, which the rows referring to it
# (deadlines, entries) refuse while foreign keys are on.


def upgrade() -> None:
    op.create_table(
        "catalog_entry",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("code", RESOURCE_CODE, nullable=False),
        sa.Column("owner", USCC, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("since", sa.Integer, sa.ForeignKey("catalog_version.number"), nullable=False),
        sa.Column("until", sa.Integer, sa.ForeignKey("catalog_version.number"), nullable=True),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_index("ix_catalog_entry_code", "catalog_entry", ["kind", "code", "until"])
    op.create_index("ix_catalog_entry_owner", "catalog_entry", ["owner", "until"])
    op.create_index("ix_catalog_entry_since", "catalog_entry", ["since"])
    op.create_index("ix_info_item_code", "info_item", ["code"])
    op.add_column(
        "catalog_version",
        sa.Column("scope", sa.Text, nullable=False, server_default=sa.text("'city'")),
    )
    op.add_column(
        "catalog_version",
        sa.Column("departments", sa.JSON, nullable=False, server_default=sa.text("'[]'")),
    )
    _snapshots_to_entries(op.get_bind())
    op.drop_column("catalog_version", "snapshot")


def _entries_of(snapshot: dict[str, Any]) -> dict[tuple[str, str], tuple[str, int, Any]]:
    """(kind, code) -> (owner, position, body) of every department and resource."""
    out: dict[tuple[str, str], tuple[str, int, Any]] = {}
    for n, d in enumerate(snapshot.get("departments", [])):
        out[("department", d["code"])] = (d["code"], n, d)
    for n, r in enumerate(snapshot.get("resources", [])):
        out[("resource", r["code"])] = (r["provider"], n, r)
    return out


def _snapshots_to_entries(conn: sa.Connection) -> None:
    numbers = [
        row.number
        for row in conn.execute(sa.select(version_table.c.number).order_by(version_table.c.number))
    ]
    current: dict[tuple[str, str], dict[str, Any]] = {}  # the open entry of each (kind, code)
    done: list[dict[str, Any]] = []
    for number in numbers:
        # One snapshot in memory at a time: they are the whole catalog each.
        snapshot = conn.execute(
            sa.select(version_table.c.snapshot).where(version_table.c.number == number)
        ).scalar_one()
        entries = _entries_of(snapshot or {})
        touched: set[str] = set()
        for key, entry in list(current.items()):
            now = entries.get(key)
            if now is None or now[2] != entry["body"]:
                entry["until"] = number
                done.append(entry)
                del current[key]
                touched.add(entry["owner"])
        for key, (owner, position, body) in entries.items():
            if key not in current:
                current[key] = {
                    "kind": key[0],
                    "code": key[1],
                    "owner": owner,
                    "position": position,
                    "since": number,
                    "until": None,
                    "body": body,
                }
                touched.add(owner)
        conn.execute(
            sa.update(version_table)
            .where(version_table.c.number == number)
            .values(departments=sorted(touched))
        )
        if len(done) >= 1000:
            conn.execute(sa.insert(entry_table), done)
            done = []
    rows = done + list(current.values())
    if rows:
        conn.execute(sa.insert(entry_table), rows)


def downgrade() -> None:
    op.add_column(
        "catalog_version",
        sa.Column("snapshot", sa.JSON, nullable=False, server_default=sa.text("'{}'")),
    )
    conn = op.get_bind()
    numbers = [
        row.number
        for row in conn.execute(sa.select(version_table.c.number).order_by(version_table.c.number))
    ]
    e = entry_table.c
    for number in numbers:
        rows = conn.execute(
            sa.select(e.kind, e.position, e.code, e.body)
            .where(e.since <= number, sa.or_(e.until.is_(None), e.until > number))
            .order_by(e.kind, e.position, e.code)
        ).all()
        snapshot = {
            "departments": [r.body for r in rows if r.kind == "department"],
            "resources": [r.body for r in rows if r.kind == "resource"],
        }
        conn.execute(
            sa.update(version_table)
            .where(version_table.c.number == number)
            .values(snapshot=snapshot)
        )
    op.drop_column("catalog_version", "departments")
    op.drop_column("catalog_version", "scope")
    op.drop_index("ix_info_item_code", table_name="info_item")
    for index in ("ix_catalog_entry_since", "ix_catalog_entry_owner", "ix_catalog_entry_code"):
        op.drop_index(index, table_name="catalog_entry")
    op.drop_table("catalog_entry")
