"""The catalog as spreadsheets: an xlsx workbook or a directory of CSV files.

Departments keep their catalogs (政务信息资源目录) in spreadsheets, so a ``CatalogSpec`` can be
exported to and imported from an xlsx workbook with the sheets ``departments``, ``resources``,
``items`` and ``holders``, or a directory with one CSV file per sheet. The layout is described
in docs/catalog-spreadsheet.md; ``SHEETS`` below is its single source in code.

Import turns the rows into the canonical dict form and calls ``CatalogSpec.from_dict``, so the
structural checks are the spec's own. Errors are reported where the user fixes them: file,
sheet, row number as shown by the spreadsheet (header = row 1) and column. All problems are
collected and raised together as ``SheetErrors``; import never returns half a catalog.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import datetime as dt
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import openpyxl
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet.datavalidation import DataValidation

from govbus.vocabulary.errors import UserError
from govbus.vocabulary.identifiers import uscc_check_char
from govbus.vocabulary.spec import (
    BaseCategory,
    CatalogSpec,
    CompareRule,
    DataType,
    Department,
    Holder,
    InfoItem,
    Level,
    Mask,
    Resource,
    ResourceFormat,
    ResourceKey,
    Sensitivity,
    ShareType,
    SpecError,
    SubjectType,
    UpdateCycle,
    plain_fields,
)
from govbus.vocabulary.textfiles import TextFileError, check_encoding, open_text

__all__ = [
    "SHEETS",
    "Column",
    "SheetError",
    "SheetErrors",
    "read_catalog_file",
    "read_csv_dir",
    "read_xlsx",
    "write_csv_dir",
    "write_xlsx",
]

Kind = Literal["text", "list", "bool", "int", "float", "date"]

LIST_SEPARATOR = ";"
_LIST_SPLIT = re.compile(r"[;；]")  # a full-width ； typed with a Chinese IME means the same
_TRUE = {"是", "true"}
_FALSE = {"否", "false"}


@dataclass(frozen=True)
class Column:
    """One column of a sheet: ``field`` is its code (the dict key), ``label`` the Chinese name."""

    field: str
    label: str
    kind: Kind = "text"
    required: bool = False  # the column must be present (its cells may still be checked later)
    choices: tuple[str, ...] = ()  # allowed values, offered as a drop-down in xlsx

    @property
    def header(self) -> str:
        return f"{self.label} {self.field}"


def _enum(kind: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in get_args(kind))


SHEETS: dict[str, tuple[Column, ...]] = {
    "departments": (
        Column("id", "部门标识", required=True),
        Column("code", "统一社会信用代码", required=True),
        Column("name", "部门名称", required=True),
        Column("level", "层级", required=True, choices=_enum(Level)),
        Column("region", "行政区划代码", required=True),
        Column("parent", "上级部门代码"),
    ),
    "resources": (
        Column("code", "资源代码", required=True),
        Column("name", "资源名称", required=True),
        Column("provider", "提供方代码", required=True),
        Column("abstract", "资源摘要", required=True),
        Column("format", "资源格式", required=True, choices=_enum(ResourceFormat)),
        Column("category", "资源分类", "list", required=True),
        Column("share_type", "共享类型", required=True, choices=_enum(ShareType)),
        Column("update_cycle", "更新周期", required=True, choices=_enum(UpdateCycle)),
        Column("publish_date", "发布日期", "date", required=True),
        Column("key_items", "主键信息项", "list", required=True),
        Column("key_subject_type", "主体类型", required=True, choices=_enum(SubjectType)),
        Column("key_identifier", "主体标识名称"),
        Column("share_conditions", "共享条件"),
        Column("share_methods", "共享方式", "list"),
        Column("purposes", "使用用途", "list"),
        Column("open_to_public", "是否向社会开放", "bool"),
        Column("open_conditions", "开放条件"),
        Column("related", "关联资源代码", "list"),
        Column("base_category", "基础资源类别", choices=_enum(BaseCategory)),
        Column("lead_department", "牵头部门代码"),
        Column("legal_basis", "不予共享依据"),
    ),
    "items": (
        Column("resource", "资源代码", required=True),
        Column("name", "信息项名称", required=True),
        Column("code", "信息项代码", required=True),
        Column("data_type", "数据类型", required=True, choices=_enum(DataType)),
        Column("length", "数据长度", "int"),
        Column("required", "是否必填", "bool"),
        Column("base_item", "是否基础信息项", "bool"),
        Column("sensitivity", "敏感级别", choices=_enum(Sensitivity)),
        Column("shareable_to_all", "是否向所有部门共享", "bool"),
        Column("mask", "脱敏方式", choices=_enum(Mask)),
        Column("compare", "比对方式", choices=_enum(CompareRule)),
        Column("tolerance", "比对容差", "float"),
    ),
    "holders": (
        Column("resource", "资源代码", required=True),
        Column("department", "持有部门代码", required=True),
        Column("items", "信息项代码", "list", required=True),
    ),
}
# The Chinese sheet names accepted on import besides the codes.
SHEET_LABELS = {
    "departments": "部门",
    "resources": "资源",
    "items": "信息项",
    "holders": "持有部门",
}
_OPTIONAL_SHEETS = {"holders"}  # a catalog without copies held elsewhere needs no holders sheet


# --- errors -------------------------------------------------------------------------------------


class SheetError(UserError):
    """A problem in one place of a spreadsheet: file, sheet, row (header = 1) and column."""

    def __init__(
        self,
        file: str,
        sheet: str | None,
        row: int | None,
        column: str | None,
        message: str,
        *,
        column_letter: str | None = None,
    ) -> None:
        self.file = file
        self.sheet = sheet
        self.row = row
        self.column = column  # the header text as written in the file
        self.column_letter = column_letter  # A, B, ... as the spreadsheet shows it
        self.message = message
        super().__init__(self._where() + ": " + message)

    def _where(self) -> str:
        parts = [self.file]
        if self.sheet is not None:
            parts.append(f"sheet {self.sheet}")
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column is not None:
            letter = f" ({self.column_letter})" if self.column_letter else ""
            parts.append(f"column {self.column!r}{letter}")
        return ", ".join(parts)


class SheetErrors(SheetError):
    """Every problem found in one import, so they can all be fixed in one pass.

    Its own file/sheet/row/column are those of the first problem; ``errors`` lists them all.
    """

    def __init__(self, errors: Sequence[SheetError]) -> None:
        self.errors = tuple(sorted(errors, key=_position))
        first = self.errors[0]
        super().__init__(
            first.file,
            first.sheet,
            first.row,
            first.column,
            first.message,
            column_letter=first.column_letter,
        )
        count = f"{len(self.errors)} problem(s) in the catalog spreadsheet:"
        self.args = ("\n  ".join([count, *(str(e) for e in self.errors)]),)

    def __str__(self) -> str:
        return str(self.args[0])


def _position(error: SheetError) -> tuple[int, str, int, int, str]:
    """Order errors as the user reads the file: sheet by sheet, row by row, left to right."""
    sheet = list(SHEETS).index(error.sheet) if error.sheet in SHEETS else -1
    letter = error.column_letter or ""
    return (sheet, error.file, error.row or 0, len(letter), letter)


# --- reading ------------------------------------------------------------------------------------

Cell = object  # what openpyxl or csv hands back: str, int, float, bool, datetime or None


@dataclass
class _Table:
    """One sheet as read: where each field's column is, and the non-blank rows."""

    file: str
    sheet: str
    headers: dict[str, tuple[int, str]]  # field -> (0-based column, header text)
    rows: list[tuple[int, dict[str, Cell]]]  # (spreadsheet row number, field -> cell)

    def error(self, row: int | None, field: str | None, message: str) -> SheetError:
        column, letter = None, None
        if field is not None and field in self.headers:
            index, column = self.headers[field]
            letter = get_column_letter(index + 1)
        return SheetError(self.file, self.sheet, row, column, message, column_letter=letter)


