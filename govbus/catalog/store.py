"""The versioned catalog database: every change is a new version with its author, reason and diff.

``CatalogStore(dsn)`` works on SQLite (the embedded default, e.g. ``sqlite:////var/lib/govbus/
catalog.db``) and PostgreSQL (``postgresql+psycopg://user:password@host/db``).

``apply`` takes the whole city's ``CatalogSpec``, or one department's or one district's part of
it (articles 8-9: each department compiles and maintains its own catalog, each district its
own, and the city's catalog is their union). In one transaction it checks the change (the
sharing rules for the whole city, and backward compatibility of every changed resource's Avro
schema), stores it as the next version — only what changed, as ``catalog_entry`` rows valid
from that version on —, brings the normalised tables up to date, marks article 9 deadlines met
and writes one catalog event per changed department and resource to the outbox
(``outbox.OutboxRelay`` publishes them): either all of it happens or none.

A department's change reads only that department's part and asks the database, by index, what
the rules need of the rest of the city (``rules.Outside``), so its cost is that of the part,
not of the city. Any version is the entries valid at it (``version``, ``as_of``); no version
holds a copy of the whole catalog.

``diff_specs`` is the pure comparison behind version diffs and ``CatalogStore.diff``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.orm import aliased

from govbus.catalog import rules
from govbus.catalog.model import (
    CatalogEntryRow,
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
    "Scope",
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
        out = set(_codes(self.added_departments, self.removed_departments))
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
    if old == new:  # the common case when a whole catalog is imported again
        return None
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
    scope: str = "city"  # "city", "department:<code>" or "district:<region>"
    departments: tuple[str, ...] = ()  # codes of the departments whose catalog changed


@dataclass(frozen=True)
class Scope:
    """The part of the catalog a change replaces: the whole city, one department's part (its
    record and the resources it provides) or one district's (its departments and theirs)."""

    kind: str  # "city", "department" or "district"
    value: str = ""  # the department's code or the district's 6-digit region

    def __str__(self) -> str:
        return "city" if self.kind == "city" else f"{self.kind}:{self.value}"

    @staticmethod
    def parse(text: str) -> Scope:
        kind, _, value = text.partition(":")
        return Scope(kind, value)


CITY = Scope("city")

# Rows per statement for IN lists (SQLite allows 32,766 bound values; far fewer keep plans small).
_CHUNK = 500


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for value in values:
        batch.append(value)
        if len(batch) == _CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class _Part:
    """The entries of one part of the catalog as stored: the spec and each entry's position."""

    spec: CatalogSpec
    positions: dict[tuple[str, str], int]


@dataclass
class _Change:
    scope: Scope
    old: CatalogSpec
    new: CatalogSpec
    positions: dict[tuple[str, str], int]
    diff: CatalogDiff


def _json_dumps(value: Any) -> str:
    # Chinese stays readable in the database (the default escapes it as \uXXXX).
    return json.dumps(value, ensure_ascii=False)


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    # SQLite ignores foreign keys unless asked, per connection; PostgreSQL always checks them.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _department_row(d: Department) -> dict[str, Any]:
    return plain_fields(d)


