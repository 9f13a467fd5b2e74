"""The mapping file of a front-end agent: which front-end tables are which resources (pure).

A department's 前置机 (article 16, 前置机共享) holds a front-end database (前置库) its business
system writes to and reads from. The mapping file (YAML, docs/agent.md) says, for the source
(``sources``), which table's columns are which info items of which resource the department
provides, with per-column transforms and how changes and deletes are found; for the sink
(``sinks``), which resources the department reads go into which tables.

Every error names the file, line and column of the YAML node at fault (``MappingError``), and
the item or column concerned, e.g.::

    agent.yaml:14:9: sources[0] (table mz_people) column XB: item gender is not an info item
    of resource 10101/...-000001 人口基本信息 (items: citizen_id, citizen_name, birth_date)

``load_mapping`` checks the file's structure; ``check_sources`` / ``check_sinks`` check it
against the catalog (every mapped column an item of the resource, every required and key item
mapped, a transform's output of the item's type, the department the provider of what it
publishes); ``connectors.tables`` checks it against the database (columns exist, types fit).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from govbus.vocabulary.errors import UserError
from govbus.vocabulary.spec import DATA_TYPE_NAMES, CatalogSpec, Purpose, Resource
from govbus.vocabulary.textfiles import check_encoding, open_text

__all__ = [
    "ColumnMap",
    "DeleteLog",
    "MappingError",
    "MappingFile",
    "SinkTable",
    "SoftDelete",
    "SourceTable",
    "Where",
    "check_sinks",
    "check_sources",
    "load_mapping",
]

PURPOSES: tuple[str, ...] = get_args(Purpose)
DEFAULT_POLL_INTERVAL = 5.0
DEFAULT_BATCH_SIZE = 1000
CASES = ("upper", "lower")


@dataclass(frozen=True)
class Where:
    """A place in the mapping file (line and column from 1)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class MappingError(UserError):
    """The mapping file is wrong; the message starts with ``file:line:column``."""

    def __init__(self, where: Where | str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where


@dataclass(frozen=True)
class ColumnMap:
    """One column of a table and the info item it holds, with the transforms between them.

    Applied in this order (source: column → item; the sink writes the item as it is):
    ``encoding`` decodes bytes of a column that is not UTF-8; ``trim`` strips spaces;
    ``case`` upper- or lower-cases; ``code_table`` replaces a code by its value (a code not in
    the table, without ``default``, dead-letters the row); ``date_format`` parses text with
    ``strptime`` into a date (item type D) or a date-time (T, China time when the text has
    no zone).
    """

    column: str
    item: str
    where: Where
    trim: bool = False
    case: str | None = None
    code_table: Mapping[str, Any] | None = None
    default: Any = None  # the code table's value for a code it does not list (None: refuse)
    date_format: str | None = None
    encoding: str | None = None


@dataclass(frozen=True)
class SoftDelete:
    """Rows whose ``column`` equals ``value`` are deleted: published as tombstones."""

    column: str
    value: Any
    where: Where


@dataclass(frozen=True)
class DeleteLog:
    """A table the business system writes a row to for each deleted row: the deleted row's key
    columns (named as in the source table) and ``time``, when it was deleted."""

    table: str
    time: str
    where: Where


@dataclass(frozen=True)
class SourceTable:
    """A front-end table the source publishes as records of ``resource``.

    Changes are found by the watermark (``updated_at``, then ``key``); ``key`` is the table's
    primary key, which dead letters name (default: the table's own primary key).
    """

    table: str
    resource: str
    columns: tuple[ColumnMap, ...]
    where: Where
    updated_at: str
    key: tuple[str, ...] = ()
    soft_delete: SoftDelete | None = None
    delete_log: DeleteLog | None = None

    def column_of(self, item: str) -> ColumnMap | None:
        return next((c for c in self.columns if c.item == item), None)


@dataclass(frozen=True)
class SinkTable:
    """A front-end table the sink keeps as a copy of ``resource`` (or its public ``view``)."""

    resource: str
    table: str
    purpose: str
    where: Where
    view: str | None = None
    verification_status: bool = False
    columns: Mapping[str, str] = field(default_factory=dict)  # item code -> column name

    def column(self, item: str) -> str:
        return self.columns.get(item, item)


@dataclass(frozen=True)
class MappingFile:
    path: str
    database: str | None
    poll_interval: float
    batch_size: int
    sources: tuple[SourceTable, ...]
    sinks: tuple[SinkTable, ...]
    department: str | None = None
    where: Where = field(default_factory=lambda: Where("", 1, 1))


# --- reading YAML with positions -----------------------------------------------------------------


class _Doc:
    """The YAML document as plain values, with the position of every node by its path."""

    def __init__(self, path: str, root: Node) -> None:
        self.path = path
        self.marks: dict[tuple[Any, ...], Where] = {}
        self._constructor = SafeConstructor()
        self.value = self._plain(root, ())

    def where(self, path: tuple[Any, ...]) -> Where:
        while path not in self.marks and path:
            path = path[:-1]
        return self.marks.get(path, Where(self.path, 1, 1))

    def _plain(self, node: Node, path: tuple[Any, ...]) -> Any:
        mark = node.start_mark
        self.marks[path] = Where(self.path, mark.line + 1, mark.column + 1)
        if isinstance(node, MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._plain(key_node, (*path, "<key>"))
                self.marks[(*path, "<key>", key)] = self.marks[(*path, "<key>")]
                if key in out:
                    raise MappingError(self.where((*path, "<key>")), f"duplicate key {key!r}")
                out[key] = self._plain(value_node, (*path, key))
            return out
        if isinstance(node, SequenceNode):
            return [self._plain(v, (*path, i)) for i, v in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self._constructor.construct_object(node, deep=True)


class _Reader:
    """Typed access to one mapping node of the document, errors naming its place."""

    def __init__(self, doc: _Doc, path: tuple[Any, ...], value: Any, label: str) -> None:
        self.doc, self.path, self.label = doc, path, label
        if not isinstance(value, dict):
            raise MappingError(doc.where(path), f"{label}: expected a mapping (key: value)")
        self.value: dict[Any, Any] = value

    def where(self, key: str | None = None) -> Where:
        return self.doc.where(self.path if key is None else (*self.path, key))

    def only(self, allowed: set[str]) -> None:
        for key in self.value:
            if key not in allowed:
                raise MappingError(
                    self.doc.where((*self.path, "<key>", key)),
                    f"{self.label}: unknown key {key!r}; allowed: {', '.join(sorted(allowed))}",
                )

    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self.value.get(key)
        if value is None:
            if required:
                raise MappingError(self.where(), f"{self.label}: {key!r} is required")
            return None
        if not isinstance(value, str) or not value.strip():
            raise MappingError(self.where(key), f"{self.label}: {key!r} must be non-empty text")
        return value.strip()

    def required_text(self, key: str) -> str:
        value = self.text(key, required=True)
        assert value is not None
        return value

    def number(self, key: str, default: float, *, whole: bool = False) -> float:
        value = self.value.get(key, default)
        ok = isinstance(value, int) if whole else isinstance(value, int | float)
        if isinstance(value, bool) or not ok or value <= 0:
            kind = "a whole number" if whole else "a number"
            raise MappingError(self.where(key), f"{self.label}: {key!r} must be {kind} > 0")
        return float(value)

    def flag(self, key: str) -> bool:
        value = self.value.get(key, False)
        if not isinstance(value, bool):
            raise MappingError(self.where(key), f"{self.label}: {key!r} must be true or false")
        return value

    def names(self, key: str) -> tuple[str, ...]:
        value = self.value.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise MappingError(self.where(key), f"{self.label}: {key!r} must be column names")
        return tuple(value)

    def items(self, key: str) -> Iterator[tuple[int, Any]]:
        value = self.value.get(key, [])
        if not isinstance(value, list):
            raise MappingError(self.where(key), f"{self.label}: {key!r} must be a list")
        yield from enumerate(value)

    def child(self, key: str, label: str) -> _Reader:
        return _Reader(self.doc, (*self.path, key), self.value.get(key), label)


def load_mapping(path: str | Path, *, encoding: str | None = None) -> MappingFile:
    """The mapping file at ``path``, its structure checked (UTF-8 or GB18030, as any file a
    Chinese office hands over; govbus/vocabulary/textfiles.py)."""
    name = str(path)
    with open_text(path, encoding) as fh:
        text = fh.read()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = Where(name, mark.line + 1, mark.column + 1) if mark else Where(name, 1, 1)
        raise MappingError(where, f"not valid YAML: {exc.problem}") from None
    if root is None:
        raise MappingError(Where(name, 1, 1), "the mapping file is empty")
    doc = _Doc(name, root)
    top = _Reader(doc, (), doc.value, "mapping")
    top.only({"department", "database", "poll_interval", "batch_size", "sources", "sinks"})
    sources = tuple(
        _source(_Reader(doc, ("sources", i), value, f"sources[{i}]"))
        for i, value in top.items("sources")
    )
    sinks = tuple(
        _sink(_Reader(doc, ("sinks", i), value, f"sinks[{i}]")) for i, value in top.items("sinks")
    )
    if not sources and not sinks:
        raise MappingError(top.where(), "the mapping has neither 'sources' nor 'sinks'")
    database = top.text("database")
    return MappingFile(
        path=name,
        database=os.path.expandvars(database) if database else None,
        poll_interval=top.number("poll_interval", DEFAULT_POLL_INTERVAL),
        batch_size=int(top.number("batch_size", DEFAULT_BATCH_SIZE, whole=True)),
        sources=sources,
        sinks=sinks,
        department=top.text("department"),
        where=top.where(),
    )


def _source(node: _Reader) -> SourceTable:
    node.only({"table", "resource", "key", "updated_at", "columns", "soft_delete", "delete_log"})
    table = node.required_text("table")
    node.label = f"sources[{node.path[-1]}] (table {table})"
    columns: list[ColumnMap] = []
    raw = node.value.get("columns")
    if not isinstance(raw, list) or not raw:
        raise MappingError(node.where("columns"), f"{node.label}: 'columns' must list columns")
    for i, value in node.items("columns"):
        columns.append(_column(_Reader(node.doc, (*node.path, "columns", i), value, node.label)))
    seen: dict[str, ColumnMap] = {}
    for column in columns:
        if column.item in seen:
            raise MappingError(
                column.where,
                f"{node.label} column {column.column}: item {column.item} is already mapped "
                f"from column {seen[column.item].column} (line {seen[column.item].where.line})",
            )
        seen[column.item] = column
    soft = delete_log = None
    if "soft_delete" in node.value:
        sd = node.child("soft_delete", f"{node.label} soft_delete")
        sd.only({"column", "value"})
        if "value" not in sd.value:
            raise MappingError(sd.where(), f"{sd.label}: 'value' (meaning deleted) is required")
        soft = SoftDelete(sd.required_text("column"), sd.value["value"], sd.where())
    if "delete_log" in node.value:
        dl = node.child("delete_log", f"{node.label} delete_log")
        dl.only({"table", "time"})
        delete_log = DeleteLog(dl.required_text("table"), dl.required_text("time"), dl.where())
    return SourceTable(
        table=table,
        resource=node.required_text("resource"),
        columns=tuple(columns),
        where=node.where(),
        updated_at=node.required_text("updated_at"),
        key=node.names("key"),
        soft_delete=soft,
        delete_log=delete_log,
    )


def _column(node: _Reader) -> ColumnMap:
    label = node.label
    node.only({"column", "item", "trim", "case", "code_table", "default", "date_format",
               "encoding"})  # fmt: skip
    column = node.required_text("column")
    node.label = f"{label} column {column}"
    case = node.text("case")
    if case is not None and case not in CASES:
        raise MappingError(node.where("case"), f"{node.label}: case must be upper or lower")
    table = node.value.get("code_table")
    if table is not None and (not isinstance(table, dict) or not table):
        raise MappingError(
            node.where("code_table"), f"{node.label}: code_table must map codes to values"
        )
    if "default" in node.value and table is None:
        raise MappingError(node.where("default"), f"{node.label}: 'default' needs a code_table")
    date_format = node.text("date_format")
    if date_format is not None and "%" not in date_format:
        raise MappingError(
            node.where("date_format"),
            f"{node.label}: date_format {date_format!r} has no strptime field (e.g. %Y%m%d)",
        )
    encoding = node.text("encoding")
    if encoding is not None:
        try:
            encoding = check_encoding(encoding)
        except UserError as exc:
            raise MappingError(node.where("encoding"), f"{node.label}: {exc}") from None
    return ColumnMap(
        column=column,
        item=node.required_text("item"),
        where=node.where(),
        trim=node.flag("trim"),
        case=case,
        code_table={str(k): v for k, v in table.items()} if table else None,
        default=node.value.get("default"),
        date_format=date_format,
        encoding=encoding,
    )


def _sink(node: _Reader) -> SinkTable:
    node.only({"resource", "table", "purpose", "view", "verification_status", "columns"})
    resource = node.required_text("resource")
    node.label = f"sinks[{node.path[-1]}] (resource {resource})"
    purpose = node.required_text("purpose")
    if purpose not in PURPOSES:
        raise MappingError(
            node.where("purpose"),
            f"{node.label}: purpose {purpose!r} is not one of {', '.join(PURPOSES)} (article 18)",
        )
    view = node.text("view")
    if view is not None and view != "public":
        raise MappingError(node.where("view"), f"{node.label}: the only view is 'public'")
    columns = node.value.get("columns") or {}
    if not isinstance(columns, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in columns.items()
    ):
        raise MappingError(
            node.where("columns"), f"{node.label}: 'columns' must map item codes to column names"
        )
    return SinkTable(
        resource=resource,
        table=node.required_text("table"),
        purpose=purpose,
        where=node.where(),
        view=view,
        verification_status=node.flag("verification_status"),
        columns=dict(columns),
    )


# --- against the catalog ------------------------------------------------------------------------


def _resource(spec: CatalogSpec, code: str, where: Where, label: str) -> Resource:
    resource = spec.resource(code)
    if resource is None:
        raise MappingError(
            where,
            f"{label}: resource {code} is not in the catalog; find its code with "
            "`govbus catalog search` or `govbus catalog show`",
        )
    return resource


def _output_problem(column: ColumnMap, data_type: str) -> str | None:
    """Why the column's transforms cannot give a value of ``data_type``, or None."""
    if column.date_format is not None and data_type not in ("D", "T"):
        return (
            f"date_format gives a date, but the item is {DATA_TYPE_NAMES[data_type]} "
            f"({data_type}); only 日期型 (D) and 日期时间型 (T) items take one"
        )
    if column.code_table is not None and column.date_format is None:
        for code, value in [*column.code_table.items(), ("default", column.default)]:
            if value is None:
                continue
            if not _fits(value, data_type):
                return (
                    f"code_table value {value!r} (for {code!r}) is not "
                    f"{DATA_TYPE_NAMES[data_type]} ({data_type})"
                )
    return None


def _fits(value: Any, data_type: str) -> bool:
    if data_type in ("C", "M", "G"):
        return isinstance(value, str)
    if data_type == "L":
        return isinstance(value, bool)
    if data_type == "I":
        return isinstance(value, int) and not isinstance(value, bool)
    if data_type in ("N", "B", "F", "Y"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if data_type == "D":
        return isinstance(value, dt.date | str)
    return isinstance(value, dt.datetime | str)


def check_sources(mapping: MappingFile, spec: CatalogSpec, provider_code: str) -> None:
    """Each source table against the catalog: its resource exists and ``provider_code`` (the
    agent's department) provides it; every column maps to an item of it, every required and key
    item is mapped, transforms give the item's type. Raises the first MappingError."""
    if not mapping.sources:
        raise MappingError(mapping.where, "the mapping has no 'sources' for the source agent")
    for i, source in enumerate(mapping.sources):
        label = f"sources[{i}] (table {source.table})"
        resource = _resource(spec, source.resource, source.where, label)
        if resource.provider != provider_code:
            provider = spec.department(resource.provider)
            raise MappingError(
                source.where,
                f"{label}: resource {resource.code} {resource.name} is provided by "
                f"{provider.name if provider else resource.provider}, not by this department "
                "(one data, one source: only the provider publishes it)",
            )
        codes = ", ".join(item.code for item in resource.items)
        for column in source.columns:
            item = resource.item(column.item)
            where = f"{label} column {column.column}"
            if item is None:
                raise MappingError(
                    column.where,
                    f"{where}: item {column.item} is not an info item of resource "
                    f"{resource.code} {resource.name} (items: {codes})",
                )
            problem = _output_problem(column, item.data_type)
            if problem:
                raise MappingError(column.where, f"{where} → item {item.code}: {problem}")
        for item in resource.items:
            needed = item.required or item.code in resource.key.items
            if needed and source.column_of(item.code) is None:
                why = "a key item" if item.code in resource.key.items else "required"
                raise MappingError(
                    source.where,
                    f"{label}: item {item.code} ({item.name}) of resource {resource.code} is "
                    f"{why} but no column maps to it; add a column with item: {item.code}",
                )


def check_sinks(mapping: MappingFile, spec: CatalogSpec) -> None:
    """Each sink table against the catalog: its resource exists, renamed items are items of it,
    and no two items share a column. (Whether the department may read it is the consumer SDK's
    check, made when the sink starts.)"""
    if not mapping.sinks:
        raise MappingError(mapping.where, "the mapping has no 'sinks' for the sink agent")
    tables: dict[str, SinkTable] = {}
    for i, sink in enumerate(mapping.sinks):
        label = f"sinks[{i}] (resource {sink.resource})"
        resource = _resource(spec, sink.resource, sink.where, label)
        if sink.table in tables:
            raise MappingError(
                sink.where, f"{label}: table {sink.table} is already the sink of "
                f"{tables[sink.table].resource}; one table holds one resource"
            )  # fmt: skip
        tables[sink.table] = sink
        for item_code in sink.columns:
            if resource.item(item_code) is None:
                raise MappingError(
                    sink.where,
                    f"{label}: columns names item {item_code}, which is not an info item of "
                    f"resource {resource.code} {resource.name}",
                )
        names = [sink.column(item.code) for item in resource.items]
        if len(set(names)) != len(names):
            raise MappingError(sink.where, f"{label}: two items are renamed to the same column")
