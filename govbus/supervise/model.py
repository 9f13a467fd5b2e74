"""The violation ledger's tables (article 26), on the catalog's declarative ``Base``.

One Alembic history covers the catalog, the share requests and these tables (migration
``0005_supervision``). ``supervision_violation`` holds one row per violation episode — unique
by (kind, subject, episode), so recording the same finding again changes nothing — with its
rectification state; ``supervision_event`` holds every step (recorded, notify, respond, close,
escalate) with actor and time. Each step also writes a row to the catalog's ``outbox`` table in
the same transaction, for ``govbus.supervision`` (``govbus violations relay``).

Times are timezone-aware UTC; the rectification deadline ``due`` is a calendar day in China.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from govbus.catalog.model import USCC, Base

__all__ = ["SupervisionEventRow", "SupervisionViolationRow"]


class SupervisionViolationRow(Base):
    """One episode of one kind of violation by one department, and where its rectification is."""

    __tablename__ = "supervision_violation"
    __table_args__ = (
        sa.UniqueConstraint("kind", "subject", "episode", name="uq_supervision_episode"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(sa.String(32), index=True)
    article: Mapped[str] = mapped_column(sa.String(8))
    subject: Mapped[str] = mapped_column(sa.Text)
    episode: Mapped[int] = mapped_column(sa.Integer)
    department: Mapped[str] = mapped_column(USCC, index=True)
    summary: Mapped[str] = mapped_column(sa.Text)
    evidence: Mapped[dict[str, Any]]
    source: Mapped[str] = mapped_column(sa.Text)
    occurred_at: Mapped[dt.datetime]
    recorded_at: Mapped[dt.datetime]
    state: Mapped[str] = mapped_column(sa.String(16), index=True)
    due: Mapped[dt.date | None] = mapped_column(sa.Date)  # rectification deadline (China day)
    due_certain: Mapped[bool | None] = mapped_column(sa.Boolean)
    closed_at: Mapped[dt.datetime | None]


class SupervisionEventRow(Base):
    """A step of a violation's life: who did what, when, with which detail."""

    __tablename__ = "supervision_event"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    violation: Mapped[int] = mapped_column(
        sa.Integer, sa.ForeignKey("supervision_violation.id"), index=True
    )
    action: Mapped[str] = mapped_column(sa.String(16))
    actor: Mapped[str] = mapped_column(sa.Text)
    at: Mapped[dt.datetime]
    detail: Mapped[dict[str, Any]]
