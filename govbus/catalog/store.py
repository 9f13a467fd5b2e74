"""The versioned catalog database: every change is a new version with its author, reason and diff.

``CatalogStore(dsn)`` works on SQLite (the embedded default, e.g. ``sqlite:////var/lib/govbus/
catalog.db``) and PostgreSQL (``postgresql+psycopg://user:password@host/db``). ``apply`` takes a
whole ``CatalogSpec`` and, in one transaction, checks it (the sharing rules and backward
compatibility of every resource's Avro schema), stores it as the next version, refreshes the
normalised tables, marks article 9 deadlines met and writes the catalog events to the outbox
(``outbox.OutboxRelay`` publishes them): either all of it happens or none.

``diff_specs`` is the pure comparison behind version diffs and ``CatalogStore.diff``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from govbus.catalog import rules
from govbus.catalog.model import (
    CatalogVersionRow,
    DepartmentRow,
    HolderRow,
    InfoItemRow,
    OutboxRow,
    ResourceKeyItemRow,
    ResourceRow,
    TriggerDeadlineRow,
)
from govbus.vocabulary import schemas
from govbus.vocabulary.clock import utc
from govbus.vocabulary.config import Settings
from govbus.vocabulary.errors import ServiceUnavailable, UserError
from govbus.vocabulary.naming import NAMING, Naming
from govbus.vocabulary.spec import CatalogSpec, Department, InfoItem, Resource, plain_fields

__all__ = [
    "CatalogDiff",
    "CatalogEvolutionError",
    "CatalogStore",
    "DepartmentChange",
    "FieldChange",
    "ItemChange",
    "Named",
    "ResourceChange",
    "StoreError",
    "VersionInfo",
    "VersionNotFoundError",
    "diff_specs",
]

# The platform database's migrations (catalog and share-request tables): govbus/migrations.
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class StoreError(ServiceUnavailable):
    """The catalog database cannot be used as it is (e.g. not migrated)."""


class VersionNotFoundError(UserError, LookupError):
    """A catalog version number that does not exist."""


class CatalogEvolutionError(UserError):
    """The new catalog would change resources' Avro schemas incompatibly."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = list(problems)
        # One line per resource, each naming the resource, its items and the rule they break.
        if len(self.problems) == 1:
            message = f"catalog refused, nothing imported: {self.problems[0][1]}"
        else:
            lines = "\n".join(f"  - {reason}" for _, reason in self.problems)
            message = (
                f"catalog refused, nothing imported: {len(self.problems)} resources would break "
                f"consumers of their topics (Avro backward compatibility):\n{lines}"
            )
        super().__init__(message)


# --- the diff ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any  # canonical dict values; None where the field is unset
    new: Any


@dataclass(frozen=True)
class ItemChange:
    code: str
    changes: tuple[FieldChange, ...]


@dataclass(frozen=True)
class Named:
    """An added or removed department or resource (``provider``: a resource's provider)."""

    code: str
    name: str
    provider: str | None = None


@dataclass(frozen=True)
class DepartmentChange:
    code: str
    name: str
    changes: tuple[FieldChange, ...]


@dataclass(frozen=True)
class ResourceChange:
    code: str
    name: str
    provider: str
    changes: tuple[FieldChange, ...] = ()  # fields other than the items
    items_added: tuple[str, ...] = ()
    items_removed: tuple[str, ...] = ()
    items_changed: tuple[ItemChange, ...] = ()


