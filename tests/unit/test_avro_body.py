"""The compiled writer (avro_body) writes exactly fastavro's bytes and the compiled row reader
(avro_rows) reads exactly fastavro's values, every data type."""

from __future__ import annotations

import base64
import datetime as dt
import random
import uuid
from decimal import Decimal
from typing import Any

import pytest

from govbus.vocabulary import wire
from govbus.vocabulary.avro_body import long_bytes
from govbus.vocabulary.avro_rows import row_reader
from govbus.vocabulary.identifiers import citizen_id_check_digit
from govbus.vocabulary.spec import CatalogSpec, InfoItem, Resource
from producers.validate import avro_payload, to_payload, validate_record
from tests import factories

CST = dt.timezone(dt.timedelta(hours=8))
ITEMS = (
    InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),
    InfoItem("姓名", "citizen_name", "C", 5000, required=True),
    InfoItem("备注", "note", "M", 10000),
    InfoItem("身高", "height", "N"),
    InfoItem("补贴金额", "subsidy", "Y"),
    InfoItem("家庭人口数", "household_size", "I"),
    InfoItem("出生日期", "birth_date", "D"),
    InfoItem("登记时间", "registered_at", "T"),
    InfoItem("是否户主", "is_head", "L"),
    InfoItem("照片", "photo", "G"),
    InfoItem("双精度", "ratio", "B"),
    InfoItem("浮点", "score", "F"),
    InfoItem("必填金额", "fee", "Y", required=True),
    InfoItem("必填日期", "since", "D", required=True),
    InfoItem("必填时间", "at", "T", required=True),
)
RESOURCE: Resource = factories.person_resource(ITEMS)


def citizen(rng: random.Random) -> str:
    body = f"320402{rng.randrange(19000101, 20200101):08d}"[:14] + f"{rng.randrange(1000):03d}"
    body = body[:6] + "19900101" + body[14:]  # a real birth date
    check = citizen_id_check_digit(body)
    return body + (check.lower() if rng.random() < 0.5 else check)


def values(rng: random.Random) -> dict[str, Any]:
    """Random values of every kind validation accepts, edge cases included."""
    text = rng.choice(["", "a", "张三", "x" * 200, "字" * 1500, "é\u0000\U0001f600"])
    money = rng.choice(
        [
            Decimal("0"),
            Decimal("-0.00"),
            Decimal("1200.50"),
            Decimal("-128"),
            Decimal("-1.28"),
            Decimal("127.99"),
            Decimal("9999999999999999.99"),
            Decimal("-9999999999999999.99"),
            12.3,
            7,
            "-0.01",
        ]
    )
    stamp = rng.choice(
        [
            dt.datetime(2025, 3, 1, 9, 30, 15, 123999, tzinfo=CST),
            dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
            dt.datetime(1900, 1, 1, 0, 0, 0, 500, tzinfo=CST),
            dt.datetime(2025, 3, 1, 9, 30),  # naive: UTC+8
            "2024-05-01T08:00:00.123456+02:00",
        ]
    )
    record: dict[str, Any] = {
        "citizen_id": citizen(rng),
        "citizen_name": text or "无",
        "note": rng.choice([None, text[:10]]),
        "height": rng.choice([None, 0.0, -1.5, 172.5, 1e300, -(2**53), 3]),
        "subsidy": rng.choice([None, money]),
        "household_size": rng.choice([None, 0, -1, 63, 64, -65, 2**63 - 1, -(2**63), 4095, 4096]),
        "birth_date": rng.choice([None, dt.date(1969, 12, 31), dt.date(2000, 2, 29), "1990-01-01"]),
        "registered_at": rng.choice([None, stamp]),
        "is_head": rng.choice([None, True, False]),
        "photo": rng.choice(
            [None, b"", b"\x89PNG", bytearray(b"\x00" * 5000), base64.b64encode(b"ok").decode()]
        ),
        "ratio": rng.choice([None, float("-0.0"), 2.5e-308]),
        "score": rng.choice([None, 1.0]),
        "fee": money,
        "since": rng.choice([dt.date(1, 1, 1), dt.date(9999, 12, 31), dt.date(1970, 1, 1)]),
        "at": stamp,
    }
    return record


