"""Share requests (articles 16-17): requests, grants, negotiation steps, events, violations.

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than taken from govbus.share.model (see 0001).
USCC = sa.String(18)
RESOURCE_CODE = sa.String(40)
TIMESTAMP = sa.DateTime(timezone=True)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


def _request_fk() -> sa.Column[int]:
    return sa.Column("request", sa.Integer, sa.ForeignKey("share_request.id"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "share_request",
        _id(),
        sa.Column("department", USCC, nullable=False),
        sa.Column("resource", RESOURCE_CODE, nullable=False),
        sa.Column("provider", USCC, nullable=False),
        sa.Column("items", sa.JSON, nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("duty", sa.Text, nullable=False),
        sa.Column("valid_until", sa.Date, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("submitted_at", TIMESTAMP, nullable=False),
        sa.Column("submitted_by", sa.Text, nullable=False),
        sa.Column("due", sa.Date, nullable=False),
        sa.Column("due_certain", sa.Boolean, nullable=False),
        sa.Column("due_reason", sa.Text, nullable=True),
        sa.Column("answered_at", TIMESTAMP, nullable=True),
        sa.Column("answered_by", sa.Text, nullable=True),
        sa.Column("answer_workdays", sa.Integer, nullable=True),
        sa.Column("deny_reason", sa.Text, nullable=True),
        sa.Column("overdue_at", TIMESTAMP, nullable=True),
    )
    for column in ("department", "resource", "provider", "state"):
        op.create_index(f"ix_share_request_{column}", "share_request", [column])

    op.create_table(
        "share_grant",
        _id(),
        _request_fk(),
        sa.Column("department", USCC, nullable=False),
        sa.Column("resource", RESOURCE_CODE, nullable=False),
        sa.Column("items", sa.JSON, nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("granted_at", TIMESTAMP, nullable=False),
        sa.Column("granted_by", sa.Text, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.Column("revoked_by", sa.Text, nullable=True),
        sa.Column("revoke_reason", sa.Text, nullable=True),
        sa.Column("expired_at", TIMESTAMP, nullable=True),
        sa.UniqueConstraint("request", name="uq_share_grant_request"),
    )
    for column in ("department", "resource"):
        op.create_index(f"ix_share_grant_{column}", "share_grant", [column])

    op.create_table(
        "share_step",
        _id(),
        _request_fk(),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("owners", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("opened_at", TIMESTAMP, nullable=False),
        sa.Column("opened_by", sa.Text, nullable=False),
        sa.Column("closed_at", TIMESTAMP, nullable=True),
        sa.Column("closed_by", sa.Text, nullable=True),
        sa.Column("outcome", sa.Text, nullable=True),
    )
    op.create_index("ix_share_step_request", "share_step", ["request"])

    op.create_table(
        "share_event",
        _id(),
        _request_fk(),
        sa.Column("grant", sa.Integer, sa.ForeignKey("share_grant.id"), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_share_event_request", "share_event", ["request"])
    op.create_index("ix_share_event_grant", "share_event", ["grant"])

    op.create_table(
        "share_violation",
        _id(),
        sa.Column("department", USCC, nullable=False),
        _request_fk(),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.UniqueConstraint("request", "kind", name="uq_share_violation_request"),
    )
    op.create_index("ix_share_violation_department", "share_violation", ["department"])


def downgrade() -> None:
    op.drop_index("ix_share_violation_department", table_name="share_violation")
    op.drop_table("share_violation")
    op.drop_index("ix_share_event_grant", table_name="share_event")
    op.drop_index("ix_share_event_request", table_name="share_event")
    op.drop_table("share_event")
    op.drop_index("ix_share_step_request", table_name="share_step")
    op.drop_table("share_step")
    for column in ("department", "resource"):
        op.drop_index(f"ix_share_grant_{column}", table_name="share_grant")
    op.drop_table("share_grant")
    for column in ("department", "resource", "provider", "state"):
        op.drop_index(f"ix_share_request_{column}", table_name="share_request")
    op.drop_table("share_request")