@dataclass(frozen=True)
class CatalogDiff:
    added_departments: tuple[Named, ...] = ()
    removed_departments: tuple[Named, ...] = ()
    changed_departments: tuple[DepartmentChange, ...] = ()
    added_resources: tuple[Named, ...] = ()
    removed_resources: tuple[Named, ...] = ()
    changed_resources: tuple[ResourceChange, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not any(
            (
                self.added_departments,
                self.removed_departments,
                self.changed_departments,
                self.added_resources,
                self.removed_resources,
                self.changed_resources,
            )
        )

    def departments_touched(self) -> set[str]:
        """Codes of departments whose catalog changed: their own row or a resource they provide
        (both providers when a resource moved from one to another)."""
        out = {d.code for d in (*self.added_departments, *self.removed_departments)}
        out.update(d.code for d in self.changed_departments)
        out.update(
            r.provider for r in (*self.added_resources, *self.removed_resources) if r.provider
        )
        for change in self.changed_resources:
            out.add(change.provider)
            out.update(str(c.old) for c in change.changes if c.field == "provider" and c.old)
        return out

    def summary(self) -> str:
        parts = []
        for what, added, removed, changed in (
            (
                "department",
                self.added_departments,
                self.removed_departments,
                self.changed_departments,
            ),
            ("resource", self.added_resources, self.removed_resources, self.changed_resources),
        ):
            for sign, group in (("+", added), ("-", removed), ("~", changed)):
                if group:
                    parts.append(f"{sign}{len(group)} {what}{'s' if len(group) > 1 else ''}")
        return ", ".join(parts) if parts else "no change"

    def render(self) -> list[str]:
        """The diff as readable lines: + added, - removed, ~ changed, details indented."""
        lines = [f"+ department {d.code} {d.name}" for d in self.added_departments]
        lines += [f"- department {d.code} {d.name}" for d in self.removed_departments]
        for dc in self.changed_departments:
            lines.append(f"~ department {dc.code} {dc.name}")
            lines += [f"    {_show_change(c)}" for c in dc.changes]
        lines += [f"+ resource {r.code} {r.name}" for r in self.added_resources]
        lines += [f"- resource {r.code} {r.name}" for r in self.removed_resources]
        for rc in self.changed_resources:
            lines.append(f"~ resource {rc.code} {rc.name}")
            lines += [f"    {_show_change(c)}" for c in rc.changes]
            lines += [f"    + item {code}" for code in rc.items_added]
            lines += [f"    - item {code}" for code in rc.items_removed]
            for ic in rc.items_changed:
                lines.append(f"    ~ item {ic.code}")
                lines += [f"        {_show_change(c)}" for c in ic.changes]
        return lines or ["no change"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored with each version."""

        def changes(cs: tuple[FieldChange, ...]) -> list[dict[str, Any]]:
            return [{"field": c.field, "old": c.old, "new": c.new} for c in cs]

        def named(ns: tuple[Named, ...]) -> list[dict[str, Any]]:
            return [{"code": n.code, "name": n.name, "provider": n.provider} for n in ns]

        return {
            "added_departments": named(self.added_departments),
            "removed_departments": named(self.removed_departments),
            "changed_departments": [
                {"code": d.code, "name": d.name, "changes": changes(d.changes)}
                for d in self.changed_departments
            ],
            "added_resources": named(self.added_resources),
            "removed_resources": named(self.removed_resources),
            "changed_resources": [
                {
                    "code": r.code,
                    "name": r.name,
                    "provider": r.provider,
                    "changes": changes(r.changes),
                    "items_added": list(r.items_added),
                    "items_removed": list(r.items_removed),
                    "items_changed": [
                        {"code": i.code, "changes": changes(i.changes)} for i in r.items_changed
                    ],
                }
                for r in self.changed_resources
            ],
        }

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> CatalogDiff:
        def changes(cs: Iterable[Mapping[str, Any]]) -> tuple[FieldChange, ...]:
            return tuple(FieldChange(c["field"], c["old"], c["new"]) for c in cs)

        def named(ns: Iterable[Mapping[str, Any]]) -> tuple[Named, ...]:
            return tuple(Named(n["code"], n["name"], n.get("provider")) for n in ns)

        return CatalogDiff(
            added_departments=named(data.get("added_departments", [])),
            removed_departments=named(data.get("removed_departments", [])),
            changed_departments=tuple(
                DepartmentChange(d["code"], d["name"], changes(d["changes"]))
                for d in data.get("changed_departments", [])
            ),
            added_resources=named(data.get("added_resources", [])),
            removed_resources=named(data.get("removed_resources", [])),
            changed_resources=tuple(
                ResourceChange(
                    code=r["code"],
                    name=r["name"],
                    provider=r["provider"],
                    changes=changes(r["changes"]),
                    items_added=tuple(r["items_added"]),
                    items_removed=tuple(r["items_removed"]),
                    items_changed=tuple(
                        ItemChange(i["code"], changes(i["changes"])) for i in r["items_changed"]
                    ),
                )
                for r in data.get("changed_resources", [])
            ),
        )


def _show(value: Any) -> str:
    return "(unset)" if value is None else json.dumps(value, ensure_ascii=False)


def _show_change(c: FieldChange) -> str:
    return f"{c.field}: {_show(c.old)} -> {_show(c.new)}"


def department_dict(d: Department) -> dict[str, Any]:
    """The canonical dict of one department (as in ``CatalogSpec.to_dict``)."""
    result: dict[str, Any] = CatalogSpec(departments=(d,)).to_dict()["departments"][0]
    return result


def resource_dict(r: Resource) -> dict[str, Any]:
    """The canonical dict of one resource (as in ``CatalogSpec.to_dict``)."""
    result: dict[str, Any] = CatalogSpec(resources=(r,)).to_dict()["resources"][0]
    return result


def _field_changes(
    old: Mapping[str, Any], new: Mapping[str, Any], skip: frozenset[str] = frozenset()
) -> tuple[FieldChange, ...]:
    # The canonical dicts leave defaults out, so a missing key is the default.
    keys = [*new, *(k for k in old if k not in new)]
    return tuple(
        FieldChange(k, old.get(k), new.get(k))
        for k in keys
        if k not in skip and old.get(k) != new.get(k)
    )


def _resource_change(old: Resource, new: Resource) -> ResourceChange | None:
    changes = list(_field_changes(resource_dict(old), resource_dict(new), frozenset({"items"})))
    before = {i.code: i for i in old.items}
    after = {i.code: i for i in new.items}
    added = tuple(c for c in after if c not in before)
    removed = tuple(c for c in before if c not in after)
    items_changed = []
    for code, item in after.items():
        if code in before:
            item_changes = _field_changes(
                resource_dict(_with_items(old, before[code]))["items"][0],
                resource_dict(_with_items(new, item))["items"][0],
            )
            if item_changes:
                items_changed.append(ItemChange(code, item_changes))
    # Item order is the Avro field order and the order forms show; reordering is a change.
    kept_old = [c for c in before if c in after]
    kept_new = [c for c in after if c in before]
    if kept_old != kept_new:
        changes.append(FieldChange("item_order", kept_old, kept_new))
    if not (changes or added or removed or items_changed):
        return None
    return ResourceChange(
        new.code, new.name, new.provider, tuple(changes), added, removed, tuple(items_changed)
    )


def _with_items(r: Resource, *items: InfoItem) -> Resource:
    return replace(r, items=items)


def diff_specs(old: CatalogSpec, new: CatalogSpec) -> CatalogDiff:
    """What changed from ``old`` to ``new``; departments and resources are matched by code.

    The order of departments and resources in the catalog is not a change; the order of a
    resource's items is.
    """
    old_depts = {d.code: d for d in old.departments}
    new_depts = {d.code: d for d in new.departments}
    changed_depts = []
    for code, d in new_depts.items():
        if code in old_depts:
            changes = _field_changes(department_dict(old_depts[code]), department_dict(d))
            if changes:
                changed_depts.append(DepartmentChange(code, d.name, changes))

    old_res = {r.code: r for r in old.resources}
    new_res = {r.code: r for r in new.resources}
    changed_res = [
        change
        for code, r in new_res.items()
        if code in old_res and (change := _resource_change(old_res[code], r)) is not None
    ]
    return CatalogDiff(
        added_departments=tuple(
            Named(d.code, d.name) for c, d in new_depts.items() if c not in old_depts
        ),
        removed_departments=tuple(
            Named(d.code, d.name) for c, d in old_depts.items() if c not in new_depts
        ),
        changed_departments=tuple(changed_depts),
        added_resources=tuple(
            Named(r.code, r.name, r.provider) for c, r in new_res.items() if c not in old_res
        ),
        removed_resources=tuple(
            Named(r.code, r.name, r.provider) for c, r in old_res.items() if c not in new_res
        ),
        changed_resources=tuple(changed_res),
    )


# --- the store --------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionInfo:
    number: int
    author: str
    created_at: dt.datetime  # UTC
    reason: str
    summary: str
    diff: CatalogDiff = field(default_factory=CatalogDiff, repr=False)


def _json_dumps(value: Any) -> str:
    # Chinese stays readable in the database (the default escapes it as \uXXXX).
    return json.dumps(value, ensure_ascii=False)


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    # SQLite ignores foreign keys unless asked, per connection; PostgreSQL always checks them.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class CatalogStore:
    def __init__(self, dsn: str, *, naming: Naming = NAMING) -> None:
        """``naming``: the catalog events of ``apply`` are written for its catalog topic."""
        self.dsn = dsn
        self.naming = naming
        url = sa.make_url(dsn)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            # SQLite creates the file but not its directory ("unable to open database file").
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(url, json_serializer=_json_dumps)
        if url.get_backend_name() == "sqlite":
            sa.event.listen(self.engine, "connect", _enable_sqlite_foreign_keys)
        self._checked = False

    def __repr__(self) -> str:
        return f"CatalogStore({self.engine.url.render_as_string(hide_password=True)!r})"

    @classmethod
    @contextlib.contextmanager
    def opened(cls, settings: Settings) -> Iterator[CatalogStore]:
        """The configured catalog database, migrated to the current schema, disposed after."""
        store = cls(settings.resolved_catalog_dsn, naming=settings.naming)
        try:
            store.migrate()
            yield store
        finally:
            store.dispose()

    def dispose(self) -> None:
        """Close the pooled connections (e.g. before dropping the database)."""
        self.engine.dispose()

    def migrate(self) -> None:
        """Bring the database schema to the newest migration (alembic upgrade head)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        self._checked = True

    def connect(self) -> sa.Connection:
        """A connection to the migrated database (raises StoreError if it is not)."""
        conn = self.engine.connect()
        if not self._checked:
            try:
                migrated = sa.inspect(conn).has_table(CatalogVersionRow.__tablename__)
                conn.rollback()  # ends the inspection's implicit transaction for the caller
            except BaseException:
                conn.close()
                raise
            if not migrated:
                conn.close()
                raise StoreError(
                    f"the catalog database {self.engine.url.render_as_string(hide_password=True)}"
                    " has no catalog tables: run the migrations first (CatalogStore.migrate(), "
                    "or `govbus catalog migrate`)"
                )
            self._checked = True
        return conn

    # --- writing ----------------------------------------------------------------------------

    def apply(
        self, spec: CatalogSpec, author: str, reason: str, now: dt.datetime | None = None
    ) -> int:
        """Store ``spec`` as the next version and return its number.

        Raises ``rules.CatalogRuleError`` or ``CatalogEvolutionError`` (nothing is stored). A
        catalog equal to the current one makes no version: the current number is returned.
        """
        if not author.strip():
            raise UserError("author is required: name who made this catalog change")
        created_at = utc(now)
        # Imported here: they pull in Avro and the rules, which reading the store does not need.

        with self.connect() as conn, conn.begin():
            self._lock(conn)
            number, current = self._latest(conn)
            rules.check(spec)
            broken = schemas.check_spec_evolution(current, spec)
            if broken:
                raise CatalogEvolutionError(broken)
            diff = diff_specs(current, spec)
            if diff.is_empty:
                return number
            number += 1
            self._replace_rows(conn, spec)
            conn.execute(
                sa.insert(CatalogVersionRow),
                {
                    "number": number,
                    "author": author.strip(),
                    "created_at": created_at,
                    "reason": reason,
                    "snapshot": spec.to_dict(),
                    "diff": diff.to_dict(),
                },
            )
            self._mark_deadlines(conn, number, diff.departments_touched())
            self._write_outbox(conn, number, created_at, current, spec, diff)
        return number

    def _lock(self, conn: sa.Connection) -> None:
        # Serialises writers on PostgreSQL (readers go on): the diff is computed against the
        # version really current, and outbox ids are committed in id order, which the relay
        # relies on for per-key order. SQLite allows one writer at a time anyway.
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("LOCK TABLE catalog_version IN EXCLUSIVE MODE"))

    def _replace_rows(self, conn: sa.Connection, spec: CatalogSpec) -> None:
        for row in (HolderRow, ResourceKeyItemRow, InfoItemRow, ResourceRow, DepartmentRow):
            conn.execute(sa.delete(row))
        if spec.departments:
            conn.execute(
                sa.insert(DepartmentRow),
                [plain_fields(d) for d in spec.departments],
            )
        resources: list[dict[str, Any]] = []
        items: list[dict[str, Any]] = []
        keys: list[dict[str, Any]] = []
        holders: dict[tuple[str, str, str], None] = {}  # ordered set: a repeated item is one row
        for r in spec.resources:
            plain = {k: list(v) if isinstance(v, tuple) else v for k, v in plain_fields(r).items()}
            resources.append(
                {
                    **plain,
                    "classification": r.classification,
                    "key_subject_type": r.key.subject_type,
                    "key_identifier": r.key.identifier,
                }
            )
            for n, i in enumerate(r.items):
                items.append({"resource": r.code, "position": n, **dataclasses.asdict(i)})
            key_items = dict.fromkeys(r.key.items)  # a repeated key item is one row
            keys += [
                {"resource": r.code, "item": item, "position": n}
                for n, item in enumerate(key_items)
            ]
            for h in r.holders:
                for item in h.items:
                    holders[(r.code, h.department, item)] = None
        for table, rows in (
            (ResourceRow, resources),
            (InfoItemRow, items),
            (ResourceKeyItemRow, keys),
            (
                HolderRow,
                [{"resource": r, "department": d, "item": i} for r, d, i in holders],
            ),
        ):
            if rows:
                conn.execute(sa.insert(table), rows)

    def _mark_deadlines(self, conn: sa.Connection, number: int, departments: set[str]) -> None:
        # Any open deadline exists only because its trigger was recorded before this version,
        # so this change is the department's first catalog change after the trigger.
        if departments:
            conn.execute(
                sa.update(TriggerDeadlineRow)
                .where(
                    TriggerDeadlineRow.met_by_version.is_(None),
                    TriggerDeadlineRow.department.in_(sorted(departments)),
                )
                .values(met_by_version=number)
            )

    def _write_outbox(
        self,
        conn: sa.Connection,
        number: int,
        created_at: dt.datetime,
        old: CatalogSpec,
        new: CatalogSpec,
        diff: CatalogDiff,
    ) -> None:
        events: list[tuple[str, dict[str, Any]]] = []
        # Departments before the resources that name them, deletions after.
        for code in [d.code for d in diff.added_departments] + [
            d.code for d in diff.changed_departments
        ]:
            dept = new.department(code)
            assert dept is not None
            events.append((f"department:{code}", _event("upsert", number, department=dept)))
        for code in [r.code for r in diff.added_resources] + [
            r.code for r in diff.changed_resources
        ]:
            res = new.resource(code)
            assert res is not None
            events.append((code, _event("upsert", number, resource=res)))
        for named in diff.removed_resources:
            res = old.resource(named.code)
            assert res is not None
            events.append((named.code, _event("delete", number, resource=res)))
        for named in diff.removed_departments:
            dept = old.department(named.code)
            assert dept is not None
            events.append((f"department:{named.code}", _event("delete", number, department=dept)))
        topic = self.naming.catalog_topic
        conn.execute(
            sa.insert(OutboxRow),
            [
                {"created_at": created_at, "topic": topic, "key": key, "value": value}
                for key, value in events
            ],
        )

    # --- reading ----------------------------------------------------------------------------

    def _latest(self, conn: sa.Connection) -> tuple[int, CatalogSpec]:
        row = conn.execute(
            sa.select(CatalogVersionRow.number, CatalogVersionRow.snapshot)
            .order_by(CatalogVersionRow.number.desc())
            .limit(1)
        ).first()
        if row is None:
            return 0, CatalogSpec()
        return row.number, CatalogSpec.from_dict(row.snapshot)

    def latest_number(self) -> int:
        """The newest version number, 0 before the first ``apply``."""
        with self.connect() as conn:
            return self._latest(conn)[0]

    def current(self) -> CatalogSpec:
        """The newest catalog (empty before the first ``apply``)."""
        with self.connect() as conn:
            return self._latest(conn)[1]

    def version(self, number: int) -> CatalogSpec:
        """The catalog as of version ``number``; version 0 is the empty catalog before v1."""
        if number == 0:
            return CatalogSpec()
        with self.connect() as conn:
            snapshot = conn.execute(
                sa.select(CatalogVersionRow.snapshot).where(CatalogVersionRow.number == number)
            ).scalar_one_or_none()
            last = self._latest(conn)[0]
        if snapshot is None:
            raise VersionNotFoundError(
                f"catalog version {number} does not exist (versions are 1..{last}); "
                "`govbus catalog history` lists them"
                if last
                else f"catalog version {number} does not exist: the catalog has no versions yet "
                "(`govbus catalog import` makes the first)"
            )
        return CatalogSpec.from_dict(snapshot)

    def history(self) -> list[VersionInfo]:
        """Every version, oldest first."""
        with self.connect() as conn:
            rows = conn.execute(
                sa.select(
                    CatalogVersionRow.number,
                    CatalogVersionRow.author,
                    CatalogVersionRow.created_at,
                    CatalogVersionRow.reason,
                    CatalogVersionRow.diff,
                ).order_by(CatalogVersionRow.number)
            ).all()
        out = []
        for row in rows:
            diff = CatalogDiff.from_dict(row.diff)
            out.append(
                VersionInfo(
                    row.number, row.author, utc(row.created_at), row.reason, diff.summary(), diff
                )
            )
        return out

    def diff(self, a: int, b: int) -> CatalogDiff:
        """What changed from version ``a`` to version ``b`` (0: the empty catalog)."""
        return diff_specs(self.version(a), self.version(b))


def _event(
    op: str,
    number: int,
    *,
    resource: Resource | None = None,
    department: Department | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"op": op, "version": number}
    if resource is not None:
        out["resource"] = resource_dict(resource)
    if department is not None:
        out["department"] = department_dict(department)
    return out
