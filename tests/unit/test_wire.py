"""The wire format (producers/wire.py): Avro single-object encoding, readable by any Avro client."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import re
from decimal import Decimal
from typing import Any

import avro.io
import avro.schema
import pytest

from govbus.vocabulary import schemas, wire
from govbus.vocabulary.spec import CatalogSpec, Department, InfoItem, Resource
from tests import factories

PROVIDER = factories.PROVIDER
CST = dt.timezone(dt.timedelta(hours=8))
ITEMS = (
    InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),
    InfoItem("姓名", "citizen_name", "C", 50, required=True),
    InfoItem("补贴金额", "subsidy", "Y"),
    InfoItem("出生日期", "birth_date", "D"),
)
PHONE = InfoItem("联系电话", "phone", "C", 20)


def make_resource(items: tuple[InfoItem, ...] = ITEMS) -> Resource:
    return factories.person_resource(items)


RESOURCE = make_resource()
PAYLOAD = {
    "citizen_id": "32040219900101101X",
    "citizen_name": "张三",
    "subsidy": Decimal("1200.50"),
    "birth_date": dt.date(1990, 1, 1),
}


def envelope(payload: dict[str, Any] | None = PAYLOAD) -> dict[str, Any]:
    return {
        "provider": PROVIDER,
        "resource_code": RESOURCE.code,
        "catalog_version": 7,
        "op": "UPSERT",
        "event_time": dt.datetime(2025, 3, 1, 9, 30, 15, 123000, tzinfo=CST),
        "trace_id": "trace-1",
        "payload": payload,
    }


def spec(*resources: Resource) -> CatalogSpec:
    return CatalogSpec((Department("cz-gaj", PROVIDER, "市公安局", "city", "320400"),), resources)


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO as the Avro specification gives it ("Schema Fingerprints")."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def conformant_canonical_form(schema: avro.schema.Schema) -> str:
    """avro's Parsing Canonical Form with the spec's [PRIMITIVES] rule applied.

    avro (Python) 1.12 strips ``logicalType`` but leaves ``{"type":"long"}`` where the spec
    (and Java's SchemaNormalization) write ``"long"``, so its own ``fingerprint()`` differs
    from every conformant implementation for schemas with logical types.
    """
    primitive = r'\{"type":"(null|boolean|int|long|float|double|bytes|string)"\}'
    return re.sub(primitive, r'"\1"', schema.canonical_form)


def test_header_is_marker_and_little_endian_fingerprint_of_the_canonical_form() -> None:
    data = wire.encode_single_object(RESOURCE, envelope())
    assert data[:2] == b"\xc3\x01"
    parsed = avro.schema.parse(json.dumps(schemas.envelope_schema(RESOURCE)))
    canonical = conformant_canonical_form(parsed)
    assert '"type":"long"' in canonical and "logicalType" not in canonical
    assert int.from_bytes(data[2:10], "little") == crc64_avro(canonical.encode())
    assert data[2:10] == wire.fingerprint(RESOURCE)


def test_the_plain_avro_package_decodes_the_body() -> None:
    """A client that is not ours: avro's DatumReader with the .avsc schema, no govbus code."""
    data = wire.encode_single_object(RESOURCE, envelope())
    writer = avro.schema.parse(json.dumps(schemas.envelope_schema(RESOURCE)))
    assert int.from_bytes(data[2:10], "little") == crc64_avro(
        conformant_canonical_form(writer).encode()
    )
    record = avro.io.DatumReader(writer).read(avro.io.BinaryDecoder(io.BytesIO(data[10:])))
    assert record["provider"] == PROVIDER
    assert record["resource_code"] == RESOURCE.code
    assert record["catalog_version"] == 7
    assert record["op"] == "UPSERT"
    assert record["trace_id"] == "trace-1"
    assert record["event_time"] == dt.datetime(2025, 3, 1, 1, 30, 15, 123000, tzinfo=dt.UTC)
    assert record["payload"]["citizen_id"] == "32040219900101101X"
    assert record["payload"]["citizen_name"] == "张三"
    assert record["payload"]["subsidy"] == Decimal("1200.50")
    assert record["payload"]["birth_date"] == dt.date(1990, 1, 1)


def test_round_trip_through_the_schema_catalog() -> None:
    catalog = wire.SchemaCatalog.build(spec(RESOURCE))
    data = wire.encode_single_object(RESOURCE, envelope())
    writer, decoded = wire.read_single_object(data, catalog)
    assert writer == RESOURCE
    assert decoded["payload"] == PAYLOAD
    assert decoded["event_time"] == dt.datetime(2025, 3, 1, 9, 30, 15, 123000, tzinfo=CST)
    assert wire.decode_single_object(data, catalog) == decoded


def test_a_delete_has_a_null_payload() -> None:
    catalog = wire.SchemaCatalog.build(spec(RESOURCE))
    data = wire.encode_single_object(RESOURCE, {**envelope(None), "op": "DELETE"})
    assert wire.decode_single_object(data, catalog)["payload"] is None


def test_records_of_an_older_version_are_read_with_the_current_schema() -> None:
    old, new = RESOURCE, make_resource((*ITEMS, PHONE))
    assert wire.fingerprint(old) != wire.fingerprint(new)
    catalog = wire.SchemaCatalog.build(spec(new), [spec(old)])
    assert len(catalog) == 2
    data = wire.encode_single_object(old, envelope())
    writer, decoded = wire.read_single_object(data, catalog, reader=new)
    assert writer == old
    assert decoded["payload"] == {**PAYLOAD, "phone": None}


def test_same_schema_in_several_versions_keeps_the_newest_resource() -> None:
    renamed = dataclasses.replace(RESOURCE, name="人口基本信息（新）")
    catalog = wire.SchemaCatalog.build(spec(renamed), [spec(RESOURCE)])
    assert len(catalog) == 1
    assert catalog.writer(wire.fingerprint(RESOURCE)).name == "人口基本信息（新）"


def test_unknown_fingerprint_raises_key_error_with_hex() -> None:
    newer = make_resource((*ITEMS, PHONE))
    data = wire.encode_single_object(newer, envelope())
    with pytest.raises(KeyError) as missing:
        wire.decode_single_object(data, wire.SchemaCatalog.build(spec(RESOURCE)))
    assert missing.value.args[0] == wire.fingerprint(newer).hex()


@pytest.mark.parametrize("data", [b"", b"\xc3\x01abc", b"\x00\x01" + b"0" * 20])
def test_not_single_object_encoded(data: bytes) -> None:
    with pytest.raises(ValueError, match="not Avro single-object encoded"):
        wire.decode_single_object(data, wire.SchemaCatalog.build(spec(RESOURCE)))


def test_invalid_envelope_is_refused_before_encoding() -> None:
    with pytest.raises(schemas.EncodeError, match="citizen_name"):
        wire.encode_single_object(RESOURCE, envelope({"citizen_id": "x"}))


def test_headers_name_the_schema_and_catalog_version() -> None:
    assert wire.headers(RESOURCE, 12) == [
        ("govbus-schema", f"{schemas.schema_name(RESOURCE)}_Event".encode()),
        ("govbus-catalog-version", b"12"),
    ]
    assert wire.envelope_name(RESOURCE) == schemas.envelope_schema(RESOURCE)["namespace"] + (
        "." + schemas.envelope_schema(RESOURCE)["name"]
    )


def test_body_and_decoding_agree_with_the_schemas_module() -> None:
    """wire parses schemas once per resource instead of calling schemas.encode/decode."""
    stamp = InfoItem("登记时间", "registered_at", "T")
    old, new = make_resource((*ITEMS, stamp)), make_resource((*ITEMS, stamp, PHONE))
    env = envelope({**PAYLOAD, "registered_at": dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)})
    data = wire.encode_single_object(old, env)
    assert data[10:] == schemas.encode(old, env)
    catalog = wire.SchemaCatalog.build(spec(new), [spec(old)])
    for reader in (None, new):
        decoded = wire.decode_single_object(data, catalog, reader=reader)
        assert decoded == schemas.decode(reader or old, data[10:], written_with=old)
    assert decoded["payload"]["registered_at"].utcoffset() == dt.timedelta(hours=8)
