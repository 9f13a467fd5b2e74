"""Avro schemas derived from the catalog: what a resource's records look like on the bus.

Every resource gets one schema, built from its info items (信息项) alone, so the catalog stays
the only place a record's shape is defined.

Names (stable: they depend only on the 政务信息资源代码)
    payload record  ``govbus.resource.R_<front>_<provider code>_<serial>`` (``schema_name``)
    envelope record ``govbus.resource.R_<front>_<provider code>_<serial>_Event``
    e.g. ``10101/11320400MB1234567R-000001``
    → ``govbus.resource.R_10101_11320400MB1234567R_000001``.

Payload: one field per info item, in catalog order; field name = item code, ``doc`` = item name.
Data types of the catalog guide (编制指南) map to types every Avro client can decode:

    ====================  =============================================================
    C 字符型, M 备注型     string (the item's length kept as field attribute ``maxLength``)
    N 数值型, B 双精度型,  double
    F 浮点型
    Y 货币型               bytes, logicalType decimal, precision 18, scale 2 (exact money)
    I 整型                 long
    D 日期型               int, logicalType date
    T 日期时间型           long, logicalType timestamp-millis
    L 逻辑型               boolean
    G 通用型               bytes
    ====================  =============================================================

A required item is non-null; any other is ``["null", T]`` with default null. Each field also
carries ``govbus.item_name`` (the item's Chinese name), ``govbus.data_type`` (the guide's letter)
and ``govbus.sensitivity``.

Envelope (the Kafka message value), fields in this order:
    provider         string    统一社会信用代码 of the providing department
    resource_code    string    政务信息资源代码
    catalog_version  long      catalog version the producer used
    op               enum Op   UPSERT | DELETE
    event_time       long      timestamp-millis, when the change happened at the source
    trace_id         string    ties the event to its request/audit trail
    payload          ["null", payload record], default null; null for DELETE (the message
                     key says which record is deleted)

Evolution is backward compatibility: consumers upgrade first, so the new schema, used as
reader, must read everything written with the old one. Adding an optional item or removing an
item is fine; adding a required item or changing an item's type is not.

Timestamps: a naive ``datetime`` is taken as China Standard Time (UTC+8, the bus's local time
without daylight saving); decoded timestamps come back aware, in UTC+8. Avro keeps milliseconds.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import avro.schema
import fastavro
import fastavro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.errors import UserError
from govbus.vocabulary.identifiers import parse_resource_code
from govbus.vocabulary.spec import DATA_TYPE_NAMES, CatalogSpec, InfoItem, Resource

__all__ = [
    "CHINA_TZ",
    "NAMESPACE",
    "OPS",
    "Codec",
    "EncodeError",
    "check_evolution",
    "check_spec_evolution",
    "codec",
    "converter",
    "decode",
    "encode",
    "envelope_schema",
    "in_china_time",
    "payload_schema",
    "schema_name",
    "timestamp",
    "to_avro_envelope",
    "write_schemas",
]

NAMESPACE = "govbus.resource"
OPS = ("UPSERT", "DELETE")
MONEY_PRECISION = 18
MONEY_SCALE = 2
_CENT = decimal.Decimal(1).scaleb(-MONEY_SCALE)

_AVRO_TYPES: dict[str, Any] = {
    "C": "string",
    "M": "string",
    "N": "double",
    "B": "double",
    "F": "double",
    "Y": {
        "type": "bytes",
        "logicalType": "decimal",
        "precision": MONEY_PRECISION,
        "scale": MONEY_SCALE,
    },
    "I": "long",
    "D": {"type": "int", "logicalType": "date"},
    "T": {"type": "long", "logicalType": "timestamp-millis"},
    "L": "boolean",
    "G": "bytes",
}
_ENVELOPE_FIELDS = (
    "provider",
    "resource_code",
    "catalog_version",
    "op",
    "event_time",
    "trace_id",
    "payload",
)


class EncodeError(UserError):
    """A value does not fit its resource's schema; the message names the resource and item.

    Values themselves are never quoted: they may be personal data.
    """


# --- schemas ------------------------------------------------------------------------------------


def _local_name(resource: Resource) -> str:
    code = parse_resource_code(resource.code)
    # Avro names allow only [A-Za-z0-9_]; the code's parts are digits and USCC letters.
    return f"R_{code.front}_{code.provider_code}_{code.serial}"


def schema_name(resource: Resource) -> str:
    """Full name of the resource's payload record; the envelope's is this plus ``_Event``."""
    return f"{NAMESPACE}.{_local_name(resource)}"


def _item_type(item: InfoItem) -> Any:
    # Copy, so callers editing a returned schema cannot change the table.
    return json.loads(json.dumps(_AVRO_TYPES[item.data_type]))


def _item_field(item: InfoItem) -> dict[str, Any]:
    field: dict[str, Any] = {"name": item.code, "doc": item.name}
    if item.required:
        field["type"] = _item_type(item)
    else:
        field["type"] = ["null", _item_type(item)]
        field["default"] = None
    if item.data_type in ("C", "M") and item.length is not None:
        field["maxLength"] = item.length
    field["govbus.item_name"] = item.name
    field["govbus.data_type"] = item.data_type
    field["govbus.sensitivity"] = item.sensitivity
    return field


def payload_schema(resource: Resource) -> dict[str, Any]:
    """The Avro record of one record of the resource: a field per info item."""
    return {
        "type": "record",
        "name": _local_name(resource),
        "namespace": NAMESPACE,
        "doc": f"{resource.name} ({resource.code})",
        "fields": [_item_field(i) for i in resource.items],
    }


def envelope_schema(resource: Resource) -> dict[str, Any]:
    """The Avro record of a change event of the resource, with the payload record inside."""
    return {
        "type": "record",
        "name": f"{_local_name(resource)}_Event",
        "namespace": NAMESPACE,
        "doc": f"Change event of {resource.name} ({resource.code})",
        "fields": [
            {"name": "provider", "type": "string", "doc": "统一社会信用代码 of the provider"},
            {"name": "resource_code", "type": "string", "doc": "政务信息资源代码"},
            {"name": "catalog_version", "type": "long", "doc": "catalog version used"},
            {
                "name": "op",
                "type": {"type": "enum", "name": "Op", "symbols": list(OPS)},
                "doc": "UPSERT writes the payload, DELETE removes the keyed record",
            },
            {
                "name": "event_time",
                "type": {"type": "long", "logicalType": "timestamp-millis"},
                "doc": "when the change happened at the source",
            },
            {"name": "trace_id", "type": "string", "doc": "request/audit trace id"},
            {
                "name": "payload",
                "type": ["null", payload_schema(resource)],
                "default": None,
                "doc": "the record; null for DELETE",
            },
        ],
    }


# --- evolution ----------------------------------------------------------------------------------


def _describe(item: InfoItem) -> str:
    required = "required" if item.required else "optional"
    return f"{item.data_type} {DATA_TYPE_NAMES[item.data_type]}, {required}"


def _label(item: InfoItem) -> str:
    return f"item {item.code!r} ({item.name})"


def _wire_type(item: InfoItem) -> tuple[str, str | None]:
    t = _AVRO_TYPES[item.data_type]
    return (t, None) if isinstance(t, str) else (t["type"], t["logicalType"])


def _meaning_changes(old: InfoItem, new: InfoItem) -> str | None:
    """Type changes Avro resolution accepts but that change what a value means.

    Avro resolves by primitive type and ignores logical types, so it would read a date (int)
    as an integer or a text as money bytes; and string<->bytes promotion turns binary data into
    (possibly invalid) text. The catalog treats these as incompatible too.
    """
    (old_type, old_logical), (new_type, new_logical) = _wire_type(old), _wire_type(new)
    if old_logical != new_logical or {old_type, new_type} == {"string", "bytes"}:
        return (
            f"{_label(new)} changed data type from {_describe(old)} to {_describe(new)}; "
            f"values written as {old_logical or old_type} would be read as "
            f"{new_logical or new_type}"
        )
    return None


def _parse(schema: Mapping[str, Any]) -> avro.schema.Schema:
    return avro.schema.parse(json.dumps(schema))


def _compatibility(reader: avro.schema.Schema, writer: avro.schema.Schema) -> Any:
    # A fresh checker each time: it memoizes by schema pair.
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    return checker.get_compatibility(reader=reader, writer=writer)


def _single_field(item: InfoItem | None) -> avro.schema.Schema:
    return _parse({"type": "record", "name": "X", "fields": [_item_field(item)] if item else []})


def _item_reason(old: InfoItem | None, new: InfoItem) -> str | None:
    """Why records with ``old`` (None: the item did not exist) cannot be read as ``new``."""
    # The checker reports nested locations only partly (it loses them inside unions), so each
    # item is checked on its own; that pairs every message with the item it is about.
    result = _compatibility(_single_field(new), _single_field(old))
    if result.compatibility is not SchemaCompatibilityType.incompatible:
        return _meaning_changes(old, new) if old is not None else None
    if old is None:
        return (
            f"{_label(new)} is new and required without a default, so records written before "
            "have no value for it; add it as optional (required: false)"
        )
    if not old.required and new.required:
        hint = "records written before may have no value; keep it optional"
    else:
        hint = "add a new item with a new code instead of changing this one"
    return (
        f"{_label(new)} changed from {_describe(old)} to {_describe(new)} "
        f"(Avro: {'; '.join(sorted(result.messages))}); {hint}"
    )


def check_evolution(old: Resource, new: Resource) -> str | None:
    """None if ``new``'s schema can read all data written with ``old``'s, else why not.

    The payload records are compared (the rest of the envelope is fixed by this module), with
    the new one as reader and the old one as writer. Removing an item is compatible: readers
    skip what they no longer know.
    """
    before = {i.code: i for i in old.items}
    reasons = [r for i in new.items if (r := _item_reason(before.get(i.code), i)) is not None]
    whole = _compatibility(_parse(payload_schema(new)), _parse(payload_schema(old)))
    if whole.compatibility is SchemaCompatibilityType.incompatible and not reasons:
        # Not expected (items are the only thing that varies), but never report "compatible"
        # against the checker's verdict on the whole record.
        reasons.append(f"Avro: {'; '.join(sorted(whole.messages))}")
    if not reasons:
        return None
    return (
        f"resource {new.code} {new.name}: the new schema cannot read records written with the "
        f"old one (backward compatibility): {'; '.join(reasons)}"
    )


def check_spec_evolution(old: CatalogSpec, new: CatalogSpec) -> list[tuple[str, str]]:
    """(resource code, reason) for each resource in both catalogs whose schema breaks."""
    previous = {r.code: r for r in old.resources}
    out = []
    for resource in new.resources:
        before = previous.get(resource.code)
        if before is not None:
            reason = check_evolution(before, resource)
            if reason is not None:
                out.append((resource.code, reason))
    return out


# --- files --------------------------------------------------------------------------------------


def write_schemas(spec: CatalogSpec, directory: str | Path) -> list[Path]:
    """Write ``<schema_name>.avsc`` (the envelope schema) per resource; returns their paths.

    Schema files of this namespace that belong to no resource any more are removed; other
    files in the directory are left alone. Unchanged files are not rewritten.
    """
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for resource in spec.resources:
        path = target / f"{schema_name(resource)}.avsc"
        text = json.dumps(envelope_schema(resource), indent=2, ensure_ascii=False) + "\n"
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    keep = set(written)
    for stale in target.glob(f"{NAMESPACE}.*.avsc"):
        if stale not in keep:
            stale.unlink()
    return written


# --- encoding -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Codec:
    """A resource's envelope schema, worked out once: what encoding and decoding need."""

    resource: Resource
    parsed: Any  # fastavro's parsed envelope schema
    fingerprint: bytes  # CRC-64-AVRO of the Parsing Canonical Form, little-endian (as on the wire)
    payload_name: str  # full name of the payload record (the union branch)
    timestamp_items: tuple[str, ...]  # T items: decoded timestamps are shown in UTC+8


