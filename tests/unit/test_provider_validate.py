"""Provider-side record validation (producers/validate.py): each rule failing and passing."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from govbus.vocabulary.identifiers import citizen_id_check_digit, uscc_check_char
from govbus.vocabulary.spec import InfoItem, Resource, ResourceKey
from producers.publisher import RecordsFileError, coerce_csv_row, read_records
from producers.validate import (
    RecordError,
    record_key,
    to_payload,
    validate_key,
    validate_record,
)
from tests import factories

PROVIDER = factories.PROVIDER
BODY = "32040219900101101"
CITIZEN = BODY + citizen_id_check_digit(BODY)  # check digit of this body: X
WRONG_CHECK = BODY + ("0" if CITIZEN[-1] != "0" else "1")
USCC = "91320400123456789" + uscc_check_char("91320400123456789")

ITEMS = (
    InfoItem("公民身份号码", "citizen_id", "C", 18, required=True, sensitivity="sensitive"),
    InfoItem("姓名", "citizen_name", "C", 4, required=True),
    InfoItem("备注", "note", "M", 10),
    InfoItem("身高", "height", "N"),
    InfoItem("补贴金额", "subsidy", "Y"),
    InfoItem("家庭人口数", "household_size", "I"),
    InfoItem("出生日期", "birth_date", "D"),
    InfoItem("登记时间", "registered_at", "T"),
    InfoItem("是否户主", "is_head", "L"),
    InfoItem("照片", "photo", "G"),
    InfoItem("双精度", "ratio", "B"),
    InfoItem("浮点", "score", "F"),
    InfoItem("工作单位统一社会信用代码", "employer_uscc", "C", 18),
    InfoItem("统一社会信用代码", "org_code", "C", 18),
)


def person_resource(items: tuple[InfoItem, ...] = ITEMS) -> Resource:
    return factories.person_resource(items)


def company_resource() -> Resource:
    return dataclasses.replace(
        person_resource(
            (
                InfoItem("代码", "entity_code", "C", 18, required=True),
                InfoItem("企业名称", "entity_name", "C", 200),
            )
        ),
        code=f"10201/{PROVIDER}-000001",
        key=ResourceKey(("entity_code",), "legal-entity"),
    )


def composite_resource() -> Resource:
    return dataclasses.replace(
        person_resource(
            (
                InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),
                InfoItem("年度", "year", "I", required=True),
                InfoItem("金额", "amount", "Y"),
            )
        ),
        key=ResourceKey(("citizen_id", "year"), "natural-person"),
    )


RESOURCE = person_resource()


def valid() -> dict[str, Any]:
    return {
        "citizen_id": CITIZEN,
        "citizen_name": "张三",
        "note": "无",
        "height": 172.5,
        "subsidy": Decimal("1200.50"),
        "household_size": 3,
        "birth_date": "1990-01-01",
        "registered_at": "2024-05-01T08:30:00+08:00",
        "is_head": True,
        "photo": base64.b64encode(b"\x89PNG").decode(),
        "ratio": 0.5,
        "score": 1,
        "employer_uscc": USCC,
        "org_code": USCC,
    }


def rules(record: dict[str, Any], resource: Resource = RESOURCE) -> list[tuple[str | None, str]]:
    return [(e.item, e.rule) for e in validate_record(resource, record, 3)]


def test_a_valid_record_has_no_errors() -> None:
    assert validate_record(RESOURCE, valid(), 1) == []


def test_only_required_items_are_needed() -> None:
    assert validate_record(RESOURCE, {"citizen_id": CITIZEN, "citizen_name": "李四"}, 1) == []


def test_unknown_field_is_reported_with_the_resource() -> None:
    errors = validate_record(RESOURCE, {**valid(), "nickname": "小张"}, 3)
    assert [(e.item, e.rule) for e in errors] == [("nickname", "unknown-item")]
    assert errors[0].message.startswith("record 3, field nickname: rule unknown-item — ")
    assert RESOURCE.code in errors[0].message


def test_event_time_is_not_an_unknown_field() -> None:
    assert rules({**valid(), "_event_time": "2024-05-01T08:00:00"}) == []


@pytest.mark.parametrize("empty", [None, "", "   "])
def test_required_item_missing_or_empty(empty: Any) -> None:
    record = {**valid(), "citizen_name": empty}
    errors = validate_record(RESOURCE, record, 3)
    assert [(e.item, e.rule) for e in errors] == [("citizen_name", "required-item")]
    assert errors[0].message == (
        "record 3, item citizen_name (姓名): rule required-item — is required but missing or empty"
    )


def test_absent_required_item() -> None:
    record = valid()
    del record["citizen_name"]
    assert rules(record) == [("citizen_name", "required-item")]


@pytest.mark.parametrize("empty", [None, ""])
def test_key_item_missing_is_a_key_error_not_also_required(empty: Any) -> None:
    assert rules({**valid(), "citizen_id": empty}) == [("citizen_id", "key-item")]


def test_key_item_must_not_contain_the_separator() -> None:
    record = {"citizen_id": CITIZEN, "year": 2024}
    assert rules(record, composite_resource()) == []
    bad = {"citizen_id": CITIZEN[:9] + "|" + CITIZEN[10:], "year": 2024}
    assert ("citizen_id", "key-item") in rules(bad, composite_resource())


@pytest.mark.parametrize(
    ("item", "value"),
    [
        ("citizen_name", 12),
        ("note", b"bytes"),
        ("height", "172"),
        ("height", True),
        ("height", float("nan")),
        ("ratio", "0.5"),
        ("score", "1"),
        ("subsidy", "12.345"),
        ("subsidy", "lots"),
        ("subsidy", True),
        ("subsidy", Decimal("1234567890123456789")),
        ("household_size", 3.0),
        ("household_size", True),
        ("household_size", 2**63),
        ("birth_date", "1990/01/01"),
        ("birth_date", dt.datetime(1990, 1, 1, 8, 0)),
        ("birth_date", 19900101),
        ("registered_at", "yesterday"),
        ("registered_at", dt.date(2024, 5, 1)),
        ("is_head", "true"),
        ("is_head", 1),
        ("photo", "not base64!"),
        ("photo", 42),
    ],
)
def test_data_type_failures(item: str, value: Any) -> None:
    errors = validate_record(RESOURCE, {**valid(), item: value}, 3)
    assert [(e.item, e.rule) for e in errors] == [(item, "data-type")]
    data_type = RESOURCE.item(item).data_type  # type: ignore[union-attr]
    assert f"rule data-type — data type {data_type} " in errors[0].message


@pytest.mark.parametrize(
    ("item", "value"),
    [
        ("height", 172),
        ("height", Decimal("172.5")),
        ("subsidy", 12),
        ("subsidy", 12.3),
        ("subsidy", "12.30"),
        ("household_size", -1),
        ("birth_date", dt.date(1990, 1, 1)),
        ("registered_at", dt.datetime(2024, 5, 1, 8, 30)),
        ("registered_at", "2024-05-01T08:30:00"),
        ("is_head", False),
        ("photo", b"\x00\x01"),
        ("photo", bytearray(b"\x00")),
    ],
)
def test_data_type_passes(item: str, value: Any) -> None:
    assert rules({**valid(), item: value}) == []


def test_length_counts_characters_not_bytes() -> None:
    assert rules({**valid(), "citizen_name": "欧阳娜娜"}) == []  # 4 characters, 12 UTF-8 bytes
    errors = validate_record(RESOURCE, {**valid(), "citizen_name": "欧阳娜娜娜"}, 2)
    assert [(e.item, e.rule) for e in errors] == [("citizen_name", "length")]
    assert "has 5 characters, at most 4 allowed" in errors[0].message
    assert "欧阳" not in errors[0].message  # the value itself is not echoed
    assert rules({**valid(), "note": "x" * 11}) == [("note", "length")]


def test_citizen_id_check_digit_fails_and_is_masked() -> None:
    errors = validate_record(RESOURCE, {**valid(), "citizen_id": WRONG_CHECK}, 3)
    assert [(e.item, e.rule) for e in errors] == [("citizen_id", "citizen-id")]
    message = errors[0].message
    assert message.startswith("record 3, item citizen_id (公民身份号码): rule citizen-id — ")
    assert "GB 11643" in message
    assert WRONG_CHECK not in message and BODY not in message


def test_citizen_id_lower_case_x_is_valid() -> None:
    assert CITIZEN.endswith("X")
    assert rules({**valid(), "citizen_id": CITIZEN.lower()}) == []


def test_citizen_id_rule_also_applies_to_a_non_key_item_by_name() -> None:
    resource = dataclasses.replace(
        composite_resource(),
        items=(*composite_resource().items, InfoItem("公民身份号码", "spouse_id", "C", 18)),
    )
    record = {"citizen_id": CITIZEN, "year": 2024, "spouse_id": WRONG_CHECK}
    assert rules(record, resource) == [("spouse_id", "citizen-id")]
    # The second key item of a composite key is not taken for an identifier.
    assert rules({"citizen_id": CITIZEN, "year": 2024}, resource) == []


def test_uscc_rule_by_code_name_and_legal_entity_key() -> None:
    broken = USCC[:17] + ("0" if USCC[17] != "0" else "1")
    assert rules({**valid(), "org_code": broken}) == [("org_code", "uscc")]  # by name
    assert rules({**valid(), "employer_uscc": broken}) == []  # neither code nor name matches
    company = company_resource()
    assert rules({"entity_code": USCC, "entity_name": "某公司"}, company) == []
    errors = validate_record(company, {"entity_code": broken}, 5)
    assert [(e.item, e.rule) for e in errors] == [("entity_code", "uscc")]
    assert "GB 32100" in errors[0].message


def test_every_broken_rule_is_reported() -> None:
    record = {**valid(), "citizen_id": WRONG_CHECK, "citizen_name": None, "height": "x", "y": 1}
    assert sorted(rules(record)) == [
        ("citizen_id", "citizen-id"),
        ("citizen_name", "required-item"),
        ("height", "data-type"),
        ("y", "unknown-item"),
    ]


def test_errors_are_values() -> None:
    error = validate_record(RESOURCE, {**valid(), "height": "x"}, 7)[0]
    assert error == RecordError(7, "height", "data-type", error.message)
    assert str(error) == error.message


# --- keys ----------------------------------------------------------------------------------------


def test_single_item_key_is_the_normalised_citizen_id() -> None:
    assert record_key(RESOURCE, {**valid(), "citizen_id": CITIZEN.lower()}) == CITIZEN.encode()


def test_composite_key_joins_in_key_order() -> None:
    key = record_key(composite_resource(), {"year": 2024, "citizen_id": CITIZEN, "amount": 1})
    assert key == f"{CITIZEN}|2024".encode()


def test_key_of_legal_entity_is_utf8() -> None:
    assert record_key(company_resource(), {"entity_code": USCC}) == USCC.encode("utf-8")


def test_key_without_its_item_raises_naming_it() -> None:
    with pytest.raises(KeyError, match="key item citizen_id"):
        record_key(RESOURCE, {"citizen_name": "张三"})


def test_validate_key_accepts_exactly_key_items() -> None:
    assert validate_key(RESOURCE, {"citizen_id": CITIZEN}, 1) == []
    assert [(e.item, e.rule) for e in validate_key(RESOURCE, {"citizen_name": "张三"}, 1)] == [
        ("citizen_name", "unknown-item"),
        ("citizen_id", "key-item"),
    ]
    bad = validate_key(RESOURCE, {"citizen_id": WRONG_CHECK}, 1)
    assert [(e.item, e.rule) for e in bad] == [("citizen_id", "citizen-id")]


def test_payload_decodes_base64_and_normalises_citizen_id() -> None:
    payload = to_payload(RESOURCE, {**valid(), "citizen_id": CITIZEN.lower(), "_event_time": "x"})
    assert payload["citizen_id"] == CITIZEN
    assert payload["photo"] == b"\x89PNG"
    assert "_event_time" not in payload


# --- records files -------------------------------------------------------------------------------


def test_csv_cells_are_coerced_by_data_type() -> None:
    row = {
        "citizen_id": CITIZEN,
        "height": "172.5",
        "subsidy": "12.30",
        "household_size": "3",
        "is_head": "是",
        "birth_date": "1990-01-01",
        "note": "",
        "score": "n/a",
    }
    record = coerce_csv_row(RESOURCE, row)
    assert record == {
        "citizen_id": CITIZEN,
        "height": 172.5,
        "subsidy": Decimal("12.30"),
        "household_size": 3,
        "is_head": True,
        "birth_date": "1990-01-01",
        "score": "n/a",  # left as text: validation reports it
    }
    assert rules({**record, "citizen_name": "张三"}) == [("score", "data-type")]


def test_read_csv_and_jsonl_positions(tmp_path: Path) -> None:
    csv_path = tmp_path / "people.csv"
    csv_path.write_text(
        f"citizen_id,citizen_name,household_size\n{CITIZEN},张三,3\n{CITIZEN},李四,\n",
        encoding="utf-8",
    )
    assert list(read_records(csv_path, RESOURCE)) == [
        (1, {"citizen_id": CITIZEN, "citizen_name": "张三", "household_size": 3}),
        (2, {"citizen_id": CITIZEN, "citizen_name": "李四"}),
    ]
    jsonl = tmp_path / "people.jsonl"
    jsonl.write_text(
        '{"citizen_id": "a", "subsidy": 12.30}\n\n{"citizen_id": "b"}\n', encoding="utf-8"
    )
    got = list(read_records(jsonl))
    assert got == [(1, {"citizen_id": "a", "subsidy": Decimal("12.30")}), (2, {"citizen_id": "b"})]


def test_bad_records_files_name_file_and_line(tmp_path: Path) -> None:
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text('{"citizen_id": "a"}\n\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(RecordsFileError, match=r"bad.jsonl line 3 \(record 2\): expected a JSON"):
        list(read_records(jsonl))
    jsonl.write_text("{oops\n", encoding="utf-8")
    with pytest.raises(RecordsFileError, match=r"line 1 .*not valid JSON"):
        list(read_records(jsonl))
    with pytest.raises(RecordsFileError, match=r"unknown records format \.xlsx"):
        list(read_records(tmp_path / "x.xlsx"))


def _variants() -> list[tuple[Resource, dict[str, Any]]]:
    """Records passing and breaking every rule, for the compiled fast path's test."""
    base = valid()
    out: list[tuple[Resource, dict[str, Any]]] = [(RESOURCE, base), (RESOURCE, {})]
    values: list[Any] = [
        *(None, "", "   ", "a|b", "x" * 300, 12, 1.5, True, b"\x00", Decimal("1.5")),
        *(dt.date(2024, 1, 1), dt.datetime(2024, 1, 1, 8), CITIZEN, CITIZEN.lower()),
        *(WRONG_CHECK, USCC, "2024-05-01", "AAAA"),
    ]
    for item in ITEMS:
        for value in values:
            out.append((RESOURCE, {**base, item.code: value}))
        out.append((RESOURCE, {k: v for k, v in base.items() if k != item.code}))
    out.append((RESOURCE, {**base, "unknown": 1}))
    out.append((RESOURCE, {**base, "_event_time": "2024-05-01T08:30:00+08:00"}))
    company = company_resource()
    for value in (USCC, USCC.lower(), "91320400123456789X", "", None, 5, "a|b"):
        out.append((company, {"entity_code": value, "entity_name": "某某公司"}))
    composite = composite_resource()
    for year in (2024, "2024", None, True):
        out.append((composite, {"citizen_id": CITIZEN, "year": year, "amount": Decimal("1")}))
    return out


def test_the_compiled_fast_path_agrees_with_the_rules_item_by_item() -> None:
    from producers.validate import _plan, avro_payload, broken_rules

    accepted = 0
    for resource, record in _variants():
        reference = broken_rules(resource, record, 7)
        assert _plan(resource).passes(record) == (reference == []), record
        assert validate_record(resource, record, 7) == reference  # the same messages
        if not reference:
            accepted += 1
            # avro_payload's loop, item by item, as it was before it was compiled
            expected = {}
            for plan in _plan(resource).items:
                value = record.get(plan.code)
                convert = plan.to_avro
                expected[plan.code] = value if value is None or convert is None else convert(value)
            assert avro_payload(resource, record) == expected
    assert 20 < accepted < len(_variants())  # both paths exercised