def _department_from_row(row: Any) -> Department:
    return Department(row.id, row.code, row.name, row.level, row.region, row.parent)


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
    def for_settings(cls, settings: Settings) -> CatalogStore:
        """The configured catalog database, migrated to the current schema (the state
        directory, where the default SQLite catalog lives, is made first)."""
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        store = cls(settings.resolved_catalog_dsn, naming=settings.naming)
        try:
            store.migrate()
        except BaseException:
            store.dispose()
            raise
        return store

    @classmethod
    @contextlib.contextmanager
    def opened(cls, settings: Settings) -> Iterator[CatalogStore]:
        """``for_settings``, disposed after."""
        store = cls.for_settings(settings)
        try:
            yield store
        finally:
            store.dispose()

    def dispose(self) -> None:
        """Close the pooled connections (e.g. before dropping the database)."""
        self.engine.dispose()

    def migrate(self, revision: str = "head") -> None:
        """Bring the database schema to ``revision`` (alembic upgrade; default the newest)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
        self._checked = revision == "head"

    def connect(self) -> sa.Connection:
        """A connection to the migrated database (raises StoreError if it is not)."""
        conn = self.engine.connect()
        if not self._checked:
            try:
                migrated = sa.inspect(conn).has_table(CatalogEntryRow.__tablename__)
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
        self,
        spec: CatalogSpec,
        author: str,
        reason: str,
        now: dt.datetime | None = None,
        *,
        department: str | None = None,
        district: str | None = None,
    ) -> int:
        """Store ``spec`` as the next version and return its number.

        Without ``department`` or ``district``, ``spec`` is the whole city's catalog. With
        ``department`` (an id or code), ``spec`` is that department's part: its own record (may
        be left out once it is in the catalog) and every resource it provides, which replace
        the ones stored; other departments may appear in the file only as they are in the
        catalog (e.g. holders, for reading), and resources of other providers are refused.
        With ``district`` (a 6-digit region), ``spec`` is that district's catalog: its
        departments and their resources. Either way the rules are checked for the whole city.

        Raises ``rules.CatalogRuleError``, ``CatalogEvolutionError`` or ``UserError`` (nothing
        is stored). A change that changes nothing makes no version: the current number is
        returned.
        """
        if not author.strip():
            raise UserError("author is required: name who made this catalog change")
        created_at = utc(now)
        with self.connect() as conn, conn.begin():
            self._lock(conn)
            number = self._latest(conn)
            change = self._prepare(conn, spec, department, district)
            if change.diff.is_empty:
                return number
            number += 1
            touched = sorted(change.diff.departments_touched())
            conn.execute(
                sa.insert(CatalogVersionRow),
                {
                    "number": number,
                    "author": author.strip(),
                    "created_at": created_at,
                    "reason": reason,
                    "diff": change.diff.to_dict(),
                    "scope": str(change.scope),
                    "departments": touched,
                },
            )
            self._write_entries(conn, number, change)
            self._write_rows(conn, change)
            self._mark_deadlines(conn, number, set(touched))
            self._write_outbox(conn, number, created_at, change.old, change.new, change.diff)
        return number

    def check(
        self, spec: CatalogSpec, *, department: str | None = None, district: str | None = None
    ) -> CatalogDiff:
        """What ``apply`` would change, checked by the same rules; nothing is stored."""
        with self.connect() as conn:
            return self._prepare(conn, spec, department, district).diff

    def _lock(self, conn: sa.Connection) -> None:
        # Serialises writers on PostgreSQL (readers go on): each change is checked against the
        # catalog really current, so of two departments claiming the same item the later one
        # is refused; and outbox ids are committed in id order, which the relay relies on for
        # per-key order. SQLite allows one writer at a time anyway.
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("LOCK TABLE catalog_version IN EXCLUSIVE MODE"))

    # --- a change, prepared and checked -------------------------------------------------------

    def _prepare(
        self,
        conn: sa.Connection,
        spec: CatalogSpec,
        department: str | None,
        district: str | None,
    ) -> _Change:
        if department is not None and district is not None:
            raise UserError("name a department or a district, not both")
        if department is None and district is None:
            old = self._read(conn, None, None)
            rules.check(spec)
            return self._change(CITY, old, spec, None)
        if district is not None:
            return self._prepare_district(conn, spec, district)
        assert department is not None
        return self._prepare_department(conn, spec, department)

    def _change(
        self, scope: Scope, old: _Part, new: CatalogSpec, next_position: dict[str, int] | None
    ) -> _Change:
        # Only resources that changed can break their schema (checking all 10,000 took 40 s).
        before = {r.code: r for r in old.spec.resources}
        changed = tuple(r for r in new.resources if before.get(r.code, r) != r)
        broken = schemas.check_spec_evolution(
            CatalogSpec(resources=tuple(before[r.code] for r in changed)),
            CatalogSpec(resources=changed),
        )
        if broken:
            raise CatalogEvolutionError(broken)
        positions: dict[tuple[str, str], int] = {}
        codes = (
            ("department", [d.code for d in new.departments]),
            ("resource", [r.code for r in new.resources]),
        )
        for kind, values in codes:
            for n, code in enumerate(values):
                key = (kind, code)
                if next_position is None:  # the whole city: the file's order
                    positions[key] = n
                elif key in old.positions:
                    positions[key] = old.positions[key]
                else:
                    positions[key] = next_position[kind]
                    next_position[kind] += 1
        return _Change(scope, old.spec, new, positions, diff_specs(old.spec, new))

    def _prepare_department(self, conn: sa.Connection, spec: CatalogSpec, name: str) -> _Change:
        stored = self._stored_departments(conn)
        dept = _find_department(stored.values(), name) or _find_department(spec.departments, name)
        if dept is None:
            raise UserError(
                f"department {name!r} is neither in the catalog nor in the file: name it by "
                "its id or 统一社会信用代码, and put its record in the file to add it"
            )
        code = dept.code
        own = next((d for d in spec.departments if d.code == code), stored.get(code))
        assert own is not None
        label = f"department {own.id} ({own.name})"
        _only_unchanged_others(spec.departments, stored, lambda d: d.code == code, label)
        for r in spec.resources:
            if r.provider != code:
                provider = stored.get(r.provider) or spec.department(r.provider)
                who = f"{provider.name} ({r.provider})" if provider else r.provider
                raise UserError(
                    f"resource {r.code} ({r.name}) is provided by {who}: {label} may change "
                    "only the resources it provides (谁编制、谁负责); that department imports "
                    "its own"
                )
        new = CatalogSpec((own,), spec.resources)
        return self._prepare_part(conn, Scope("department", code), new, [code], stored)

    def _prepare_district(self, conn: sa.Connection, spec: CatalogSpec, region: str) -> _Change:
        if not (len(region) == 6 and region.isdigit()):
            raise UserError(f"district {region!r} must be a 6-digit division code, e.g. 320402")
        stored = self._stored_departments(conn)
        label = f"district {region}"
        _only_unchanged_others(spec.departments, stored, lambda d: d.region == region, label)
        mine = tuple(d for d in spec.departments if d.region == region)
        codes = {d.code for d in mine}
        for r in spec.resources:
            if r.provider not in codes:
                provider = stored.get(r.provider) or spec.department(r.provider)
                who = f"{provider.name} ({r.provider})" if provider else r.provider
                raise UserError(
                    f"resource {r.code} ({r.name}) is provided by {who}, which is not a "
                    f"department of {label} in the file: a district's catalog holds only its "
                    "own departments' resources"
                )
        owners = sorted(codes | {d.code for d in stored.values() if d.region == region})
        new = CatalogSpec(mine, spec.resources)
        return self._prepare_part(conn, Scope("district", region), new, owners, stored)

    def _prepare_part(
        self,
        conn: sa.Connection,
        scope: Scope,
        new: CatalogSpec,
        owners: list[str],
        stored: dict[str, Department],
    ) -> _Change:
        old = self._read(conn, None, owners)
        outside = self._outside(conn, new, old.spec, set(owners), stored)
        rules.check(new, outside)
        next_position = {
            kind: int(
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.max(CatalogEntryRow.position), -1)).where(
                        CatalogEntryRow.kind == kind, CatalogEntryRow.until.is_(None)
                    )
                ).scalar_one()
            )
            + 1
            for kind in ("department", "resource")
        }
        return self._change(scope, old, new, next_position)

    def _stored_departments(self, conn: sa.Connection) -> dict[str, Department]:
        rows = conn.execute(sa.select(DepartmentRow)).all()
        return {row.code: _department_from_row(row) for row in rows}

    def _outside(
        self,
        conn: sa.Connection,
        new: CatalogSpec,
        old: CatalogSpec,
        owners: set[str],
        stored: dict[str, Department],
    ) -> rules.Outside:
        """What the rules need of the catalog outside ``owners``' part, from indexed queries."""
        departments = tuple(d for code, d in stored.items() if code not in owners)
        outside_owner = ResourceRow.provider.not_in(sorted(owners))
        resources = {
            row.code: rules.OutsideResource(row.code, row.name, row.provider)
            for row in conn.execute(
                sa.select(ResourceRow.code, ResourceRow.name, ResourceRow.provider).where(
                    outside_owner
                )
            )
        }
        wanted = {
            identity for r in new.resources for identity, _ in rules.single_source_identities(r)
        }
        sources: dict[tuple[str, str, str], rules.OutsideResource] = {}
        key = aliased(ResourceKeyItemRow)
        for batch in _chunks(sorted({identity[2] for identity in wanted})):
            query = (
                sa.select(
                    InfoItemRow.code.label("item"),
                    ResourceRow.code,
                    ResourceRow.name,
                    ResourceRow.provider,
                    ResourceRow.key_subject_type,
                    ResourceRow.key_identifier,
                )
                .join(ResourceRow, ResourceRow.code == InfoItemRow.resource)
                .outerjoin(
                    key, (key.resource == InfoItemRow.resource) & (key.item == InfoItemRow.code)
                )
                .where(InfoItemRow.code.in_(batch), outside_owner, key.item.is_(None))
                .order_by(ResourceRow.code)
            )
            for row in conn.execute(query):
                kind = (row.key_identifier or "") if row.key_subject_type == "other" else ""
                identity = (row.key_subject_type, kind, row.item)
                if identity in wanted:
                    sources.setdefault(
                        identity, rules.OutsideResource(row.code, row.name, row.provider)
                    )
        references: list[rules.Reference] = []
        removed = {r.code for r in old.resources} - {r.code for r in new.resources}
        if removed:
            for rel in conn.execute(
                sa.select(ResourceRow.code, ResourceRow.related).where(outside_owner)
            ):
                references += [
                    rules.Reference("related", rel.code, c) for c in rel.related if c in removed
                ]
        gone = sorted({d.code for d in old.departments} - {d.code for d in new.departments})
        for batch in _chunks(gone):
            for holder in conn.execute(
                sa.select(HolderRow.resource, HolderRow.department)
                .join(ResourceRow, ResourceRow.code == HolderRow.resource)
                .where(HolderRow.department.in_(batch), outside_owner)
                .distinct()
            ):
                references.append(rules.Reference("holder", holder.resource, holder.department))
            for led in conn.execute(
                sa.select(ResourceRow.code, ResourceRow.lead_department).where(
                    ResourceRow.lead_department.in_(batch), outside_owner
                )
            ):
                references.append(rules.Reference("lead", led.code, str(led.lead_department)))
            references += [
                rules.Reference("parent", d.code, d.parent)
                for d in departments
                if d.parent in batch
            ]
        return rules.Outside(departments, resources, sources, tuple(references))

    # --- a change, written --------------------------------------------------------------------

    def _write_entries(self, conn: sa.Connection, number: int, change: _Change) -> None:
        diff = change.diff
        ended = {
            "department": _codes(diff.removed_departments, diff.changed_departments),
            "resource": _codes(diff.removed_resources, diff.changed_resources),
        }
        for kind, codes in ended.items():
            for batch in _chunks(codes):
                conn.execute(
                    sa.update(CatalogEntryRow)
                    .where(
                        CatalogEntryRow.kind == kind,
                        CatalogEntryRow.code.in_(batch),
                        CatalogEntryRow.until.is_(None),
                    )
                    .values(until=number)
                )
        rows: list[dict[str, Any]] = []
        depts = set(_codes(diff.added_departments, diff.changed_departments))
        for d in change.new.departments:
            if d.code in depts:
                rows.append(self._entry("department", d.code, d.code, department_dict(d)))
        res = set(_codes(diff.added_resources, diff.changed_resources))
        for r in change.new.resources:
            if r.code in res:
                rows.append(self._entry("resource", r.code, r.provider, resource_dict(r)))
        for row in rows:
            row["since"] = number
            row["position"] = change.positions[(row["kind"], row["code"])]
        if rows:
            conn.execute(sa.insert(CatalogEntryRow), rows)

    @staticmethod
    def _entry(kind: str, code: str, owner: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"kind": kind, "code": code, "owner": owner, "body": body, "until": None}

    def _write_rows(self, conn: sa.Connection, change: _Change) -> None:
        """Bring the normalised tables of the current catalog up to date with the change."""
        diff = change.diff
        gone = _codes(diff.removed_resources, diff.changed_resources)
        for batch in _chunks(gone):
            for table in (HolderRow, ResourceKeyItemRow, InfoItemRow):
                conn.execute(sa.delete(table).where(table.resource.in_(batch)))
            conn.execute(sa.delete(ResourceRow).where(ResourceRow.code.in_(batch)))
        added = {d.code for d in diff.added_departments}
        changed = {d.code for d in diff.changed_departments}
        if added:
            conn.execute(
                sa.insert(DepartmentRow),
                [_department_row(d) for d in change.new.departments if d.code in added],
            )
        for d in change.new.departments:
            if d.code in changed:
                conn.execute(
                    sa.update(DepartmentRow)
                    .where(DepartmentRow.code == d.code)
                    .values(_department_row(d))
                )
        fresh = set(_codes(diff.added_resources, diff.changed_resources))
        self._insert_resources([r for r in change.new.resources if r.code in fresh], conn)
        removed = [d.code for d in diff.removed_departments]
        for batch in _chunks(removed):
            conn.execute(sa.delete(DepartmentRow).where(DepartmentRow.code.in_(batch)))

    @staticmethod
    def _insert_resources(spec_resources: list[Resource], conn: sa.Connection) -> None:
        resources: list[dict[str, Any]] = []
        items: list[dict[str, Any]] = []
        keys: list[dict[str, Any]] = []
        holders: dict[tuple[str, str, str], None] = {}  # ordered set: a repeated item is one row
        for r in spec_resources:
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
        new_depts = {d.code: d for d in new.departments}
        new_res = {r.code: r for r in new.resources}
        old_depts = {d.code: d for d in old.departments}
        old_res = {r.code: r for r in old.resources}
        # Departments before the resources that name them, deletions after.
        for code in [d.code for d in diff.added_departments] + [
            d.code for d in diff.changed_departments
        ]:
            events.append(
                (f"department:{code}", _event("upsert", number, department=new_depts[code]))
            )
        for code in [r.code for r in diff.added_resources] + [
            r.code for r in diff.changed_resources
        ]:
            events.append((code, _event("upsert", number, resource=new_res[code])))
        for named in diff.removed_resources:
            events.append((named.code, _event("delete", number, resource=old_res[named.code])))
        for named in diff.removed_departments:
            events.append(
                (
                    f"department:{named.code}",
                    _event("delete", number, department=old_depts[named.code]),
                )
            )
        topic = self.naming.catalog_topic
        conn.execute(
            sa.insert(OutboxRow),
            [
                {"created_at": created_at, "topic": topic, "key": key, "value": value}
                for key, value in events
            ],
        )

    # --- reading ----------------------------------------------------------------------------

    def _latest(self, conn: sa.Connection) -> int:
        number = conn.execute(sa.select(sa.func.max(CatalogVersionRow.number))).scalar_one()
        return int(number or 0)

    def _read(
        self, conn: sa.Connection, version: int | None, owners: Iterable[str] | None
    ) -> _Part:
        """The entries valid at ``version`` (None: current), of ``owners`` (None: all)."""
        entry = CatalogEntryRow
        query = sa.select(entry.kind, entry.code, entry.position, entry.body).where(
            _valid_at(version)
        )
        batches: list[list[str] | None] = [None] if owners is None else list(_chunks(owners))
        rows: list[Any] = []
        for batch in batches:
            q = query if batch is None else query.where(entry.owner.in_(batch))
            rows += conn.execute(q).all()
        rows.sort(key=lambda row: (row.kind, row.position, row.code))
        departments = [row.body for row in rows if row.kind == "department"]
        resources = [row.body for row in rows if row.kind == "resource"]
        spec = CatalogSpec.from_dict({"departments": departments, "resources": resources})
        return _Part(spec, {(row.kind, row.code): row.position for row in rows})

    def latest_number(self) -> int:
        """The newest version number, 0 before the first ``apply``."""
        with self.connect() as conn:
            return self._latest(conn)

    def current(self) -> CatalogSpec:
        """The newest catalog (empty before the first ``apply``): the city's aggregate, every
        department's and district's part together."""
        with self.connect() as conn:
            return self._read(conn, None, None).spec

    def _check_version(self, conn: sa.Connection, number: int) -> None:
        exists = conn.execute(
            sa.select(CatalogVersionRow.number).where(CatalogVersionRow.number == number)
        ).scalar_one_or_none()
        if exists is None:
            last = self._latest(conn)
            raise VersionNotFoundError(
                f"catalog version {number} does not exist (versions are 1..{last}); "
                "`govbus catalog history` lists them"
                if last
                else f"catalog version {number} does not exist: the catalog has no versions yet "
                "(`govbus catalog import` makes the first)"
            )

    def version(self, number: int) -> CatalogSpec:
        """The catalog as of version ``number``; version 0 is the empty catalog before v1."""
        if number == 0:
            return CatalogSpec()
        with self.connect() as conn:
            self._check_version(conn, number)
            return self._read(conn, number, None).spec

    def version_at(self, when: dt.datetime) -> int:
        """The number of the version current at ``when`` (0: before the first)."""
        with self.connect() as conn:
            number = conn.execute(
                sa.select(sa.func.max(CatalogVersionRow.number)).where(
                    CatalogVersionRow.created_at <= utc(when)
                )
            ).scalar_one()
        return int(number or 0)

    def as_of(self, when: dt.datetime) -> CatalogSpec:
        """The catalog as it was at ``when``."""
        return self.version(self.version_at(when))

    def part(
        self,
        *,
        department: str | None = None,
        district: str | None = None,
        version: int | None = None,
    ) -> CatalogSpec:
        """One department's or district's part of the catalog (current, or as of ``version``):
        its departments and the resources they provide, followed by the other departments
        those resources name (holders, lead departments, parents), as the catalog has them.
        Neither given: the whole catalog."""
        if department is not None and district is not None:
            raise UserError("name a department or a district, not both")
        with self.connect() as conn:
            if version is not None and version != 0:
                self._check_version(conn, version)
            if version == 0:
                return CatalogSpec()
            if department is None and district is None:
                return self._read(conn, version, None).spec
            all_depts = self._read_departments(conn, version)
            if department is not None:
                dept = _find_department(all_depts, department)
                if dept is None:
                    raise UserError(
                        f"no department {department!r} in the catalog: `govbus catalog show` "
                        "lists them (by id or 统一社会信用代码)"
                    )
                owners = [dept.code]
            else:
                assert district is not None
                owners = [d.code for d in all_depts if d.region == district]
                if not owners:
                    raise UserError(
                        f"no department of district {district} in the catalog (a 6-digit "
                        "division code such as 320402 天宁区)"
                    )
            part = self._read(conn, version, owners).spec
        named = {d.code for d in part.departments}
        wanted: dict[str, None] = {}
        for r in part.resources:
            for ref in rules.referenced([r]):
                if ref.kind != "related":
                    wanted[ref.target] = None
        for d in part.departments:
            if d.parent:
                wanted[d.parent] = None
        others = tuple(d for d in all_depts if d.code in wanted and d.code not in named)
        return CatalogSpec((*part.departments, *others), part.resources)

    def _read_departments(self, conn: sa.Connection, version: int | None) -> list[Department]:
        entry = CatalogEntryRow
        rows = conn.execute(
            sa.select(entry.body)
            .where(entry.kind == "department", _valid_at(version))
            .order_by(entry.position, entry.code)
        ).all()
        return list(CatalogSpec.from_dict({"departments": [r.body for r in rows]}).departments)

    def history(self, department: str | None = None) -> list[VersionInfo]:
        """Every version, oldest first; with ``department`` (id or code), those that changed
        its catalog."""
        with self.connect() as conn:
            code = None
            if department is not None:
                found = _find_department(
                    [
                        *self._stored_departments(conn).values(),
                        *self._read_departments(conn, None),
                    ],
                    department,
                )
                code = found.code if found else department
            rows = conn.execute(
                sa.select(
                    CatalogVersionRow.number,
                    CatalogVersionRow.author,
                    CatalogVersionRow.created_at,
                    CatalogVersionRow.reason,
                    CatalogVersionRow.diff,
                    CatalogVersionRow.scope,
                    CatalogVersionRow.departments,
                ).order_by(CatalogVersionRow.number)
            ).all()
        out = []
        for row in rows:
            if code is not None and code not in row.departments:
                continue
            diff = CatalogDiff.from_dict(row.diff)
            out.append(
                VersionInfo(
                    row.number,
                    row.author,
                    utc(row.created_at),
                    row.reason,
                    diff.summary(),
                    diff,
                    row.scope,
                    tuple(row.departments),
                )
            )
        return out

    def diff(self, a: int, b: int) -> CatalogDiff:
        """What changed from version ``a`` to version ``b`` (0: the empty catalog)."""
        return diff_specs(self.version(a), self.version(b))