@pytest.mark.parametrize("seed", range(40))
def test_compiled_writer_matches_fastavro(seed: int) -> None:
    rng = random.Random(seed)
    for position in range(1, 26):
        record = values(rng)
        assert validate_record(RESOURCE, record, position) == []
        event_time = rng.choice(
            [dt.datetime.now(CST), dt.datetime(1960, 6, 1, 0, 0, 0, 999, tzinfo=dt.UTC)]
        )
        trace_id, version = str(uuid.uuid4()), rng.choice([1, 63, 64, 10**12])
        checked = wire.encode_single_object(
            RESOURCE,
            {
                "provider": factories.PROVIDER,
                "resource_code": RESOURCE.code,
                "catalog_version": version,
                "op": "UPSERT",
                "event_time": event_time,
                "trace_id": trace_id,
                "payload": to_payload(RESOURCE, record),  # what publish encoded before
            },
        )
        fast = wire.encode_upsert(
            RESOURCE,
            provider=factories.PROVIDER,
            catalog_version=version,
            event_time=event_time,
            trace_id=trace_id,
            payload=avro_payload(RESOURCE, record),
        )
        assert fast == checked, (seed, position, record)


def test_long_bytes_are_zigzag_varints() -> None:
    assert long_bytes(0) == b"\x00"
    assert long_bytes(-1) == b"\x01"
    assert long_bytes(1) == b"\x02"
    assert long_bytes(-64) == b"\x7f"
    assert long_bytes(64) == b"\x80\x01"
    assert long_bytes(4096) == b"\x80\x40"
    assert long_bytes(-(2**63)) == b"\xff" * 9 + b"\x01"


def _envelope(rng: random.Random, op: str = "UPSERT") -> bytes:
    record = values(rng)
    return wire.encode_single_object(
        RESOURCE,
        {
            "provider": factories.PROVIDER,
            "resource_code": RESOURCE.code,
            "catalog_version": rng.choice([1, 63, 64, 10**12]),
            "op": op,
            "event_time": rng.choice(
                [dt.datetime.now(CST), dt.datetime(1960, 6, 1, 0, 0, 0, 999, tzinfo=dt.UTC)]
            ),
            "trace_id": str(uuid.uuid4()),
            "payload": to_payload(RESOURCE, record) if op == "UPSERT" else None,
        },
    )


@pytest.mark.parametrize("seed", range(20))
def test_compiled_row_reader_reads_what_fastavro_reads(seed: int) -> None:
    rng = random.Random(seed)
    codes = [i.code for i in RESOURCE.items]
    catalog = wire.SchemaCatalog.build(CatalogSpec((), (RESOURCE,)))
    for _ in range(25):
        items = rng.sample(codes, rng.randrange(len(codes) + 1))  # any subset, any order
        data = _envelope(rng)
        env = wire.decode_single_object(data, catalog)
        expected = [*(env["payload"][c] for c in items), env["provider"],
                    env["catalog_version"], env["event_time"]]  # fmt: skip
        row = row_reader(RESOURCE, items)(data, wire.HEADER_SIZE)
        assert row == expected, (seed, items)
        # equal is not enough for times: the same instant in another zone compares equal
        assert [type(v) for v in row] == [type(v) for v in expected]
        assert row[-1].utcoffset() == expected[-1].utcoffset() == dt.timedelta(hours=8)
        for code, value in zip(items, row, strict=False):
            if isinstance(value, dt.datetime):
                assert value.isoformat() == env["payload"][code].isoformat()
            if isinstance(value, Decimal):
                assert str(value) == str(env["payload"][code])


def test_compiled_row_reader_skips_deletes_and_refuses_broken_bodies() -> None:
    rng = random.Random(7)
    read = row_reader(RESOURCE, ["citizen_id"])
    assert read(_envelope(rng, "DELETE"), wire.HEADER_SIZE) is None
    data = _envelope(rng)
    assert read(data, wire.HEADER_SIZE) is not None
    with pytest.raises(ValueError, match="cut short"):
        read(data[:-3], wire.HEADER_SIZE)
    with pytest.raises(ValueError, match=r"1 byte\(s\) after the record"):
        read(data + b"\x00", wire.HEADER_SIZE)
    with pytest.raises(ValueError, match="has no item nope"):
        row_reader(RESOURCE, ["nope"])
