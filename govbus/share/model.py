"""The share-request tables (articles 16-17, 26(3)), on the catalog's declarative ``Base``.

One Alembic history covers the catalog and these tables (migration ``0002_share_requests``).
Department and resource codes are plain columns, not foreign keys: ``CatalogStore.apply``
replaces the normalised catalog rows on every version, and a request must outlive a department
or resource that later leaves the catalog.

Times are timezone-aware UTC; the deadline ``due`` is a calendar day in China time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from govbus.catalog.model import RESOURCE_CODE, USCC, Base

__all__ = [
    "ShareEventRow",
    "ShareGrantRow",
    "ShareRequestRow",
    "ShareStepRow",
    "ShareViolationRow",
]


class ShareRequestRow(Base):
    """A consumer department's application for a conditional (or not-shared) resource."""

    __tablename__ = "share_request"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    department: Mapped[str] = mapped_column(USCC, index=True)  # the consumer's code
    resource: Mapped[str] = mapped_column(RESOURCE_CODE, index=True)
    provider: Mapped[str] = mapped_column(USCC, index=True)
    items: Mapped[list[Any]]  # item codes; empty: the whole resource
    purpose: Mapped[str] = mapped_column(sa.String(32))
    duty: Mapped[str] = mapped_column(sa.Text)
    valid_until: Mapped[dt.date] = mapped_column(sa.Date)  # the validity the consumer needs
    state: Mapped[str] = mapped_column(sa.String(16), index=True)
    submitted_at: Mapped[dt.datetime]
    submitted_by: Mapped[str] = mapped_column(sa.Text)
    due: Mapped[dt.date] = mapped_column(sa.Date)  # 10th working day after submission (China)
    due_certain: Mapped[bool] = mapped_column(sa.Boolean)
    due_reason: Mapped[str | None] = mapped_column(sa.Text)
    answered_at: Mapped[dt.datetime | None]
    answered_by: Mapped[str | None] = mapped_column(sa.Text)
    answer_workdays: Mapped[int | None] = mapped_column(sa.Integer)
    deny_reason: Mapped[str | None] = mapped_column(sa.Text)
    overdue_at: Mapped[dt.datetime | None]  # when the sweep found it unanswered past ``due``


class ShareGrantRow(Base):
    """An approval: the department may read the resource until ``expires_at``."""

    __tablename__ = "share_grant"
    __table_args__ = (sa.UniqueConstraint("request", name="uq_share_grant_request"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    # One grant per request (the unique constraint): a request is answered once.
    request: Mapped[int] = mapped_column(sa.Integer, sa.ForeignKey("share_request.id"))
    department: Mapped[str] = mapped_column(USCC, index=True)
    resource: Mapped[str] = mapped_column(RESOURCE_CODE, index=True)
    items: Mapped[list[Any]]
    purpose: Mapped[str] = mapped_column(sa.String(32))
    granted_at: Mapped[dt.datetime]
    granted_by: Mapped[str] = mapped_column(sa.Text)
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(sa.Text)
    revoke_reason: Mapped[str | None] = mapped_column(sa.Text)
    expired_at: Mapped[dt.datetime | None]  # when the sweep recorded the expiry


class ShareStepRow(Base):
    """One level of settling a refusal: negotiation, coordination, steering group."""

    __tablename__ = "share_step"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    request: Mapped[int] = mapped_column(sa.Integer, sa.ForeignKey("share_request.id"), index=True)
    level: Mapped[str] = mapped_column(sa.String(16))
    owner: Mapped[str] = mapped_column(sa.Text)  # who leads it, readable
    owners: Mapped[list[Any]]  # department codes that lead it (empty for the steering group)
    state: Mapped[str] = mapped_column(sa.String(16))  # open / settled / failed
    opened_at: Mapped[dt.datetime]
    opened_by: Mapped[str] = mapped_column(sa.Text)
    closed_at: Mapped[dt.datetime | None]
    closed_by: Mapped[str | None] = mapped_column(sa.Text)
    outcome: Mapped[str | None] = mapped_column(sa.Text)


class ShareEventRow(Base):
    """Every state change of a request or grant: what, who, when."""

    __tablename__ = "share_event"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    request: Mapped[int] = mapped_column(sa.Integer, sa.ForeignKey("share_request.id"), index=True)
    grant: Mapped[int | None] = mapped_column(
        sa.Integer, sa.ForeignKey("share_grant.id"), index=True
    )
    kind: Mapped[str] = mapped_column(sa.String(32))
    actor: Mapped[str] = mapped_column(sa.Text)
    at: Mapped[dt.datetime]
    detail: Mapped[dict[str, Any]]


class ShareViolationRow(Base):
    """A violation of the measures by a department (article 26), for rectification."""

    __tablename__ = "share_violation"
    # One violation of a kind per request: the sweep may run any number of times.
    __table_args__ = (sa.UniqueConstraint("request", "kind", name="uq_share_violation_request"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    department: Mapped[str] = mapped_column(USCC, index=True)
    request: Mapped[int] = mapped_column(sa.Integer, sa.ForeignKey("share_request.id"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    at: Mapped[dt.datetime]
    detail: Mapped[dict[str, Any]]