_HEADER_PUNCT = r"[\s()（）/|:：,，\-]+"


def _header_field(text: str, columns: Sequence[Column]) -> Column | Literal["ambiguous"] | None:
    """Which column a header names: its code, its Chinese label, or both, in any usual form
    (``资源代码 code``, ``资源代码（code）``, ``code``, ``资源代码``, ``资源代码code``)."""
    folded = text.strip().casefold()
    compact = re.sub(_HEADER_PUNCT, "", folded)
    words = [w for w in re.split(_HEADER_PUNCT, folded) if w]
    matched = {
        c.field
        for c in columns
        if compact in (c.field, c.label, c.label + c.field, c.field + c.label)
        or any(w in (c.field, c.label) for w in words)
    }
    if len(matched) > 1:
        return "ambiguous"
    return next((c for c in columns if c.field in matched), None)


def _read_table(
    file: str, sheet: str, rows: Iterable[Sequence[Cell]], errors: list[SheetError]
) -> _Table | None:
    columns = SHEETS[sheet]
    iterator = iter(rows)
    header = next(iterator, None)
    table = _Table(file, sheet, {}, [])
    if header is None or all(_blank(c) for c in header):
        errors.append(table.error(1, None, "the header row (row 1) is empty"))
        return None
    ok = True
    for index, cell in enumerate(header):
        if _blank(cell):
            continue  # spreadsheets often carry formatted but empty columns
        text = str(cell).strip()
        letter = get_column_letter(index + 1)
        found = _header_field(text, columns)
        if found is None or found == "ambiguous":
            problem = "names more than one column" if found else "is not a known column"
            known = ", ".join(repr(c.header) for c in columns)
            errors.append(
                SheetError(
                    file,
                    sheet,
                    1,
                    text,
                    f"header {text!r} {problem}; known columns: {known}",
                    column_letter=letter,
                )
            )
            ok = False
        elif found.field in table.headers:
            first_index, first_text = table.headers[found.field]
            errors.append(
                SheetError(
                    file,
                    sheet,
                    1,
                    text,
                    f"duplicate column: {found.field} is already column {first_text!r} "
                    f"({get_column_letter(first_index + 1)})",
                    column_letter=letter,
                )
            )
            ok = False
        else:
            table.headers[found.field] = (index, text)
    for column in columns:
        if column.required and column.field not in table.headers:
            errors.append(
                SheetError(file, sheet, 1, None, f"missing required column {column.header!r}")
            )
            ok = False
    if not ok:
        return None
    for number, row in enumerate(iterator, start=2):
        if all(_blank(c) for c in row):
            continue
        values = {
            field: row[index] if index < len(row) else None
            for field, (index, _) in table.headers.items()
        }
        # A value under no header would be silently lost.
        extra = [
            i
            for i, c in enumerate(row)
            if not _blank(c) and (i >= len(header) or _blank(header[i]))
        ]
        if extra:
            errors.append(
                SheetError(
                    file,
                    sheet,
                    number,
                    None,
                    "a value in a column without a header; add the header or remove the value",
                    column_letter=get_column_letter(extra[0] + 1),
                )
            )
        table.rows.append((number, values))
    return table


