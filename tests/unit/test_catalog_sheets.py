"""Catalog spreadsheets: xlsx and CSV exports read back as the same catalog, and a bad cell is
reported with file, sheet, row, column and rule, every bad cell at once."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import openpyxl
import pytest

from govbus.catalog.sheets import (
    SHEETS,
    SheetError,
    SheetErrors,
    read_catalog_file,
    read_csv_dir,
    read_xlsx,
    write_csv_dir,
    write_xlsx,
)
from govbus.vocabulary.identifiers import uscc_check_char
from govbus.vocabulary.spec import (
    CatalogSpec,
    Department,
    Holder,
    InfoItem,
    Resource,
    ResourceKey,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "catalog-spreadsheet.md"


def _uscc(first17: str) -> str:
    return first17 + uscc_check_char(first17)


GAJ = _uscc("11320400MB0152001")  # 常州市公安局
MZJ = _uscc("11320400MB0152002")  # 常州市民政局
TN_MZJ = _uscc("11320402MB0152003")  # 天宁区民政局
HUJI = f"10101/{GAJ}-000001"
DIBAO = f"30101/{MZJ}-000002"
HUNYIN = f"20101/{MZJ}-000003"


def _catalog() -> CatalogSpec:
    departments = (
        Department("cz-gaj", GAJ, "常州市公安局", "city", "320400"),
        Department("cz-mzj", MZJ, "常州市民政局", "city", "320400"),
        Department("tn-mzj", TN_MZJ, "常州市天宁区民政局", "district", "320402", parent=MZJ),
    )
    huji = Resource(
        code=HUJI,
        name="常住人口户籍信息",
        provider=GAJ,
        abstract="全市常住人口的户籍登记信息，含“姓名”与公民身份号码。",
        format="database",
        category=("人口", "户籍"),
        items=(
            InfoItem(
                "公民身份号码",
                "citizen_id",
                "C",
                length=18,
                required=True,
                base_item=True,
                sensitivity="sensitive",
            ),
            InfoItem("姓名", "citizen_name", "C", length=50, required=True, compare="text"),
            InfoItem("出生日期", "birth_date", "D", compare="date"),
        ),
        key=ResourceKey(("citizen_id",), "natural-person"),
        share_type="unconditional",
        update_cycle="daily",
        publish_date=dt.date(2026, 1, 31),
        share_methods=("system-integration", "online-lookup"),
        purposes=("administrative-basis", "data-verification"),
        open_to_public=True,
        open_conditions="仅开放统计汇总数据",
        related=(DIBAO,),
        base_category="population",
        holders=(Holder(MZJ, ("citizen_id", "citizen_name")), Holder(TN_MZJ, ("citizen_id",))),
    )
    dibao = Resource(
        code=DIBAO,
        name="最低生活保障对象信息",
        provider=MZJ,
        abstract="低保对象及保障金额",
        format="spreadsheet",
        category=("社会救助",),
        items=(
            InfoItem(
                "公民身份号码",
                "citizen_id",
                "C",
                length=18,
                required=True,
                shareable_to_all=True,
                mask="citizen-id",
            ),
            InfoItem("姓名", "citizen_name", "C", shareable_to_all=True, mask="name"),
            InfoItem("保障金额", "amount", "Y", compare="numeric", tolerance=0.01),
            InfoItem("家庭人口数", "household_size", "I", sensitivity="public"),
        ),
        key=ResourceKey(("citizen_id",), "natural-person"),
        share_type="conditional",
        update_cycle="monthly",
        publish_date=dt.date(2025, 12, 1),
        share_conditions="仅限社会救助审核业务使用",
        share_methods=("front-end-agent",),
        purposes=("business-collaboration",),
    )
    hunyin = Resource(
        code=HUNYIN,
        name="婚姻登记档案",
        provider=MZJ,
        abstract="婚姻登记原始档案影像",
        format="image",
        category=("婚姻", "档案", "影像"),
        items=(
            InfoItem("档案编号", "archive_no", "C", length=32, required=True),
            InfoItem("登记时间", "registered_at", "T"),
            InfoItem("是否补办", "reissued", "L"),
        ),
        key=ResourceKey(("archive_no",), "other", identifier="档案编号"),
        share_type="none",
        update_cycle="other",
        publish_date=dt.date(2024, 2, 29),
        lead_department=GAJ,
        legal_basis="《婚姻登记档案管理办法》第十五条",
    )
    return CatalogSpec(departments, (huji, dibao, hunyin))


@pytest.fixture
def catalog() -> CatalogSpec:
    return _catalog()


@pytest.fixture
def workbook(catalog: CatalogSpec, tmp_path: Path) -> Path:
    path = tmp_path / "目录.xlsx"
    write_xlsx(catalog, path)
    return path


@pytest.fixture
def csv_dir(catalog: CatalogSpec, tmp_path: Path) -> Path:
    path = tmp_path / "catalog-csv"
    write_csv_dir(catalog, path)
    return path


def _set_cell(path: Path, sheet: str, row: int, field: str, value: object) -> None:
    wb = openpyxl.load_workbook(path)
    ws = wb[sheet]
    column = next(c.column for c in ws[1] if str(c.value).endswith(f" {field}"))
    ws.cell(row=row, column=column).value = value  # value=None in cell() would not clear it
    wb.save(path)


def _csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def _write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8-sig") -> None:
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle).writerows(rows)


def _errors(exc: pytest.ExceptionInfo[SheetErrors]) -> list[SheetError]:
    return list(exc.value.errors)


# --- round trips --------------------------------------------------------------------------------


def test_xlsx_round_trip(catalog: CatalogSpec, workbook: Path) -> None:
    assert read_xlsx(workbook) == catalog
    assert read_catalog_file(workbook) == catalog


def test_xlsx_layout_is_readable_in_excel(workbook: Path) -> None:
    wb = openpyxl.load_workbook(workbook)
    assert wb.sheetnames == ["departments", "resources", "items", "holders"]
    resources = wb["resources"]
    assert resources["A1"].value == "资源代码 code"
    assert resources["A2"].value == HUJI
    assert resources["I1"].value == "发布日期 publish_date"
    assert resources["I2"].value == dt.datetime(2026, 1, 31)  # a real date cell
    items = wb["items"]
    assert [c.value for c in items[2]][:7] == [
        HUJI,
        "公民身份号码",
        "citizen_id",
        "C",
        18,
        "是",
        "是",
    ]
    holders = wb["holders"]
    assert [c.value for c in holders[2]] == [HUJI, MZJ, "citizen_id;citizen_name"]
    assert wb["departments"]["E2"].value == "320400"  # stays text, keeps its digits


def test_csv_round_trip_writes_utf8_with_bom(catalog: CatalogSpec, csv_dir: Path) -> None:
    assert sorted(p.name for p in csv_dir.iterdir()) == [
        "departments.csv",
        "holders.csv",
        "items.csv",
        "resources.csv",
    ]
    raw = (csv_dir / "resources.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert "婚姻登记档案".encode() in raw
    assert read_csv_dir(csv_dir) == catalog
    assert read_catalog_file(csv_dir) == catalog


def test_csv_without_bom_reads_the_same(catalog: CatalogSpec, csv_dir: Path) -> None:
    for path in csv_dir.glob("*.csv"):
        _write_csv(path, _csv(path), encoding="utf-8")
        assert not path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert read_csv_dir(csv_dir) == catalog


def test_sample_catalog_round_trips_through_xlsx_and_csv(tmp_path: Path) -> None:
    from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, load_yaml

    sample = load_yaml(SAMPLE_CATALOG_PATH)
    write_xlsx(sample, tmp_path / "sample.xlsx")
    assert read_xlsx(tmp_path / "sample.xlsx") == sample
    write_csv_dir(sample, tmp_path / "sample")
    assert read_csv_dir(tmp_path / "sample") == sample


def test_headers_may_be_label_code_or_both(catalog: CatalogSpec, csv_dir: Path) -> None:
    forms = [
        lambda c: c.label,
        lambda c: c.field,
        lambda c: f"{c.label}（{c.field}）",
        lambda c: f" {c.field.upper()}\n{c.label} ",
    ]
    for n, (sheet, columns) in enumerate(SHEETS.items()):
        path = csv_dir / f"{sheet}.csv"
        rows = _csv(path)
        rows[0] = [forms[(n + i) % len(forms)](c) for i, c in enumerate(columns)]
        _write_csv(path, rows)
    assert read_csv_dir(csv_dir) == catalog


def test_booleans_accept_true_false_and_blank_means_default(
    catalog: CatalogSpec, workbook: Path
) -> None:
    _set_cell(workbook, "items", 2, "required", "TRUE")
    _set_cell(workbook, "items", 2, "base_item", True)
    _set_cell(workbook, "items", 3, "required", "true")
    _set_cell(workbook, "items", 4, "required", "false")
    _set_cell(workbook, "items", 4, "sensitivity", None)  # blank: the default, internal
    assert read_xlsx(workbook) == catalog


def test_lists_accept_full_width_separator_and_spaces(catalog: CatalogSpec, workbook: Path) -> None:
    _set_cell(workbook, "resources", 2, "share_methods", " system-integration ； online-lookup ")
    assert read_xlsx(workbook) == catalog


def test_extra_sheets_are_ignored_and_holders_sheet_is_optional(
    catalog: CatalogSpec, workbook: Path
) -> None:
    wb = openpyxl.load_workbook(workbook)
    wb.create_sheet("填表说明")["A1"] = "说明"
    del wb["holders"]
    wb.save(workbook)
    without_holders = read_xlsx(workbook)
    assert without_holders.resource(HUJI) is not None
    assert without_holders.resource(HUJI).holders == ()  # type: ignore[union-attr]
    assert without_holders.departments == catalog.departments


# --- errors: file, sheet, row, column and rule --------------------------------------------------


def _only_error(path: Path) -> SheetError:
    with pytest.raises(SheetErrors) as exc:
        read_catalog_file(path)
    errors = _errors(exc)
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


def test_bad_date_names_file_row_column_and_rule(workbook: Path) -> None:
    _set_cell(workbook, "resources", 3, "publish_date", "2025/12/01")
    error = _only_error(workbook)
    assert (error.file, error.sheet, error.row) == (str(workbook), "resources", 3)
    assert (error.column, error.column_letter) == ("发布日期 publish_date", "I")
    assert DIBAO in error.message
    assert "expected a date like 2026-01-31, got '2025/12/01'" in error.message
    assert "row 3" in str(error) and "'发布日期 publish_date' (I)" in str(error)


def test_bad_enum_names_the_allowed_values(workbook: Path) -> None:
    _set_cell(workbook, "resources", 4, "share_type", "有条件")
    error = _only_error(workbook)
    assert (error.sheet, error.row, error.column_letter) == ("resources", 4, "G")
    assert "'有条件' is not one of unconditional, conditional, none" in error.message


def test_bad_uscc_in_provider(workbook: Path) -> None:
    bad = GAJ[:-1] + ("0" if GAJ[-1] != "0" else "1")
    _set_cell(workbook, "resources", 2, "provider", bad)
    error = _only_error(workbook)
    assert (error.row, error.column, error.column_letter) == (2, "提供方代码 provider", "C")
    assert "统一社会信用代码" in error.message and "check character" in error.message


def test_item_for_unknown_resource(workbook: Path) -> None:
    unknown = f"10101/{GAJ}-000099"
    _set_cell(workbook, "items", 5, "resource", unknown)
    error = _only_error(workbook)
    assert (error.sheet, error.row, error.column_letter) == ("items", 5, "A")
    assert f"resource code {unknown} matches no row of sheet resources" in error.message


def test_non_numeric_length(workbook: Path) -> None:
    _set_cell(workbook, "items", 3, "length", "五十")
    error = _only_error(workbook)
    assert (error.sheet, error.row, error.column) == ("items", 3, "数据长度 length")
    assert error.column_letter == "E"
    assert "item citizen_name" in error.message
    assert "expected a whole number, got '五十'" in error.message


def test_bad_boolean(csv_dir: Path) -> None:
    rows = _csv(csv_dir / "resources.csv")
    rows[1][15] = "yes"
    _write_csv(csv_dir / "resources.csv", rows)
    error = _only_error(csv_dir)
    assert (error.file, error.row) == (str(csv_dir / "resources.csv"), 2)
    assert error.column == "是否向社会开放 open_to_public"
    assert "expected 是/否 or true/false, got 'yes'" in error.message


def test_missing_required_column(csv_dir: Path) -> None:
    rows = [row[:3] + row[4:] for row in _csv(csv_dir / "items.csv")]  # drop data_type
    _write_csv(csv_dir / "items.csv", rows)
    error = _only_error(csv_dir)
    assert (error.file, error.sheet, error.row) == (str(csv_dir / "items.csv"), "items", 1)
    assert "missing required column '数据类型 data_type'" in error.message


def test_duplicate_and_unknown_headers(workbook: Path) -> None:
    wb = openpyxl.load_workbook(workbook)
    ws = wb["departments"]
    ws["G1"] = "名称"  # Chinese label alone is not name's label
    ws["H1"] = "name"
    wb.save(workbook)
    with pytest.raises(SheetErrors) as exc:
        read_xlsx(workbook)
    errors = _errors(exc)
    assert [(e.sheet, e.row, e.column_letter) for e in errors] == [
        ("departments", 1, "G"),
        ("departments", 1, "H"),
    ]
    assert "header '名称' is not a known column" in errors[0].message
    assert "duplicate column: name is already column '部门名称 name' (C)" in errors[1].message


def test_every_bad_row_is_reported_together(workbook: Path) -> None:
    _set_cell(workbook, "departments", 3, "region", "3204")
    _set_cell(workbook, "resources", 2, "publish_date", "yesterday")
    _set_cell(workbook, "resources", 2, "format", "paper")  # same row, second cell
    _set_cell(workbook, "resources", 4, "key_subject_type", None)
    _set_cell(workbook, "items", 2, "length", "x")
    _set_cell(workbook, "items", 9, "data_type", "S")
    _set_cell(workbook, "holders", 3, "department", "not-a-code")
    with pytest.raises(SheetErrors) as exc:
        read_xlsx(workbook)
    found = [(e.sheet, e.row, e.column) for e in _errors(exc)]
    assert found == [
        ("departments", 3, "行政区划代码 region"),
        ("resources", 2, "资源格式 format"),
        ("resources", 2, "发布日期 publish_date"),
        ("resources", 4, "主体类型 key_subject_type"),
        ("items", 2, "数据长度 length"),
        ("items", 9, "数据类型 data_type"),
        ("holders", 3, "持有部门代码 department"),
    ]
    text = str(exc.value)
    assert text.startswith("7 problem(s)")
    assert "'paper' is not one of" in text and "missing is not one of" in text


def test_row_numbers_count_blank_rows(workbook: Path) -> None:
    wb = openpyxl.load_workbook(workbook)
    wb["resources"].insert_rows(3)  # an empty line the user left between resources
    wb.save(workbook)
    _set_cell(workbook, "resources", 5, "update_cycle", "hourly")
    error = _only_error(workbook)
    assert (error.row, error.column_letter) == (5, "H")


def test_csv_in_gbk_is_read_and_binary_is_explained(csv_dir: Path) -> None:
    # Excel's plain "CSV" on a Chinese Windows is GBK: read as GB18030 (vocabulary.textfiles).
    expected = read_csv_dir(csv_dir)
    _write_csv(csv_dir / "departments.csv", _csv(csv_dir / "departments.csv"), encoding="gbk")
    assert read_csv_dir(csv_dir) == expected
    (csv_dir / "departments.csv").write_bytes(b"PK\x03\x04\x14\x00")  # an xlsx named .csv
    error = _only_error(csv_dir)
    assert error.file == str(csv_dir / "departments.csv")
    assert "binary content, not a text file" in error.message and "--encoding" in error.message


def test_missing_sheet_and_wrong_path(workbook: Path, tmp_path: Path) -> None:
    wb = openpyxl.load_workbook(workbook)
    del wb["items"]
    wb.save(workbook)
    error = _only_error(workbook)
    assert error.sheet == "items" and "missing sheet 'items'" in error.message
    with pytest.raises(SheetErrors, match="directory"):
        read_catalog_file(tmp_path / "resources.csv")


def test_docs_describe_every_column() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for sheet, columns in SHEETS.items():
        assert f"`{sheet}`" in text
        for column in columns:
            assert f"`{column.header}`" in text, column.header
