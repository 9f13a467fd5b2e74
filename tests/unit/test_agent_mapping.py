"""The front-end agent's pure parts: the mapping file and its errors, rows as records,
the watermark order and store (on an embedded SQLite database)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.changes import Watermark, WatermarkStore, lag_seconds, rows_after
from connectors.mapping import MappingError, check_sinks, check_sources, load_mapping
from connectors.rows import RowConverter, decode_text
from connectors.service import Health
from govbus.vocabulary.identifiers import uscc_check_char
from govbus.vocabulary.spec import CatalogSpec, Department, InfoItem
from tests.factories import PROVIDER, person_resource

CST = dt.timezone(dt.timedelta(hours=8))
OTHER = "11320400MB0147045" + uscc_check_char("11320400MB0147045")
ITEMS = (
    InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),
    InfoItem("姓名", "citizen_name", "C", 50, required=True),
    InfoItem("出生日期", "birth_date", "D"),
    InfoItem("性别", "gender", "C", 4),
    InfoItem("在册", "active", "L"),
    InfoItem("登记时间", "registered_at", "T"),
)
RESOURCE = person_resource(ITEMS, share_methods=("front-end-agent",))
SPEC = CatalogSpec(
    (
        Department("mzj", PROVIDER, "市民政局", "city", "320400"),
        Department("rsj", OTHER, "市人社局", "city", "320400"),
    ),
    (RESOURCE,),
)
GOOD = f"""\
department: mzj
database: sqlite:///frontend.db
sources:
  - table: mz_people
    resource: {RESOURCE.code}
    updated_at: gxsj
    columns:
      - {{column: sfzh, item: citizen_id, trim: true, case: upper}}
      - {{column: xm, item: citizen_name, trim: true}}
      - {{column: csrq, item: birth_date, date_format: "%Y%m%d"}}
      - {{column: xb, item: gender, code_table: {{"1": 男, "2": 女}}, default: 未知}}
      - {{column: zc, item: active}}
      - {{column: djsj, item: registered_at}}
sinks:
  - resource: {RESOURCE.code}
    table: rs_people
    purpose: work-reference
    columns: {{citizen_name: xm}}
