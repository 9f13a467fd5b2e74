"""Avro schemas of catalog resources: mapping, encoding, evolution and schema files."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import avro.schema
import fastavro
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from fastavro.read import SchemaResolutionError

from govbus.vocabulary import schemas
from govbus.vocabulary.identifiers import uscc_check_char
from govbus.vocabulary.spec import CatalogSpec, InfoItem, Resource, ResourceKey

PROVIDER = "11320400MB0152709" + uscc_check_char("11320400MB0152709")
OTHER_PROVIDER = "11320400MB0147045" + uscc_check_char("11320400MB0147045")
CST = dt.timezone(dt.timedelta(hours=8))

CITIZEN_ID = InfoItem("公民身份号码", "citizen_id", "C", 18, required=True, sensitivity="sensitive")
NAME = InfoItem("姓名", "citizen_name", "C", 50, required=True)
AGE = InfoItem("年龄", "age", "I")


def make_resource(
    items: tuple[InfoItem, ...] = (CITIZEN_ID, NAME, AGE),
    *,
    front: str = "10101",
    provider: str = PROVIDER,
    serial: str = "000001",
    name: str = "人口基本信息",
) -> Resource:
    return Resource(
        code=f"{front}/{provider}-{serial}",
        name=name,
        provider=provider,
        abstract="常住人口的基本信息",
        format="database",
        category=("人口", "户籍"),
        items=items,
        key=ResourceKey(("citizen_id",), "natural-person"),
        share_type="unconditional",
        update_cycle="daily",
        publish_date=dt.date(2024, 1, 1),
        share_methods=("system-integration",),
    )


def envelope(
    resource: Resource, payload: dict[str, Any] | None, op: str = "UPSERT"
) -> dict[str, Any]:
    return {
        "provider": resource.provider,
        "resource_code": resource.code,
        "catalog_version": 7,
        "op": op,
        "event_time": dt.datetime(2024, 5, 1, 9, 30, 15, 123000, tzinfo=CST),
        "trace_id": "trace-0001",
        "payload": payload,
    }


BASE_PAYLOAD = {"citizen_id": "320402199001011234", "citizen_name": "张三"}

# One sample per guide data type: (item, value given to encode, value decode returns).
SAMPLES: list[tuple[str, Any, Any]] = [
    ("C", "常州市天宁区", "常州市天宁区"),
    ("M", "备注\n第二行", "备注\n第二行"),
    ("N", 12, 12.0),
    ("N", Decimal("3.25"), 3.25),
    ("B", 1.0e-300, 1.0e-300),
    ("F", -2.5, -2.5),
    ("Y", Decimal("1234567890123456.78"), Decimal("1234567890123456.78")),
    ("Y", "12.3", Decimal("12.30")),
    ("Y", -7, Decimal("-7.00")),
    ("I", 2**62, 2**62),
    ("I", -1, -1),
    ("D", dt.date(1949, 10, 1), dt.date(1949, 10, 1)),
    ("D", "2024-02-29", dt.date(2024, 2, 29)),
    (
        "T",
        dt.datetime(2024, 5, 1, 8, 0, 0, 250000, tzinfo=dt.UTC),
        dt.datetime(2024, 5, 1, 16, 0, 0, 250000, tzinfo=CST),
    ),
    ("L", True, True),
    ("L", False, False),
    ("G", b"\x00\xffPDF", b"\x00\xffPDF"),
    ("G", bytearray(b"\x01\x02"), b"\x01\x02"),
]


# --- names and schema shape ---------------------------------------------------------------------


def test_schema_name_is_valid_avro_and_depends_only_on_the_code() -> None:
    resource = make_resource()
    assert schemas.schema_name(resource) == f"govbus.resource.R_10101_{PROVIDER}_000001"
    renamed = dataclasses.replace(resource, name="改名后的资源", items=(CITIZEN_ID,))
    assert schemas.schema_name(renamed) == schemas.schema_name(resource)

    detailed = make_resource(front="30201001", serial="000123")
    full = schemas.schema_name(detailed)
    assert full == f"govbus.resource.R_30201001_{PROVIDER}_000123"
    for part in full.split("."):
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part)
    # The full name survives a strict Avro parser as the payload record's name.
    parsed = avro.schema.parse(json.dumps(schemas.payload_schema(detailed)))
    assert parsed.fullname == full


@pytest.mark.parametrize(
    ("data_type", "avro_type"),
    [
        ("C", "string"),
        ("M", "string"),
        ("N", "double"),
        ("B", "double"),
        ("F", "double"),
        ("Y", {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}),
        ("I", "long"),
        ("D", {"type": "int", "logicalType": "date"}),
        ("T", {"type": "long", "logicalType": "timestamp-millis"}),
        ("L", "boolean"),
        ("G", "bytes"),
    ],
)
def test_payload_field_types_follow_the_guide_data_type(data_type: str, avro_type: Any) -> None:
    required = InfoItem("必填项", "must", data_type, required=True)  # type: ignore[arg-type]
    optional = InfoItem("选填项", "may", data_type)  # type: ignore[arg-type]
    schema = schemas.payload_schema(make_resource((CITIZEN_ID, required, optional)))
    fields = {f["name"]: f for f in schema["fields"]}
    assert fields["must"]["type"] == avro_type
    assert "default" not in fields["must"]
    assert fields["may"]["type"] == ["null", avro_type]
    assert fields["may"]["default"] is None
    assert fields["may"]["govbus.data_type"] == data_type


def test_payload_fields_keep_order_names_and_catalog_attributes() -> None:
    schema = schemas.payload_schema(make_resource())
    assert [f["name"] for f in schema["fields"]] == ["citizen_id", "citizen_name", "age"]
    citizen = schema["fields"][0]
    assert citizen["doc"] == "公民身份号码"
    assert citizen["govbus.item_name"] == "公民身份号码"
    assert citizen["govbus.sensitivity"] == "sensitive"
    assert citizen["maxLength"] == 18
    assert "maxLength" not in schema["fields"][2]  # only text items carry a length
    assert "人口基本信息" in schema["doc"]


def test_envelope_has_the_documented_fields_and_parses_in_both_libraries() -> None:
    resource = make_resource()
    schema = schemas.envelope_schema(resource)
    assert schema["name"] == f"R_10101_{PROVIDER}_000001_Event"
    assert [f["name"] for f in schema["fields"]] == [
        "provider",
        "resource_code",
        "catalog_version",
        "op",
        "event_time",
        "trace_id",
        "payload",
    ]
    op = schema["fields"][3]["type"]
    assert op["symbols"] == ["UPSERT", "DELETE"]
    payload = schema["fields"][6]
    assert payload["type"] == ["null", schemas.payload_schema(resource)]
    assert payload["default"] is None
    avro.schema.parse(json.dumps(schema))
    fastavro.parse_schema(schema)


# --- encoding -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("data_type", "given", "expected"), SAMPLES)
@pytest.mark.parametrize("required", [True, False])
def test_every_data_type_round_trips(
    data_type: str, given: Any, expected: Any, required: bool
) -> None:
    item = InfoItem("测试项", "value", data_type, required=required)  # type: ignore[arg-type]
    resource = make_resource((CITIZEN_ID, NAME, item))
    sent = envelope(resource, {**BASE_PAYLOAD, "value": given})
    got = schemas.decode(resource, schemas.encode(resource, sent))
    assert got["payload"] == {**BASE_PAYLOAD, "value": expected}
    assert type(got["payload"]["value"]) is type(expected)
    assert {k: v for k, v in got.items() if k != "payload"} == {
        k: v for k, v in sent.items() if k != "payload"
    }


def test_optional_items_may_be_left_out_and_come_back_null() -> None:
    resource = make_resource()
    got = schemas.decode(resource, schemas.encode(resource, envelope(resource, BASE_PAYLOAD)))
    assert got["payload"] == {**BASE_PAYLOAD, "age": None}


def test_naive_datetimes_are_china_standard_time() -> None:
    item = InfoItem("登记时间", "registered_at", "T", required=True)
    resource = make_resource((CITIZEN_ID, NAME, item))
    sent = envelope(resource, {**BASE_PAYLOAD, "registered_at": dt.datetime(2024, 5, 1, 8, 0)})
    sent["event_time"] = "2024-05-01T08:00:00"
    got = schemas.decode(resource, schemas.encode(resource, sent))
    utc_midnight = dt.datetime(2024, 5, 1, 0, 0, tzinfo=dt.UTC)
    assert got["payload"]["registered_at"] == utc_midnight
    assert got["event_time"] == utc_midnight
    assert got["event_time"].utcoffset() == dt.timedelta(hours=8)


def test_delete_without_payload_round_trips() -> None:
    resource = make_resource()
    got = schemas.decode(resource, schemas.encode(resource, envelope(resource, None, "DELETE")))
    assert got["op"] == "DELETE"
    assert got["payload"] is None


def test_encoding_is_plain_schemaless_avro_any_client_can_read() -> None:
    resource = make_resource()
    data = schemas.encode(resource, envelope(resource, {**BASE_PAYLOAD, "age": 34}))
    record = fastavro.schemaless_reader(io.BytesIO(data), schemas.envelope_schema(resource), None)
    assert isinstance(record, dict)
    assert record["payload"]["age"] == 34
    assert record["resource_code"] == resource.code


@pytest.mark.parametrize(
    ("item", "value", "expected"),
    [
        (AGE, "34", r"item 'age' \(年龄\) of data type I 整型 expects a whole number"),
        (AGE, True, r"item 'age' .* expects a whole number \(int\), got a bool"),
        (AGE, 2**63, r"item 'age' .* outside the 64-bit integer range"),
        (InfoItem("金额", "amount", "Y"), Decimal("0.125"), r"'amount'.* at most 2 decimal"),
        (InfoItem("金额", "amount", "Y"), Decimal("1e17"), r"'amount'.* at most 18 digits"),
        (InfoItem("金额", "amount", "Y"), "abc", r"'amount'.* non-numeric text"),
        (InfoItem("出生日期", "birth", "D"), dt.datetime(2024, 1, 1), r"'birth'.* expects a date"),
        (InfoItem("出生日期", "birth", "D"), "2024/01/01", r"'birth'.* YYYY-MM-DD"),
        (InfoItem("比例", "ratio", "F"), float("nan"), r"'ratio'.* finite number"),
        (InfoItem("是否", "flag", "L"), 1, r"'flag'.* expects true or false"),
        (InfoItem("附件", "file", "G"), "text", r"'file'.* expects bytes, got a str"),
        (InfoItem("备注", "note", "M"), 5, r"'note'.* expects text \(str\), got a int"),
    ],
)
def test_wrong_values_name_resource_item_and_expected_type(
    item: InfoItem, value: Any, expected: str
) -> None:
    resource = make_resource((CITIZEN_ID, NAME, item))
    with pytest.raises(schemas.EncodeError, match=expected) as info:
        schemas.encode(resource, envelope(resource, {**BASE_PAYLOAD, item.code: value}))
    assert resource.code in str(info.value)


def test_required_unknown_and_sensitive_values() -> None:
    resource = make_resource()
    with pytest.raises(schemas.EncodeError, match=r"'citizen_name' \(姓名\).* is required"):
        schemas.encode(resource, envelope(resource, {"citizen_id": "320402199001011234"}))
    with pytest.raises(schemas.EncodeError, match=r"unknown item\(s\) citizen_nmae"):
        schemas.encode(resource, envelope(resource, {**BASE_PAYLOAD, "citizen_nmae": "张三"}))
    # Values may be personal data: errors say what was wrong, never what the value was.
    with pytest.raises(schemas.EncodeError) as info:
        schemas.encode(resource, envelope(resource, {**BASE_PAYLOAD, "citizen_id": 320402199}))
    assert "citizen_id" in str(info.value)
    assert "320402199" not in str(info.value)


def test_envelope_errors() -> None:
    resource = make_resource()
    with pytest.raises(schemas.EncodeError, match="UPSERT needs a payload"):
        schemas.encode(resource, envelope(resource, None))
    with pytest.raises(schemas.EncodeError, match="op must be one of UPSERT, DELETE"):
        schemas.encode(resource, envelope(resource, BASE_PAYLOAD, "INSERT"))
    other = make_resource(serial="000002")
    with pytest.raises(schemas.EncodeError, match=r"resource_code is .*000002.*expected"):
        schemas.encode(resource, envelope(other, BASE_PAYLOAD))
    broken = envelope(resource, BASE_PAYLOAD)
    del broken["trace_id"]
    with pytest.raises(schemas.EncodeError, match=r"missing \['trace_id'\]"):
        schemas.encode(resource, broken)


# --- evolution ----------------------------------------------------------------------------------

OLD = make_resource((CITIZEN_ID, NAME, AGE, InfoItem("收入", "income", "I")))


def _with(*items: InfoItem) -> Resource:
    return dataclasses.replace(OLD, items=items)


COMPATIBLE = {
    "optional item added": _with(
        CITIZEN_ID, NAME, AGE, OLD.items[3], InfoItem("住址", "addr", "C")
    ),
    "item removed": _with(CITIZEN_ID, NAME, AGE),
    "required item made optional": _with(
        CITIZEN_ID, dataclasses.replace(NAME, required=False), AGE, OLD.items[3]
    ),
    "integer widened to number": _with(CITIZEN_ID, NAME, AGE, InfoItem("收入", "income", "N")),
    "text changed to memo": _with(
        CITIZEN_ID, dataclasses.replace(NAME, data_type="M"), AGE, OLD.items[3]
    ),
    "items reordered, names and lengths changed": _with(
        dataclasses.replace(NAME, length=100), CITIZEN_ID, OLD.items[3], AGE
    ),
}


@pytest.mark.parametrize("change", sorted(COMPATIBLE))
def test_compatible_changes_read_old_records(change: str) -> None:
    new = COMPATIBLE[change]
    assert schemas.check_evolution(OLD, new) is None
    payload = {**BASE_PAYLOAD, "age": 34, "income": 5000}
    data = schemas.encode(OLD, envelope(OLD, payload))
    got = schemas.decode(new, data, written_with=OLD)
    for item in new.items:
        expected = payload.get(item.code)
        assert got["payload"][item.code] == expected
    assert set(got["payload"]) == {i.code for i in new.items}


@pytest.mark.parametrize(
    ("new", "expected", "old_age"),
    [
        (
            _with(*OLD.items, InfoItem("性别", "gender", "C", required=True)),
            r"item 'gender' \(性别\) is new and required without a default",
            34,
        ),
        (
            _with(CITIZEN_ID, NAME, InfoItem("年龄", "age", "C"), OLD.items[3]),
            r"item 'age' \(年龄\) changed from I 整型, optional to C 字符型, optional "
            r"\(Avro: reader union lacking writer type: LONG\)",
            34,
        ),
        (
            _with(CITIZEN_ID, NAME, dataclasses.replace(AGE, required=True), OLD.items[3]),
            r"item 'age' .* to I 整型, required .*writer type: null.*keep it optional",
            None,
        ),
    ],
    ids=["required item added", "type changed", "optional made required"],
)
def test_incompatible_changes_name_resource_and_item(
    new: Resource, expected: str, old_age: int | None
) -> None:
    reason = schemas.check_evolution(OLD, new)
    assert reason is not None
    assert reason.startswith(f"resource {OLD.code} 人口基本信息: ")
    assert re.search(expected, reason), reason
    # Data written before really cannot be read with the new schema.
    data = schemas.encode(OLD, envelope(OLD, BASE_PAYLOAD | {"age": old_age}))
    with pytest.raises(SchemaResolutionError):
        schemas.decode(new, data, written_with=OLD)


def test_number_narrowed_to_integer_is_incompatible() -> None:
    old = _with(CITIZEN_ID, NAME, InfoItem("收入", "income", "N"))
    new = _with(CITIZEN_ID, NAME, InfoItem("收入", "income", "I"))
    reason = schemas.check_evolution(old, new)
    assert reason is not None
    assert "item 'income' (收入) changed from N 数值型, optional to I 整型, optional" in reason


@pytest.mark.parametrize(
    ("old_type", "new_type", "expected"),
    [
        ("D", "I", "values written as date would be read as long"),
        ("C", "Y", "values written as string would be read as decimal"),
        ("D", "T", "values written as date would be read as timestamp-millis"),
        ("G", "C", "values written as bytes would be read as string"),
    ],
)
def test_changes_avro_would_promote_but_that_change_meaning_are_incompatible(
    old_type: str, new_type: str, expected: str
) -> None:
    old = _with(CITIZEN_ID, NAME, InfoItem("值", "value", old_type))  # type: ignore[arg-type]
    new = _with(CITIZEN_ID, NAME, InfoItem("值", "value", new_type))  # type: ignore[arg-type]
    # Avro's own resolution accepts these (it ignores logical types) ...
    avro_result = ReaderWriterCompatibilityChecker().get_compatibility(
        reader=avro.schema.parse(json.dumps(schemas.payload_schema(new))),
        writer=avro.schema.parse(json.dumps(schemas.payload_schema(old))),
    )
    assert avro_result.compatibility is SchemaCompatibilityType.compatible
    # ... but the catalog refuses them.
    reason = schemas.check_evolution(old, new)
    assert reason is not None
    assert f"item 'value' (值) changed data type from {old_type} " in reason
    assert expected in reason


def test_several_broken_items_are_all_reported() -> None:
    new = _with(
        CITIZEN_ID,
        NAME,
        InfoItem("年龄", "age", "L"),
        InfoItem("收入", "income", "D"),
        InfoItem("性别", "gender", "C", required=True),
    )
    reason = schemas.check_evolution(OLD, new)
    assert reason is not None
    assert "'age'" in reason
    assert "'income'" in reason
    assert "'gender'" in reason


def test_spec_evolution_checks_resources_in_both_catalogs() -> None:
    kept = make_resource(serial="000002", name="婚姻登记信息")
    broken = dataclasses.replace(kept, items=(CITIZEN_ID, NAME, InfoItem("年龄", "age", "C")))
    removed = make_resource(serial="000003")
    added = make_resource((CITIZEN_ID, InfoItem("x", "x", "C", required=True)), serial="000004")
    old = CatalogSpec(resources=(OLD, kept, removed))
    new = CatalogSpec(resources=(COMPATIBLE["optional item added"], broken, added))
    problems = schemas.check_spec_evolution(old, new)
    assert [code for code, _ in problems] == [kept.code]
    assert "婚姻登记信息" in problems[0][1]
    assert "'age'" in problems[0][1]
    assert schemas.check_spec_evolution(old, old) == []


# --- schema files -------------------------------------------------------------------------------


def test_write_schemas_is_deterministic_and_removes_stale_files(tmp_path: Path) -> None:
    first = make_resource()
    second = make_resource(serial="000002", provider=OTHER_PROVIDER, name="婚姻登记信息")
    spec = CatalogSpec(resources=(first, second))
    unrelated = tmp_path / "someone-else.avsc"
    unrelated.write_text("{}", encoding="utf-8")

    paths = schemas.write_schemas(spec, tmp_path / "avro")
    assert [p.name for p in paths] == [
        f"{schemas.schema_name(first)}.avsc",
        f"{schemas.schema_name(second)}.avsc",
    ]
    contents = [p.read_bytes() for p in paths]
    text = contents[0].decode("utf-8")
    assert "人口基本信息" in text  # Chinese is written as is, not \u-escaped
    assert json.loads(text) == schemas.envelope_schema(first)
    fastavro.parse_schema(json.loads(text))

    again = schemas.write_schemas(spec, tmp_path / "avro")
    assert again == paths
    assert [p.read_bytes() for p in again] == contents

    (tmp_path / "avro" / "notes.avsc").write_text("{}", encoding="utf-8")
    only_second = schemas.write_schemas(CatalogSpec(resources=(second,)), tmp_path / "avro")
    assert sorted(p.name for p in (tmp_path / "avro").iterdir()) == sorted(
        ["notes.avsc", only_second[0].name]
    )
    assert only_second[0].read_bytes() == contents[1]
    assert unrelated.exists()