# The one parsed-schema cache (producers/wire.py builds on it). By identity: hashing a Resource
# (a deep frozen dataclass) costs more than encoding a record. An entry keeps its resource
# alive, so an id is never reused while cached.
_CODECS: dict[int, Codec] = {}


def codec(resource: Resource) -> Codec:
    """The resource's parsed envelope schema and fingerprint (cached per Resource object)."""
    hit = _CODECS.get(id(resource))
    if hit is not None and hit.resource is resource:
        return hit
    schema = envelope_schema(resource)
    canonical = fastavro.schema.to_parsing_canonical_form(schema)
    # fastavro gives the fingerprint's bytes already in the spec's little-endian order, as hex.
    fp = bytes.fromhex(fastavro.schema.fingerprint(canonical, "CRC-64-AVRO"))
    timestamps = tuple(i.code for i in resource.items if i.data_type == "T")
    found = Codec(resource, fastavro.parse_schema(schema), fp, schema_name(resource), timestamps)
    if len(_CODECS) >= 1024:
        _CODECS.clear()
    _CODECS[id(resource)] = found
    return found


def _parsed(resource: Resource) -> Any:
    return codec(resource).parsed


def _kind(value: object) -> str:
    return type(value).__name__


def timestamp(value: object, what: str) -> dt.datetime:
    """An aware datetime of a datetime or ISO text (naive: UTC+8); EncodeError names ``what``."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise EncodeError(f"{what} expects an ISO 8601 date-time text") from None
    if not isinstance(value, dt.datetime):
        raise EncodeError(f"{what} expects a datetime or ISO 8601 text, got a {_kind(value)}")
    return value if value.tzinfo is not None else value.replace(tzinfo=CHINA_TZ)


def _money(value: object, what: str) -> decimal.Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | decimal.Decimal):
        raise EncodeError(f"{what} expects a Decimal, int or numeric text, got a {_kind(value)}")
    try:
        # str() of a float is its shortest exact-looking form, e.g. 12.3 not 12.2999...
        amount = decimal.Decimal(str(value) if isinstance(value, float) else value)
    except decimal.InvalidOperation:
        raise EncodeError(f"{what} expects a decimal amount, got non-numeric text") from None
    if not amount.is_finite():
        raise EncodeError(f"{what} expects a finite amount")
    cents = amount.quantize(_CENT)
    if cents != amount:
        raise EncodeError(f"{what} allows at most {MONEY_SCALE} decimal places")
    if len(cents.as_tuple().digits) > MONEY_PRECISION:
        raise EncodeError(f"{what} allows at most {MONEY_PRECISION} digits")
    return cents


def _item_value(item: InfoItem, value: object, what: str) -> object:
    t = item.data_type
    if t in ("C", "M"):
        if not isinstance(value, str):
            raise EncodeError(f"{what} expects text (str), got a {_kind(value)}")
        return value
    if t in ("N", "B", "F"):
        if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
            raise EncodeError(f"{what} expects a number, got a {_kind(value)}")
        number = float(value)
        if not math.isfinite(number):
            raise EncodeError(f"{what} expects a finite number")
        return number
    if t == "Y":
        return _money(value, what)
    if t == "I":
        if isinstance(value, bool) or not isinstance(value, int):
            raise EncodeError(f"{what} expects a whole number (int), got a {_kind(value)}")
        if not -(2**63) <= value < 2**63:
            raise EncodeError(f"{what} is outside the 64-bit integer range")
        return value
    if t == "D":
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                raise EncodeError(f"{what} expects an ISO date text YYYY-MM-DD") from None
        # A datetime is a date too; refuse it rather than silently drop its time.
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            raise EncodeError(f"{what} expects a date, got a {_kind(value)}")
        return value
    if t == "T":
        return timestamp(value, what)
    if t == "L":
        if not isinstance(value, bool):
            raise EncodeError(f"{what} expects true or false (bool), got a {_kind(value)}")
        return value
    if isinstance(value, bytes | bytearray | memoryview):  # G
        return bytes(value)
    raise EncodeError(f"{what} expects bytes, got a {_kind(value)}")


def _unchecked_money(value: Any) -> decimal.Decimal:
    return decimal.Decimal(str(value) if isinstance(value, float) else value).quantize(_CENT)


def _unchecked_double(value: Any) -> float:
    try:
        return float(value)
    except OverflowError:  # an int too large for a double passes "finite number" checks
        raise EncodeError("a number is too large for a double") from None


def _unchecked_date(value: Any) -> Any:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def _unchecked_timestamp(value: Any) -> Any:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=CHINA_TZ)


def _unchecked_bytes(value: Any) -> bytes:
    return value if type(value) is bytes else bytes(value)


_CONVERTERS: dict[str, Callable[[Any], Any] | None] = {
    "C": None,
    "M": None,
    "N": _unchecked_double,
    "B": _unchecked_double,
    "F": _unchecked_double,
    "Y": _unchecked_money,
    "I": None,
    "D": _unchecked_date,
    "T": _unchecked_timestamp,
    "L": None,
    "G": _unchecked_bytes,
}


def converter(data_type: str) -> Callable[[Any], Any] | None:
    """How a value already known to fit ``data_type`` becomes what fastavro writes (None: as
    is); the same result as ``to_avro_envelope`` for such values, without checking them again.
    For values validated elsewhere (producers/validate.py): anything else is undefined."""
    return _CONVERTERS[data_type]


def _to_avro_payload(resource: Resource, payload: Mapping[str, Any]) -> dict[str, Any]:
    where = f"resource {resource.code} {resource.name}"
    known = {i.code for i in resource.items}
    unknown = sorted(set(payload) - known)
    if unknown:
        raise EncodeError(
            f"{where}: payload has unknown item(s) {', '.join(map(str, unknown))}; "
            f"the catalog lists {', '.join(sorted(known))}"
        )
    out: dict[str, Any] = {}
    for item in resource.items:
        what = (
            f"{where}: {_label(item)} of data type {item.data_type} "
            f"{DATA_TYPE_NAMES[item.data_type]}"
        )
        value = payload.get(item.code)
        if value is None:
            if item.required:
                raise EncodeError(f"{what} is required but missing or null")
            out[item.code] = None
        else:
            out[item.code] = _item_value(item, value, what)
    return out


def to_avro_envelope(resource: Resource, envelope: Mapping[str, Any]) -> dict[str, Any]:
    """Check an envelope dict and convert its values to what fastavro writes exactly.

    Payload values may be given as Python values (``date``, ``datetime``, ``Decimal``) or as
    ISO text for dates, date-times and amounts.
    """
    where = f"resource {resource.code} {resource.name}: envelope"
    missing = [f for f in _ENVELOPE_FIELDS if f not in envelope and f != "payload"]
    unknown = sorted(set(envelope) - set(_ENVELOPE_FIELDS))
    if missing or unknown:
        raise EncodeError(
            f"{where} is missing {missing} / has unknown {unknown}; "
            f"fields are {', '.join(_ENVELOPE_FIELDS)}"
        )
    for name in ("provider", "resource_code", "trace_id"):
        if not isinstance(envelope[name], str):
            raise EncodeError(f"{where} field {name} expects text, got a {_kind(envelope[name])}")
    if envelope["resource_code"] != resource.code:
        raise EncodeError(
            f"{where} field resource_code is {envelope['resource_code']!r}, "
            f"expected {resource.code!r} for this schema"
        )
    version = envelope["catalog_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise EncodeError(f"{where} field catalog_version expects an int, got a {_kind(version)}")
    if envelope["op"] not in OPS:
        raise EncodeError(f"{where} field op must be one of {', '.join(OPS)}")
    payload = envelope.get("payload")
    if payload is None and envelope["op"] == "UPSERT":
        raise EncodeError(f"{where}: an UPSERT needs a payload")
    if payload is not None and not isinstance(payload, Mapping):
        raise EncodeError(f"{where} field payload expects a mapping, got a {_kind(payload)}")
    return {
        "provider": envelope["provider"],
        "resource_code": envelope["resource_code"],
        "catalog_version": version,
        "op": envelope["op"],
        "event_time": timestamp(envelope["event_time"], f"{where} field event_time"),
        "trace_id": envelope["trace_id"],
        "payload": None if payload is None else _to_avro_payload(resource, payload),
    }


def encode(resource: Resource, envelope: Mapping[str, Any]) -> bytes:
    """Avro binary (schemaless: no header, the schema is the catalog's) of one envelope."""
    out = io.BytesIO()
    fastavro.schemaless_writer(out, _parsed(resource), to_avro_envelope(resource, envelope))
    return out.getvalue()


def decode(
    resource: Resource, data: bytes, *, written_with: Resource | None = None
) -> dict[str, Any]:
    """An envelope dict from ``encode``'s bytes, read with ``resource``'s (current) schema.

    ``written_with`` is the resource as the producer had it, when that may be an older catalog
    version; Avro schema resolution then maps the old record onto the current schema.
    """
    writer = _parsed(written_with if written_with is not None else resource)
    record = fastavro.schemaless_reader(io.BytesIO(data), writer, _parsed(resource))
    if not isinstance(record, dict):
        raise ValueError(f"resource {resource.code}: decoded data is not an envelope record")
    return in_china_time(record, codec(resource).timestamp_items)


def in_china_time(record: dict[str, Any], timestamp_items: tuple[str, ...]) -> dict[str, Any]:
    """A decoded envelope with its timestamps (event time, T items) shown in UTC+8."""
    record["event_time"] = record["event_time"].astimezone(CHINA_TZ)
    payload = record["payload"]
    if payload is not None:
        for code in timestamp_items:
            value = payload.get(code)
            if value is not None:
                payload[code] = value.astimezone(CHINA_TZ)
    return record
