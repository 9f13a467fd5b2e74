"""The catalog's database tables (SQLAlchemy 2.x), for SQLite and PostgreSQL alike.

Two views of the same catalog are kept:

- ``catalog_entry`` holds every department and resource as it was from one version to another
  (``since`` ≤ v < ``until``; ``until`` is NULL while it is current), each as its canonical dict
  (``CatalogSpec.to_dict`` form): a version stores only what changed, and any version is the
  entries valid at it — ``CatalogStore.current`` and ``version`` read them back, so nothing is
  lost in the mapping. ``catalog_version`` holds each version's author, time, reason, scope
  (the city, a department or a district) and the diff from the version before.
- ``department``, ``resource``, ``info_item``, ``resource_key_item`` and ``holder`` hold the
  *current* catalog normalised, so SQL users can ask who provides or holds which item (and the
  store checks a department's change against the rest of the city with indexed queries).

``update_trigger``/``trigger_deadline`` record the article 9 duties (update the catalog within
15 working days of a law or mandate change) and ``outbox`` the catalog events waiting to be
published to Kafka (the transactional outbox: written in the same transaction as the version).

Only portable types are used (sa.JSON, sa.Text, sa.Date, sa.DateTime(timezone=True)); the
migration in ``migrations/versions`` creates exactly these tables.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "CatalogEntryRow",
    "CatalogVersionRow",
    "DepartmentRow",
    "HolderRow",
    "InfoItemRow",
    "OutboxRow",
    "ResourceKeyItemRow",
    "ResourceRow",
    "TriggerDeadlineRow",
    "UpdateTriggerRow",
]

# 统一社会信用代码 are 18 characters; resource codes are at most 8 + 1 + 18 + 1 + 6.
USCC = sa.String(18)
RESOURCE_CODE = sa.String(40)
ITEM_CODE = sa.String(63)


class Base(DeclarativeBase):
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads it as a class attribute)
        dict[str, Any]: sa.JSON,
        list[Any]: sa.JSON,
        dt.datetime: sa.DateTime(timezone=True),
    }


class DepartmentRow(Base):
    __tablename__ = "department"

    code: Mapped[str] = mapped_column(USCC, primary_key=True)
    id: Mapped[str] = mapped_column(sa.String(63), unique=True)
    name: Mapped[str] = mapped_column(sa.Text)
    level: Mapped[str] = mapped_column(sa.String(16))
    region: Mapped[str] = mapped_column(sa.String(6))
    # Not a foreign key: a parent may be outside this catalog (e.g. a provincial department).
    parent: Mapped[str | None] = mapped_column(USCC)


class ResourceRow(Base):
    __tablename__ = "resource"

    code: Mapped[str] = mapped_column(RESOURCE_CODE, primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
    provider: Mapped[str] = mapped_column(USCC, sa.ForeignKey("department.code"), index=True)
    classification: Mapped[str] = mapped_column(sa.String(16))
    abstract: Mapped[str] = mapped_column(sa.Text)
    format: Mapped[str] = mapped_column(sa.String(16))
    category: Mapped[list[Any]]
    share_type: Mapped[str] = mapped_column(sa.String(16))
    update_cycle: Mapped[str] = mapped_column(sa.String(16))
    publish_date: Mapped[dt.date] = mapped_column(sa.Date)
    share_conditions: Mapped[str] = mapped_column(sa.Text)
    share_methods: Mapped[list[Any]]
    purposes: Mapped[list[Any]]
    open_to_public: Mapped[bool] = mapped_column(sa.Boolean)
    open_conditions: Mapped[str] = mapped_column(sa.Text)
    related: Mapped[list[Any]]
    base_category: Mapped[str | None] = mapped_column(sa.String(32))
    lead_department: Mapped[str | None] = mapped_column(USCC)
    legal_basis: Mapped[str] = mapped_column(sa.Text)
    key_subject_type: Mapped[str] = mapped_column(sa.String(32))
    key_identifier: Mapped[str | None] = mapped_column(sa.Text)


class InfoItemRow(Base):
    __tablename__ = "info_item"
    # Who else declares this item (one data, one source) is asked by item code.
    __table_args__ = (sa.Index("ix_info_item_code", "code"),)

    resource: Mapped[str] = mapped_column(
        RESOURCE_CODE, sa.ForeignKey("resource.code", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(ITEM_CODE, primary_key=True)
    position: Mapped[int] = mapped_column(sa.Integer)
    name: Mapped[str] = mapped_column(sa.Text)
    data_type: Mapped[str] = mapped_column(sa.String(1))
    length: Mapped[int | None] = mapped_column(sa.Integer)
    required: Mapped[bool] = mapped_column(sa.Boolean)
    base_item: Mapped[bool] = mapped_column(sa.Boolean)
    sensitivity: Mapped[str] = mapped_column(sa.String(16))
    shareable_to_all: Mapped[bool] = mapped_column(sa.Boolean)
    mask: Mapped[str] = mapped_column(sa.String(16))
    compare: Mapped[str] = mapped_column(sa.String(16))
    tolerance: Mapped[float | None] = mapped_column(sa.Float)


class ResourceKeyItemRow(Base):
    __tablename__ = "resource_key_item"

    resource: Mapped[str] = mapped_column(
        RESOURCE_CODE, sa.ForeignKey("resource.code", ondelete="CASCADE"), primary_key=True
    )
    item: Mapped[str] = mapped_column(ITEM_CODE, primary_key=True)
    position: Mapped[int] = mapped_column(sa.Integer)


class HolderRow(Base):
    """One row per (resource, holding department, item): who keeps a copy of what."""

    __tablename__ = "holder"

    resource: Mapped[str] = mapped_column(
        RESOURCE_CODE, sa.ForeignKey("resource.code", ondelete="CASCADE"), primary_key=True
    )
    department: Mapped[str] = mapped_column(
        USCC, sa.ForeignKey("department.code"), primary_key=True, index=True
    )
    item: Mapped[str] = mapped_column(ITEM_CODE, primary_key=True)


class CatalogVersionRow(Base):
    __tablename__ = "catalog_version"

    number: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    author: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime]
    reason: Mapped[str] = mapped_column(sa.Text)
    diff: Mapped[dict[str, Any]]  # CatalogDiff.to_dict() against the version before
    # "city", "department:<code>" or "district:<region>": the part of the catalog replaced.
    scope: Mapped[str] = mapped_column(sa.Text)
    departments: Mapped[list[Any]]  # codes of the departments whose catalog changed


class CatalogEntryRow(Base):
    """A department or resource as it was in versions ``since`` ≤ v < ``until``."""

    __tablename__ = "catalog_entry"
    __table_args__ = (
        sa.Index("ix_catalog_entry_code", "kind", "code", "until"),
        sa.Index("ix_catalog_entry_owner", "owner", "until"),
        sa.Index("ix_catalog_entry_since", "since"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(sa.String(16))  # "department" or "resource"
    code: Mapped[str] = mapped_column(RESOURCE_CODE)
    owner: Mapped[str] = mapped_column(USCC)  # the department itself, or the provider
    position: Mapped[int] = mapped_column(sa.Integer)  # order in the catalog
    since: Mapped[int] = mapped_column(sa.Integer, sa.ForeignKey("catalog_version.number"))
    until: Mapped[int | None] = mapped_column(sa.Integer, sa.ForeignKey("catalog_version.number"))
    body: Mapped[dict[str, Any]]  # the canonical dict (CatalogSpec.to_dict form)


class UpdateTriggerRow(Base):
    """An event that obliges departments to update their catalog (article 9)."""

    __tablename__ = "update_trigger"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    description: Mapped[str] = mapped_column(sa.Text)
    recorded_at: Mapped[dt.datetime]
    starts_on: Mapped[dt.date] = mapped_column(sa.Date)
    departments: Mapped[list[Any]]  # department codes, as named when recorded


class TriggerDeadlineRow(Base):
    __tablename__ = "trigger_deadline"

    trigger: Mapped[int] = mapped_column(
        sa.Integer, sa.ForeignKey("update_trigger.id", ondelete="CASCADE"), primary_key=True
    )
    department: Mapped[str] = mapped_column(USCC, primary_key=True, index=True)
    due: Mapped[dt.date] = mapped_column(sa.Date)
    certain: Mapped[bool] = mapped_column(sa.Boolean)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    met_by_version: Mapped[int | None] = mapped_column(
        sa.Integer, sa.ForeignKey("catalog_version.number")
    )


class OutboxRow(Base):
    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_unpublished", "published_at", "id"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime]
    topic: Mapped[str] = mapped_column(sa.Text)
    key: Mapped[str] = mapped_column(sa.Text)
    value: Mapped[dict[str, Any]]
    published_at: Mapped[dt.datetime | None]