def _valid_at(version: int | None) -> sa.ColumnElement[bool]:
    """Entries of the catalog as of ``version`` (None: the current catalog)."""
    entry = CatalogEntryRow
    if version is None:
        return entry.until.is_(None)
    return sa.and_(entry.since <= version, sa.or_(entry.until.is_(None), entry.until > version))


def _codes(*groups: Iterable[Named | DepartmentChange | ResourceChange]) -> list[str]:
    return [x.code for group in groups for x in group]


def _find_department(departments: Iterable[Department], name: str) -> Department | None:
    return next((d for d in departments if name in (d.code, d.id)), None)


def _only_unchanged_others(
    departments: Iterable[Department],
    stored: Mapping[str, Department],
    mine: Callable[[Department], bool],
    label: str,
) -> None:
    """Departments outside the part may appear in its file only as the catalog has them."""
    for d in departments:
        if mine(d):
            continue
        have = stored.get(d.code)
        if have is None:
            raise UserError(
                f"department {d.id} ({d.name}, {d.code}) is in the file but not in the catalog, "
                f"and it is not {label}'s to add: it imports its own record"
            )
        if have != d:
            fields = ", ".join(
                f.name for f in dataclasses.fields(d) if getattr(d, f.name) != getattr(have, f.name)
            )
            raise UserError(
                f"department {d.id} ({d.name}, {d.code}) differs from the catalog in {fields}: "
                f"{label} may change only its own records; that department imports its own"
            )


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
