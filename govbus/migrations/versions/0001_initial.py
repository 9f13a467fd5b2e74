"""The catalog store: current catalog, versions, article 9 deadlines and the event outbox.

Revision ID: 0001
Revises:
Create Date: 2026-05-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than taken from govbus.catalog.model: a migration must keep creating what
# it created when it was written, whatever the model later becomes.
USCC = sa.String(18)
RESOURCE_CODE = sa.String(40)
ITEM_CODE = sa.String(63)
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "department",
        sa.Column("code", USCC, primary_key=True),
        sa.Column("id", sa.String(63), nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("region", sa.String(6), nullable=False),
        sa.Column("parent", USCC, nullable=True),
    )
    op.create_table(
        "resource",
        sa.Column("code", RESOURCE_CODE, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("provider", USCC, sa.ForeignKey("department.code"), nullable=False),
        sa.Column("classification", sa.String(16), nullable=False),
        sa.Column("abstract", sa.Text, nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("category", sa.JSON, nullable=False),
        sa.Column("share_type", sa.String(16), nullable=False),
        sa.Column("update_cycle", sa.String(16), nullable=False),
        sa.Column("publish_date", sa.Date, nullable=False),
        sa.Column("share_conditions", sa.Text, nullable=False),
        sa.Column("share_methods", sa.JSON, nullable=False),
        sa.Column("purposes", sa.JSON, nullable=False),
        sa.Column("open_to_public", sa.Boolean, nullable=False),
        sa.Column("open_conditions", sa.Text, nullable=False),
        sa.Column("related", sa.JSON, nullable=False),
        sa.Column("base_category", sa.String(32), nullable=True),
        sa.Column("lead_department", USCC, nullable=True),
        sa.Column("legal_basis", sa.Text, nullable=False),
        sa.Column("key_subject_type", sa.String(32), nullable=False),
        sa.Column("key_identifier", sa.Text, nullable=True),
    )
    op.create_index("ix_resource_provider", "resource", ["provider"])
    op.create_table(
        "info_item",
        sa.Column(
            "resource",
            RESOURCE_CODE,
            sa.ForeignKey("resource.code", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("code", ITEM_CODE, primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("data_type", sa.String(1), nullable=False),
        sa.Column("length", sa.Integer, nullable=True),
        sa.Column("required", sa.Boolean, nullable=False),
        sa.Column("base_item", sa.Boolean, nullable=False),
        sa.Column("sensitivity", sa.String(16), nullable=False),
        sa.Column("shareable_to_all", sa.Boolean, nullable=False),
        sa.Column("mask", sa.String(16), nullable=False),
        sa.Column("compare", sa.String(16), nullable=False),
        sa.Column("tolerance", sa.Float, nullable=True),
    )
    op.create_table(
        "resource_key_item",
        sa.Column(
            "resource",
            RESOURCE_CODE,
            sa.ForeignKey("resource.code", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("item", ITEM_CODE, primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_table(
        "holder",
        sa.Column(
            "resource",
            RESOURCE_CODE,
            sa.ForeignKey("resource.code", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("department", USCC, sa.ForeignKey("department.code"), primary_key=True),
        sa.Column("item", ITEM_CODE, primary_key=True),
    )
    op.create_index("ix_holder_department", "holder", ["department"])
    op.create_table(
        "catalog_version",
        sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("snapshot", sa.JSON, nullable=False),
        sa.Column("diff", sa.JSON, nullable=False),
    )
    op.create_table(
        "update_trigger",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.Column("starts_on", sa.Date, nullable=False),
        sa.Column("departments", sa.JSON, nullable=False),
    )
    op.create_table(
        "trigger_deadline",
        sa.Column(
            "trigger",
            sa.Integer,
            sa.ForeignKey("update_trigger.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("department", USCC, primary_key=True),
        sa.Column("due", sa.Date, nullable=False),
        sa.Column("certain", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column(
            "met_by_version", sa.Integer, sa.ForeignKey("catalog_version.number"), nullable=True
        ),
    )
    op.create_index("ix_trigger_deadline_department", "trigger_deadline", ["department"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("value", sa.JSON, nullable=False),
        sa.Column("published_at", TIMESTAMP, nullable=True),
    )
    op.create_index("ix_outbox_unpublished", "outbox", ["published_at", "id"])


def downgrade() -> None:
    for index, table in (
        ("ix_outbox_unpublished", "outbox"),
        ("ix_trigger_deadline_department", "trigger_deadline"),
        ("ix_holder_department", "holder"),
        ("ix_resource_provider", "resource"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "outbox",
        "trigger_deadline",
        "update_trigger",
        "catalog_version",
        "holder",
        "resource_key_item",
        "info_item",
        "resource",
        "department",
    ):
        op.drop_table(table)
