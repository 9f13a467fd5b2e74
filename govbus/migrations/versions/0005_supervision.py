"""The violation ledger (article 26): one row per violation episode and one per workflow step.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than taken from govbus.supervise.model (see 0001).
USCC = sa.String(18)
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "supervision_violation",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("article", sa.String(8), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("episode", sa.Integer, nullable=False),
        sa.Column("department", USCC, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("occurred_at", TIMESTAMP, nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("due", sa.Date, nullable=True),
        sa.Column("due_certain", sa.Boolean, nullable=True),
        sa.Column("closed_at", TIMESTAMP, nullable=True),
        sa.UniqueConstraint("kind", "subject", "episode", name="uq_supervision_episode"),
    )
    for column in ("kind", "department", "state"):
        op.create_index(f"ix_supervision_violation_{column}", "supervision_violation", [column])
    op.create_table(
        "supervision_event",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "violation",
            sa.Integer,
            sa.ForeignKey("supervision_violation.id"),
            nullable=False,
        ),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_supervision_event_violation", "supervision_event", ["violation"])


def downgrade() -> None:
    op.drop_index("ix_supervision_event_violation", "supervision_event")
    op.drop_table("supervision_event")
    for column in ("kind", "department", "state"):
        op.drop_index(f"ix_supervision_violation_{column}", "supervision_violation")
    op.drop_table("supervision_violation")