def _blank(cell: Cell) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _text(cell: Cell) -> str:
    # Excel turns 320400 or an item length typed into a text column into a number.
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, dt.datetime) and cell.time() == dt.time():
        return cell.date().isoformat()
    if isinstance(cell, dt.date):
        return cell.isoformat()
    return str(cell).strip()


def _convert(
    table: _Table, number: int, column: Column, cell: Cell, errors: list[SheetError]
) -> Any:
    """The dict value of a non-blank cell; None after recording an error the spec cannot word."""
    if column.kind == "list":
        return [part.strip() for part in _LIST_SPLIT.split(_text(cell)) if part.strip()]
    if column.kind == "bool":
        if isinstance(cell, bool):
            return cell
        text = _text(cell).casefold()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        errors.append(
            table.error(number, column.field, f"expected 是/否 or true/false, got {text!r}")
        )
        return None
    if column.kind == "int":
        if isinstance(cell, float) and cell.is_integer():
            return int(cell)
        if isinstance(cell, str) and re.fullmatch(r"[+-]?\d+", cell.strip()):
            return int(cell.strip())
        return cell  # the spec rejects it with its own rule
    if column.kind == "float":
        if isinstance(cell, str):
            try:
                return float(cell.strip())
            except ValueError:
                return cell
        return cell
    if column.kind == "date":
        if isinstance(cell, dt.datetime) and cell.time() == dt.time():
            return cell.date()
        return cell if isinstance(cell, dt.date) else _text(cell)
    return _text(cell)