"""


def _write(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "agent.yaml"
    path.write_bytes(text.encode(encoding))
    return path


def _error(tmp_path: Path, text: str, *, sources: bool = True) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(MappingError) as caught:
        mapping = load_mapping(path)
        if sources:
            check_sources(mapping, SPEC, PROVIDER)
        else:
            check_sinks(mapping, SPEC)
    return str(caught.value).replace(str(path), "agent.yaml")


def test_a_good_mapping_reads_and_fits_the_catalog(tmp_path: Path) -> None:
    mapping = load_mapping(_write(tmp_path, GOOD))
    check_sources(mapping, SPEC, PROVIDER)
    check_sinks(mapping, SPEC)
    (source,) = mapping.sources
    assert source.table == "mz_people" and source.updated_at == "gxsj"
    assert source.column_of("gender") is not None
    assert source.column_of("gender").code_table == {"1": "男", "2": "女"}  # type: ignore[union-attr]
    assert source.where.line == 4 and source.columns[2].where.line == 10
    (sink,) = mapping.sinks
    assert sink.column("citizen_name") == "xm" and sink.column("gender") == "gender"
    assert mapping.poll_interval == 5.0 and mapping.batch_size == 1000


def test_the_mapping_file_may_be_gb18030(tmp_path: Path) -> None:
    mapping = load_mapping(_write(tmp_path, GOOD, "gb18030"))
    assert mapping.sources[0].columns[3].code_table == {"1": "男", "2": "女"}


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        (
            ("item: gender,", "item: sex,"),
            "agent.yaml:11:9: sources[0] (table mz_people) column xb: item sex is not an info item "
            f"of resource {RESOURCE.code} 人口基本信息",
        ),
        (
            ("      - {column: xm, item: citizen_name, trim: true}\n", ""),
            "agent.yaml:4:5: sources[0] (table mz_people): item citizen_name (姓名) of resource "
            f"{RESOURCE.code} is required but no column maps to it",
        ),
        (
            ("item: active}", "item: active, date_format: '%Y'}"),
            "agent.yaml:12:9: sources[0] (table mz_people) column zc → item active: date_format "
            "gives a date, but the item is 逻辑型 (L)",
        ),
        (
            ('code_table: {"1": 男, "2": 女}, default: 未知', 'code_table: {"1": 1}'),
            "column xb → item gender: code_table value 1 (for '1') is not 字符型 (C)",
        ),
        (
            ("trim: true, case: upper", "trim: yes please"),
            "agent.yaml:8:48: sources[0] (table mz_people) column sfzh: 'trim' must be true or "
            "false",
        ),
        (("case: upper", "case: title"), "case must be upper or lower"),
        (("    updated_at: gxsj\n", ""), "agent.yaml:4:5: sources[0] (table mz_people): "),
        (("item: birth_date,", "item: citizen_name,"), "item citizen_name is already mapped"),
        (("table: mz_people", "tabel: mz_people"), "agent.yaml:4:5: sources[0]: unknown key "),
        (("sources:", "sources: [\n"), "agent.yaml:"),
        (('date_format: "%Y%m%d"', 'date_format: "YYYYMMDD"'), "has no strptime field"),
    ],
)
def test_source_errors_name_file_line_column_and_item(
    tmp_path: Path, change: tuple[str, str], expect: str
) -> None:
    assert change[0] in GOOD
    assert expect in _error(tmp_path, GOOD.replace(*change))


def test_a_department_may_map_only_what_it_provides(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    with pytest.raises(MappingError, match="one data, one source"):
        check_sources(load_mapping(path), SPEC, OTHER)


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        (("purpose: work-reference", "purpose: curiosity"), "agent.yaml:17:14: sinks[0]"),
        (("columns: {citizen_name: xm}", "columns: {nosuch: xm}"), "item nosuch, which is not"),
        (("columns: {citizen_name: xm}", "columns: {citizen_name: gender}"), "same column"),
        (("    table: rs_people\n", ""), "'table' is required"),
    ],
)
def test_sink_errors_name_file_line_column(
    tmp_path: Path, change: tuple[str, str], expect: str
) -> None:
    assert change[0] in GOOD
    assert expect in _error(tmp_path, GOOD.replace(*change), sources=False)


def test_duplicate_keys_and_empty_files_are_refused(tmp_path: Path) -> None:
    assert "duplicate key 'database'" in _error(tmp_path, GOOD + "database: x\n")
    assert "agent.yaml:1:1: the mapping file is empty" in _error(tmp_path, "# nothing\n")


# --- rows as records ---------------------------------------------------------------------------


def _converter(tmp_path: Path, text: str = GOOD) -> RowConverter:
    mapping = load_mapping(_write(tmp_path, text))
    return RowConverter(mapping.sources[0], RESOURCE, ("id",))


def test_a_row_becomes_a_record_through_the_transforms(tmp_path: Path) -> None:
    row = {
        "id": 7,
        "sfzh": " 32040219900101003x ",
        "xm": " 张三 ",
        "csrq": "19900101",
        "xb": 1,
        "zc": 1,
        "djsj": dt.datetime(2026, 1, 2, 3, 4, 5),
    }
    converted = _converter(tmp_path).convert(row, 1)
    assert converted.errors == []
    assert converted.record == {
        "citizen_id": "32040219900101003X",
        "citizen_name": "张三",
        "birth_date": dt.date(1990, 1, 1),
        "gender": "男",
        "active": True,
        "registered_at": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=CST),  # naive: China time
        "_origin": {"table": "mz_people", "primary_key": {"id": 7}},
    }
    unknown_code = _converter(tmp_path).convert({**row, "xb": "9"}, 1)
    assert unknown_code.record["gender"] == "未知"  # the code table's default


def test_unreadable_values_are_errors_naming_the_column(tmp_path: Path) -> None:
    text = GOOD.replace(", default: 未知", "")
    converter = _converter(tmp_path, text)
    gbk = "张三".encode("gbk")
    row = {"id": 9, "sfzh": "320402199001010033", "xm": gbk, "csrq": "1990-01-01", "xb": "3"}
    errors = {e.item: e for e in converter.convert(row, 4).errors}
    assert errors["citizen_name"].rule == "text-encoding"
    assert errors["citizen_name"].message.startswith(
        "record 4 (table mz_people, id=9), column xm → item citizen_name (姓名): rule "
        "text-encoding — column xm holds bytes that are not utf-8 text (byte 0: 0xd5"
    )
    assert "encoding: gb18030" in errors["citizen_name"].message
    assert errors["birth_date"].rule == "transform"
    assert "does not match date_format '%Y%m%d'" in errors["birth_date"].message
    assert errors["gender"].rule == "transform"
    # With the column's encoding declared, the same bytes are text.
    declared = _converter(tmp_path, text.replace("trim: true}", "trim: true, encoding: gbk}"))
    assert declared.convert(row, 4).record["citizen_name"] == "张三"


def test_sqlite_text_that_is_not_utf8_comes_back_as_bytes() -> None:
    assert decode_text("张三".encode()) == "张三"
    assert decode_text("张三".encode("gbk")) == "张三".encode("gbk")


# --- watermarks ----------------------------------------------------------------------------------


def test_rows_after_the_watermark_are_neither_skipped_nor_repeated() -> None:
    engine = sa.create_engine("sqlite://")
    table = sa.Table(
        "t",
        sa.MetaData(),
        sa.Column("a", sa.Integer, primary_key=True),
        sa.Column("b", sa.String(5), primary_key=True),
        sa.Column("ts", sa.DateTime),
    )
    table.metadata.create_all(engine)
    t0 = dt.datetime(2026, 1, 1)
    rows = [{"a": a, "b": b, "ts": t0} for a in (1, 2) for b in ("x", "y")]
    rows += [{"a": 0, "b": "z", "ts": t0 + dt.timedelta(seconds=1)}, {"a": 9, "b": "n", "ts": None}]
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    seen: list[tuple[int, str]] = []
    mark = None
    with engine.connect() as conn:
        while batch := rows_after(conn, table, "ts", ("a", "b"), mark, 2):
            seen += [(r["a"], r["b"]) for r in batch]
            mark = Watermark(batch[-1]["ts"], (batch[-1]["a"], batch[-1]["b"]))
    assert seen == [(1, "x"), (1, "y"), (2, "x"), (2, "y"), (0, "z")]  # the NULL time never


def test_watermarks_are_stored_with_their_types() -> None:
    engine = sa.create_engine("sqlite://")
    store = WatermarkStore(engine, "mzj")
    assert store.get("t") is None
    mark = Watermark(dt.datetime(2026, 1, 1, 8, tzinfo=CST), (7, "x", Decimal("1.5")))
    store.put({"t": mark, "t#deletes": Watermark(dt.date(2026, 1, 2), ("k",))})
    assert store.get("t") == mark
    store.put({"t": Watermark(5, (8,))})
    assert store.get("t") == Watermark(5, (8,))
    assert store.get("t#deletes") == Watermark(dt.date(2026, 1, 2), ("k",))
    assert WatermarkStore(engine, "other").get("t") is None


def test_lag_is_the_newest_time_minus_the_watermark() -> None:
    t0 = dt.datetime(2026, 1, 1, tzinfo=CST)
    assert lag_seconds(t0 + dt.timedelta(seconds=90), Watermark(t0, (1,))) == 90.0
    assert lag_seconds(t0, Watermark(t0, (1,))) == 0.0
    assert lag_seconds(None, None) == 0.0
    assert lag_seconds(10, Watermark(5, (1,))) == 0.0  # not date-times: not measured


def test_health_fails_after_a_failed_round_and_when_stale() -> None:
    health = Health("source", 60)
    assert not health.state()[0]  # no round yet
    health.ok()
    assert health.state()[0]
    health.failed("PublishError: broker away")
    ok, body = health.state()
    assert not ok and body["error"] == "PublishError: broker away"
    stale = Health("source", -1.0)  # a success older than the allowed age
    stale.ok()
    assert not stale.state()[0]
