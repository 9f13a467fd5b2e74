"""A front-end table's row as a record of its resource, through the mapping's transforms (pure).

``RowConverter.convert`` turns one row (column → value, as the database driver gave it) into
the record the provider SDK publishes (item code → value, plus ``_origin``: the table and the
row's primary key, which a dead letter carries), or into the errors that keep it from being
one. The record is then validated by the provider SDK like any other (producers/validate.py);
the errors here are what that validation cannot see:

    text-encoding  a text column holds bytes that are not text in its encoding (GBK bytes in a
                   UTF-8 column); the column is named, and the mapping's ``encoding`` fixes it
    transform      a code not in the column's ``code_table``, or text ``date_format`` does not
                   parse

Values are also put in the form validation expects, where that loses nothing: a naive date-time
is China time (databases without zones store local time), an integer column mapped to a text
item becomes its digits, 0/1 of an integer column mapped to a logical item becomes false/true,
a whole decimal mapped to an integer item becomes an int.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.mapping import ColumnMap, SourceTable
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.spec import InfoItem, Resource
from producers.validate import RecordError

__all__ = ["Converted", "RowConverter", "decode_text"]


def decode_text(raw: bytes) -> str | bytes:
    """A SQLite text value as ``str`` if it is UTF-8, else the bytes as they are (sqlite3's
    ``text_factory``): one bad row must be dead-lettered, not fail the whole query."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


@dataclass(frozen=True)
class Converted:
    """A row as a record (``errors`` empty) or why it cannot be one; ``origin`` names the row."""

    record: dict[str, Any]
    origin: dict[str, Any]
    errors: list[RecordError]


class RowConverter:
    """Rows of ``source``'s table as records of ``resource`` (its items checked beforehand by
    ``mapping.check_sources``); ``key_columns`` is the table's primary key."""

    def __init__(self, source: SourceTable, resource: Resource, key_columns: Sequence[str]):
        self.source = source
        self.resource = resource
        self.key_columns = tuple(key_columns)
        self.plan: list[tuple[ColumnMap, InfoItem, bool]] = []
        for column in source.columns:
            item = resource.item(column.item)
            assert item is not None, "mapping.check_sources checks every item"
            self.plan.append((column, item, _plain(column, item)))
        self.key_plan = [p for p in self.plan if p[1].code in resource.key.items]

    def origin(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Where the row is: its table and primary key (shown as text when not JSON-able)."""
        return {
            "table": self.source.table,
            "primary_key": {c: _shown(row.get(c)) for c in self.key_columns},
        }

    def convert(self, row: Mapping[str, Any], position: int) -> Converted:
        """The row as a record (every mapped column, NULLs left out)."""
        return self._convert(row, position, self.plan)

    def convert_key(self, row: Mapping[str, Any], position: int) -> Converted:
        """Only the key items of a deleted row (a tombstone's key)."""
        return self._convert(row, position, self.key_plan)

    def _convert(
        self,
        row: Mapping[str, Any],
        position: int,
        plan: list[tuple[ColumnMap, InfoItem, bool]],
    ) -> Converted:
        origin = self.origin(row)
        record: dict[str, Any] = {}
        errors: list[RecordError] = []
        for column, item, plain in plan:
            value = row.get(column.column)
            if value is None:
                continue
            if plain and value.__class__ is str:  # most columns: text as it is
                record[item.code] = value
                continue
            try:
                value = _transformed(column, item, value)
            except _RowProblem as problem:
                where = f"record {position} (table {self.source.table}, {_key_text(origin)})"
                message = (
                    f"{where}, column {column.column} → item {item.code} ({item.name}): rule "
                    f"{problem.rule} — {problem}"
                )
                errors.append(RecordError(position, item.code, problem.rule, message))
                continue
            if value is not None:
                record[item.code] = value
        record["_origin"] = origin
        return Converted(record, origin, errors)


def _plain(column: ColumnMap, item: InfoItem) -> bool:
    """A text item from a column without transforms: its text values pass unchanged."""
    transforms = (column.trim, column.case, column.code_table, column.date_format, column.encoding)
    return item.data_type in ("C", "M") and not any(transforms)


class _RowProblem(ValueError):
    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


def _transformed(column: ColumnMap, item: InfoItem, value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview) and item.data_type != "G":
        value = _decoded(column, bytes(value))
    if isinstance(value, str):
        if column.trim:
            value = value.strip()
        if column.case == "upper":
            value = value.upper()
        elif column.case == "lower":
            value = value.lower()
    if column.code_table is not None:
        code = _code(value)
        if code in column.code_table:
            value = column.code_table[code]
        elif column.default is not None:
            value = column.default
        else:
            listed = ", ".join(list(column.code_table)[:8])
            raise _RowProblem(
                "transform", f"code {code!r} is not in the column's code_table ({listed})"
            )
    if column.date_format is not None:
        value = _parsed_date(column.date_format, value, item.data_type)
    return _typed(item, value)


def _decoded(column: ColumnMap, raw: bytes) -> str:
    codec = column.encoding or "utf-8"
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as exc:
        hint = (
            "declare the column's encoding in the mapping (e.g. encoding: gb18030) or fix the row"
            if column.encoding is None
            else "fix the row, or correct the column's encoding in the mapping"
        )
        raise _RowProblem(
            "text-encoding",
            f"column {column.column} holds bytes that are not {codec} text (byte {exc.start}: "
            f"0x{raw[exc.start]:02x}; GBK/GB18030 text in a UTF-8 column?); {hint}",
        ) from None


def _code(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, decimal.Decimal) and value == value.to_integral_value():
        return str(int(value))
    return str(value)


def _parsed_date(fmt: str, value: Any, data_type: str) -> dt.date | dt.datetime:
    if isinstance(value, dt.date):
        return value  # the driver gave a date already
    text = str(value).strip()
    try:
        parsed = dt.datetime.strptime(text, fmt)
    except ValueError:
        raise _RowProblem(
            "transform", f"text of {len(text)} character(s) does not match date_format {fmt!r}"
        ) from None
    return parsed.date() if data_type == "D" else parsed


def _typed(item: InfoItem, value: Any) -> Any:
    """The value in the form validation expects, where that loses nothing (module doc)."""
    kind = item.data_type
    if kind == "T" and isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=CHINA_TZ)
    if kind in ("C", "M") and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if kind == "L" and not isinstance(value, bool) and isinstance(value, int) and value in (0, 1):
        return bool(value)
    if kind == "I" and isinstance(value, decimal.Decimal) and value == value.to_integral_value():
        return int(value)
    return value


def _shown(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def _key_text(origin: Mapping[str, Any]) -> str:
    pk = origin["primary_key"]
    return ", ".join(f"{c}={v}" for c, v in pk.items()) or "no primary key"