def _fields(
    table: _Table, number: int, values: dict[str, Cell], errors: list[SheetError]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in SHEETS[table.sheet]:
        cell = values.get(column.field)
        if _blank(cell):
            continue  # left out, so the spec applies its default or says it is required
        value = _convert(table, number, column, cell, errors)
        if value is not None and value != []:
            out[column.field] = value
    return out


@dataclass
class _Origin:
    """Which row produced each part of the dict, to put the spec's errors back on the sheet."""

    departments: list[int]
    resources: list[int]
    items: list[list[int]]
    holders: list[list[int]]


def _build(tables: dict[str, _Table], errors: list[SheetError]) -> tuple[dict[str, Any], _Origin]:
    origin = _Origin([], [], [], [])
    departments: list[dict[str, Any]] = []
    resources: list[dict[str, Any]] = []
    dept_table = tables["departments"]
    for number, values in dept_table.rows:
        departments.append(_fields(dept_table, number, values, errors))
        origin.departments.append(number)

    res_table = tables["resources"]
    by_code: dict[str, int] = {}
    for number, values in res_table.rows:
        fields = _fields(res_table, number, values, errors)
        key = {
            "items": fields.pop("key_items", []),
            "subject_type": fields.pop("key_subject_type", None),
        }
        if "key_identifier" in fields:
            key["identifier"] = fields.pop("key_identifier")
        fields["key"] = key
        fields["items"] = []
        code = fields.get("code")
        if isinstance(code, str) and code in by_code:
            first = origin.resources[by_code[code]]
            errors.append(
                res_table.error(
                    number, "code", f"duplicate resource code {code}; first in row {first}"
                )
            )
        elif isinstance(code, str):
            by_code[code] = len(resources)
        resources.append(fields)
        origin.resources.append(number)
        origin.items.append([])
        origin.holders.append([])

    for sheet in ("items", "holders"):
        table = tables.get(sheet)
        if table is None:  # the optional holders sheet
            continue
        for number, values in table.rows:
            fields = _fields(table, number, values, errors)
            code = fields.pop("resource", None)
            if code is None:
                errors.append(table.error(number, "resource", "resource code is required"))
                continue
            if code not in by_code:
                errors.append(
                    table.error(
                        number,
                        "resource",
                        f"resource code {code} matches no row of sheet resources",
                    )
                )
                continue
            index = by_code[code]
            resources[index].setdefault(sheet, []).append(fields)
            rows = origin.items if sheet == "items" else origin.holders
            rows[index].append(number)
    return {"departments": departments, "resources": resources}, origin


_PATH = re.compile(
    r"(?P<top>departments|resources)\[(?P<i>\d+)\]"
    r"(?:\.(?P<part>items|holders)\[(?P<j>\d+)\])?"
    r"(?:\.(?P<key>key)\.)?(?:\.?(?P<field>[a-z_]+))?"
)


def _locate(
    exc: SpecError, tables: dict[str, _Table], origin: _Origin, data: dict[str, Any]
) -> SheetError:
    """Put an error of ``from_dict`` on the row and column it came from.

    ``data`` is the dict as built from the rows (before any stand-in), to name the department,
    resource or item in the message.
    """
    m = _PATH.match(exc.path)
    if m is None:  # not expected: every dict part comes from a row
        return SheetError(tables["resources"].file, None, None, None, str(exc))
    i = int(m["i"])
    field = m["field"]
    message = "a value is required" if exc.message == "is required" else exc.message
    if m["top"] == "departments":
        what = f"department {_name(data['departments'][i], 'id')}"
        return tables["departments"].error(origin.departments[i], field, f"{what}: {message}")
    resource = data["resources"][i]
    what = f"resource {_name(resource, 'code')}"
    if m["part"]:
        j = int(m["j"])
        if m["part"] == "items":
            what += f", item {_name(resource['items'][j], 'code')}"
            row = origin.items[i][j]
        else:
            what += f", holder {_name(resource['holders'][j], 'department')}"
            row = origin.holders[i][j]
        return tables[m["part"]].error(row, field, f"{what}: {message}")
    if m["key"] and field:
        field = f"key_{field}"
    return tables["resources"].error(origin.resources[i], field, f"{what}: {message}")


def _name(part: dict[str, Any], key: str) -> str:
    value = part.get(key)
    return str(value) if value else "(no " + key + ")"


def _template() -> dict[str, Any]:
    """A dict with every field set to a valid value: stands in for a value already reported."""
    uscc = "11320400MB0152709"
    uscc += uscc_check_char(uscc)
    item = InfoItem(
        name="x",
        code="x",
        data_type="N",
        length=1,
        required=True,
        base_item=True,
        sensitivity="public",
        shareable_to_all=True,
        mask="all",
        compare="numeric",
        tolerance=1.0,
    )
    resource = Resource(
        code=f"10101/{uscc}-000001",
        name="x",
        provider=uscc,
        abstract="x",
        format="other",
        category=("x",),
        items=(item,),
        key=ResourceKey(("x",), "other", "x"),
        share_type="conditional",
        update_cycle="other",
        publish_date=dt.date(2026, 1, 1),
        share_conditions="x",
        share_methods=("online-lookup",),
        purposes=("work-reference",),
        open_to_public=True,
        open_conditions="x",
        related=("x",),
        base_category="credit",
        lead_department=uscc,
        legal_basis="x",
        holders=(Holder(uscc, ("x",)),),
    )
    department = Department("xx", uscc, "x", "city", "320400", uscc)
    data = CatalogSpec((department,), (resource,)).to_dict()
    CatalogSpec.from_dict(data)  # fails at import, not on a user's file, if the spec's rules move
    return data


_TEMPLATE = _template()


def _stand_in(data: dict[str, Any], path: str) -> bool:
    """Replace the value at ``path`` by the template's valid value, so checking can go on."""
    steps: list[str | int] = [
        int(s[1:-1]) if s.startswith("[") else s for s in re.findall(r"\[\d+\]|[a-z_]+", path)
    ]
    if not steps:
        return False
    parent: Any = data
    template: Any = _TEMPLATE
    for step in steps[:-1]:
        try:
            parent = parent[step]
            template = template[0 if isinstance(step, int) else step]
        except (KeyError, IndexError, TypeError):
            return False
    last = steps[-1]
    try:
        parent[last] = copy.deepcopy(template[0 if isinstance(last, int) else last])
    except (KeyError, IndexError, TypeError):
        return False
    return True


def _spec(tables: dict[str, _Table], errors: list[SheetError]) -> CatalogSpec:
    data, origin = _build(tables, errors)
    built = copy.deepcopy(data)
    seen: set[str] = set()
    while True:
        try:
            spec = CatalogSpec.from_dict(data)
        except SpecError as exc:
            errors.append(_locate(exc, tables, origin, built))
            # Stand in a valid value and check again, so one pass reports every bad cell.
            if exc.path in seen or not _stand_in(data, exc.path):
                break
            seen.add(exc.path)
            continue
        if not errors:
            return spec
        break
    raise SheetErrors(errors)


Sources = dict[str, tuple[str, Iterable[Sequence[Cell]]]]  # sheet -> (file name, rows)


def _read(sources: Sources) -> CatalogSpec:
    errors: list[SheetError] = []
    tables: dict[str, _Table] = {}
    for sheet, (file, rows) in sources.items():
        try:
            table = _read_table(file, sheet, rows, errors)
        except TextFileError as exc:  # a CSV file that is not text in its encoding
            errors.append(SheetError(file, sheet, None, None, exc.problem))
            continue
        if table is not None:
            tables[sheet] = table
    if errors:  # without every column in place the rows cannot be read reliably
        raise SheetErrors(errors)
    return _spec(tables, errors)


def _missing(file: str, sheets: Iterable[str], what: str) -> SheetErrors | None:
    errors = [
        SheetError(file, sheet, None, None, what.format(sheet=sheet, label=SHEET_LABELS[sheet]))
        for sheet in sheets
        if sheet not in _OPTIONAL_SHEETS
    ]
    return SheetErrors(errors) if errors else None


def read_xlsx(path: str | Path) -> CatalogSpec:
    """Read a catalog workbook; raises SheetErrors naming every bad cell."""
    file = str(path)
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError) as exc:
        problem = f"not an xlsx workbook: {exc}"
        raise SheetErrors([SheetError(file, None, None, None, problem)]) from exc
    try:
        names: dict[str, str] = {}
        for name in workbook.sheetnames:
            sheet = _sheet_key(name)
            if sheet is not None:
                names.setdefault(sheet, name)
        present = ", ".join(map(repr, workbook.sheetnames))
        missing = _missing(
            file,
            (s for s in SHEETS if s not in names),
            "missing sheet {sheet!r} ({label}); the workbook has " + present,
        )
        if missing:
            raise missing
        return _read({sheet: (file, _xlsx_rows(workbook[name])) for sheet, name in names.items()})
    finally:
        workbook.close()


