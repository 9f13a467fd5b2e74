"""The account tables, on the catalog's declarative ``Base`` (migration ``0004_accounts``).

Accounts live in the platform database beside the catalog and the share requests: an account
belongs to a catalog department (``department`` is its id on the bus), the audit rows name the
share requests and disputes the person acted on, and one backup keeps them together. The
department is a plain column, not a foreign key: the catalog rows are replaced on every
version, and an account (and its audit trail) must outlive a department leaving the catalog.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from govbus.catalog.model import Base

__all__ = ["AccountRow", "AuditRow"]


class AccountRow(Base):
    """A person who logs in: a user name, a password hash (argon2id), a department, a role."""

    __tablename__ = "account"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.Text)
    department: Mapped[str] = mapped_column(sa.String(250), index=True)  # department id
    role: Mapped[str] = mapped_column(sa.String(16))
    display_name: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime]
    disabled_at: Mapped[dt.datetime | None]


class AuditRow(Base):
    """One action of a person: who, for which department, what, on what, and how it ended."""

    __tablename__ = "account_audit"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(index=True)
    username: Mapped[str] = mapped_column(sa.String(64), index=True)
    department: Mapped[str] = mapped_column(sa.String(250), index=True)
    role: Mapped[str] = mapped_column(sa.String(16))
    action: Mapped[str] = mapped_column(sa.String(64))
    target: Mapped[str] = mapped_column(sa.Text)
    outcome: Mapped[str] = mapped_column(sa.String(16))  # ok / refused / failed
    detail: Mapped[dict[str, Any]]