def _xlsx_rows(worksheet: Any) -> Iterator[tuple[Cell, ...]]:
    # Some tools write a wrong sheet size; read up to the last cell actually present.
    worksheet.reset_dimensions()
    yield from worksheet.iter_rows(values_only=True)


def _sheet_key(name: str) -> str | None:
    """Which sheet a tab is: its code, its Chinese label or both (other tabs are ignored)."""
    for sheet, label in SHEET_LABELS.items():
        if _header_field(name, [Column(sheet, label)]) is not None:
            return sheet
    return None


def read_csv_dir(path: str | Path, encoding: str | None = None) -> CatalogSpec:
    """Read departments.csv, resources.csv, items.csv and holders.csv.

    ``encoding`` None detects UTF-8 (BOM or not) or GB18030/GBK, which is how Excel saves CSV
    on a Chinese Windows (govbus/vocabulary/textfiles.py).
    """
    directory = Path(path)
    if not directory.is_dir():
        problem = "not a directory of catalog CSV files"
        raise SheetErrors([SheetError(str(directory), None, None, None, problem)])
    files = {sheet: directory / f"{sheet}.csv" for sheet in SHEETS}
    missing = _missing(
        str(directory),
        (s for s, f in files.items() if not f.is_file()),
        "missing file {sheet}.csv ({label})",
    )
    if missing:
        raise missing
    if encoding is not None:
        check_encoding(encoding)  # an unknown name is one error, not one per file
    return _read({s: (str(f), _csv_rows(f, encoding)) for s, f in files.items() if f.is_file()})


def _csv_rows(file: Path, encoding: str | None = None) -> Iterator[list[str]]:
    # The file is checked whole before the first row (TextFileError); a BOM is dropped.
    with open_text(file, encoding, newline="") as handle:
        reader = csv.reader(handle)
        try:
            rows = list(reader)
        except csv.Error as exc:
            raise TextFileError(file, f"line {reader.line_num}: not valid CSV: {exc}") from None
    yield from rows


def read_catalog_file(path: str | Path, encoding: str | None = None) -> CatalogSpec:
    """Read a catalog spreadsheet: an ``.xlsx`` workbook or a directory of CSV files (read in
    ``encoding``, None: detected)."""
    p = Path(path)
    if p.is_dir():
        return read_csv_dir(p, encoding)
    if p.suffix.casefold() == ".xlsx":
        return read_xlsx(p)
    if p.suffix.casefold() == ".csv":
        raise SheetErrors(
            [
                SheetError(
                    str(p),
                    None,
                    None,
                    None,
                    "a CSV catalog is a directory of departments.csv, resources.csv, items.csv "
                    "and holders.csv; give the directory",
                )
            ]
        )
    raise SheetErrors(
        [SheetError(str(p), None, None, None, "expected an .xlsx workbook or a CSV directory")]
    )


# --- writing ------------------------------------------------------------------------------------


def _resource_row(r: Resource) -> dict[str, object]:
    return {
        **plain_fields(r),
        "key_items": r.key.items,
        "key_subject_type": r.key.subject_type,
        "key_identifier": r.key.identifier,
    }


_ITEM_FIELDS = tuple(f.name for f in dataclasses.fields(InfoItem))


def _item_row(r: Resource, i: InfoItem) -> dict[str, object]:
    # Every field of an item is a plain value: no need for asdict's deep copy (a fifth of the
    # xlsx export of 200,000 items).
    return {"resource": r.code, **{name: getattr(i, name) for name in _ITEM_FIELDS}}


def _rows(spec: CatalogSpec) -> dict[str, list[dict[str, object]]]:
    return {
        "departments": [plain_fields(d) for d in spec.departments],
        "resources": [_resource_row(r) for r in spec.resources],
        "items": [_item_row(r, i) for r in spec.resources for i in r.items],
        "holders": [
            {"resource": r.code, "department": h.department, "items": h.items}
            for r in spec.resources
            for h in r.holders
        ],
    }


def _cell(column: Column, value: object) -> object:
    """The value written to a cell; the xlsx writer keeps dates and numbers typed."""
    if value is None or value == "":
        return None
    if column.kind == "list":
        assert isinstance(value, tuple)
        return LIST_SEPARATOR.join(value) or None
    if column.kind == "bool":
        return "是" if value else "否"
    return value


def write_xlsx(spec: CatalogSpec, path: str | Path) -> None:
    """Write the catalog as a workbook with one sheet per table, drop-downs for fixed values.

    openpyxl's write-only mode streams the rows to the file instead of keeping a cell object
    per value (a 10,000-resource catalog has 2.4 million values); the cells that carry a format
    (bold headers, dates, codes kept as text) are ``WriteOnlyCell`` objects sharing one style.
    """
    workbook = openpyxl.Workbook(write_only=True)
    for sheet, rows in _rows(spec).items():
        columns = SHEETS[sheet]
        ws = workbook.create_sheet(sheet)
        ws.freeze_panes = "A2"
        for index, column in enumerate(columns, start=1):
            letter = get_column_letter(index)
            ws.column_dimensions[letter].width = min(40, max(12, len(column.header) * 2))
            choices = ("是", "否") if column.kind == "bool" else column.choices
            if choices:
                validation = DataValidation(
                    type="list", formula1=f'"{",".join(choices)}"', allow_blank=True
                )
                validation.add(f"{letter}2:{letter}1048576")
                ws.data_validations.append(validation)
        ws.append([_styled(ws, c.header, font=Font(bold=True)) for c in columns])
        # Keep codes such as 320400 text when someone edits them in Excel; dates as dates.
        # One styled cell per column, given each row's value: a write-only sheet writes a row
        # out within ``append``, so the cell is free again for the next row (a new cell per
        # value was a quarter of the export of 200,000 items).
        styled = [
            _styled(ws, None, number_format="yyyy-mm-dd")
            if c.kind == "date"
            else _styled(ws, None, number_format="@")
            if c.kind == "text"
            else None
            for c in columns
        ]
        for row in rows:
            values = [_cell(c, row[c.field]) for c in columns]
            for index, cell in enumerate(styled):
                if cell is not None and values[index] is not None:
                    cell.value = values[index]
                    values[index] = cell
            ws.append(values)
    _replace(Path(path), workbook.save)


def _styled(ws: Any, value: object, **style: Any) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=value)
    for name, setting in style.items():
        setattr(cell, name, setting)
    return cell


def write_csv_dir(spec: CatalogSpec, path: str | Path) -> None:
    """Write departments.csv, resources.csv, items.csv and holders.csv into ``path``.

    UTF-8 with a BOM, which is what makes Excel show Chinese text correctly.
    """
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for sheet, rows in _rows(spec).items():
        columns = SHEETS[sheet]

        def save(target: Path, columns: Sequence[Column] = columns, rows: Any = rows) -> None:
            with target.open("w", encoding="utf-8-sig", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow([c.header for c in columns])
                for row in rows:
                    writer.writerow([_csv_value(_cell(c, row[c.field])) for c in columns])

        _replace(directory / f"{sheet}.csv", save)


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _replace(target: Path, save: Callable[[Path], object]) -> None:
    # Write next to the target and rename, so a failed export leaves no half-written file.
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        save(tmp)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
