"""Avro binary of validated UPSERT envelopes, compiled once per resource: the publish hot path.

fastavro interprets the parsed schema for every datum (union branch matching, logical-type
dispatch, type checks): about 25 µs for a 1 KB record, more than validating it. The catalog's
schemas use a closed set of types (govbus/catalog/schemas.py), and ``validate_record`` has
already checked every value, so this module turns each resource's schema once into the source
of one Python function that writes its envelope's fields in order (``_compile``, run with
``exec``: no call per field, no dispatch on the data type), and then only writes bytes.

The output is byte for byte what ``fastavro.schemaless_writer`` writes for the same datum (the
Avro specification's binary encoding; tests/unit/test_avro_body.py holds them equal for every
data type). Reading stays with fastavro. Values must be those ``validate.avro_payload`` returns:
str, float, int, bool, bytes, ``date``, aware ``datetime``, ``Decimal`` quantized to the
money scale.
"""

from __future__ import annotations

import datetime as dt
import decimal
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from govbus.vocabulary import schemas
from govbus.vocabulary.spec import Resource

__all__ = ["BodyWriter", "body_writer"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_DAYS = dt.date(1970, 1, 1).toordinal()
_DOUBLE = struct.Struct("<d")
_NULL, _PRESENT = b"\x00", b"\x02"  # union branch 0 (null) and 1, as zig-zag longs
_UPSERT = b"\x00"  # index of UPSERT in the Op enum (schemas.OPS)


def _varint(n: int) -> bytes:
    """Avro long: zig-zag, then 7 bits a byte, least significant first."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = tuple(_varint(n) for n in range(4096))  # lengths of most strings and byte strings


def long_bytes(n: int) -> bytes:
    return _SMALL[n] if 0 <= n < 4096 else _varint(n)


def _bytes(out: list[bytes], value: bytes) -> None:
    out.append(long_bytes(len(value)))
    out.append(value)


def millis(value: dt.datetime) -> int:
    """timestamp-millis of an aware datetime, truncated as fastavro does."""
    delta = value - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1000 + int(delta.microseconds / 1000)


def _money(out: list[bytes], value: decimal.Decimal) -> None:
    # fastavro's decimal bytes: the unscaled value, big-endian two's complement, one byte more
    # than the magnitude's bits need (so the length matches fastavro for negative amounts too).
    unscaled = int(value.scaleb(schemas.MONEY_SCALE))
    size = (abs(unscaled).bit_length() + 8) // 8
    _bytes(out, unscaled.to_bytes(size, "big", signed=True))


# write(out, provider, catalog_version, event_time, trace_id, payload): one resource's writer.
_WriteEnvelope = Callable[[list[bytes], str, int, dt.datetime, str, Mapping[str, Any]], None]

# How each data type's present value is written, as Python source inlined into a resource's
# writer (``_compile``); ``v`` is the value, ``a`` appends to the output. Lengths and small
# longs come from ``_SMALL``; rare types call their function above.
_LENGTH = "a(S[n] if n < 4096 else V(n))"
_INLINE: dict[str, str] = {
    "C": f"d = v.encode(); n = len(d); {_LENGTH}; a(d)",
    "M": f"d = v.encode(); n = len(d); {_LENGTH}; a(d)",
    "N": "a(DOUBLE(v))",
    "B": "a(DOUBLE(v))",
    "F": "a(DOUBLE(v))",
    "Y": "money(out, v)",
    "I": "a(S[v] if 0 <= v < 4096 else V(v))",
    "D": "x = v.toordinal() - EPOCH_DAYS; a(S[x] if 0 <= x < 4096 else V(x))",
    "T": "a(L(millis(v)))",
    "L": "a(TRUE if v else FALSE)",
    "G": f"n = len(v); {_LENGTH}; a(v)",
}
_NAMESPACE: dict[str, Any] = {
    "S": _SMALL, "V": _varint, "L": long_bytes, "DOUBLE": _DOUBLE.pack, "money": _money,
    "millis": millis, "EPOCH_DAYS": _EPOCH_DAYS, "TRUE": b"\x01", "FALSE": b"\x00",
    "NULL": _NULL, "PRESENT": _PRESENT, "UPSERT": _UPSERT,
}  # fmt: skip


def _compile(resource_code: bytes, fields: tuple[tuple[str, bool, str], ...]) -> _WriteEnvelope:
    """One resource's envelope writer as one Python function, generated from its fields: no
    call per field, no dispatch on the data type (about half the time of a loop over small
    writer functions). ``fields``: (item code, optional, data type) in schema order; the item
    codes enter the source only as ``repr`` string literals."""
    lines = [
        "def write(out, provider, catalog_version, event_time, trace_id, payload):",
        "    a = out.append",
        f"    d = provider.encode(); n = len(d); {_LENGTH}; a(d)",
        "    a(RESOURCE_CODE)",
        "    a(L(catalog_version))",
        "    a(UPSERT)",
        "    a(L(millis(event_time)))",
        f"    d = trace_id.encode(); n = len(d); {_LENGTH}; a(d)",
        "    a(PRESENT)",
    ]
    for code, optional, data_type in fields:
        lines.append(f"    v = payload[{code!r}]")
        if optional:
            lines += ["    if v is None:", "        a(NULL)", "    else:", "        a(PRESENT)"]
            lines.append(f"        {_INLINE[data_type]}")
        else:
            lines.append(f"    {_INLINE[data_type]}")
    namespace = {**_NAMESPACE, "RESOURCE_CODE": resource_code}
    exec(compile("\n".join(lines), f"<avro writer of {resource_code!r}>", "exec"), namespace)
    return cast(_WriteEnvelope, namespace["write"])


@dataclass(frozen=True)
class BodyWriter:
    """Writes one resource's UPSERT envelopes (see ``write``)."""

    resource_code: bytes  # the resource_code field, encoded once
    fields: tuple[tuple[str, bool, str], ...]  # (item code, optional, data type), schema order
    _write: _WriteEnvelope = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_write", _compile(self.resource_code, self.fields))

    def write(
        self,
        out: list[bytes],
        provider: str,
        catalog_version: int,
        event_time: dt.datetime,
        trace_id: str,
        payload: Mapping[str, Any],
    ) -> None:
        """Append the envelope's Avro binary to ``out`` (join it for the bytes)."""
        self._write(out, provider, catalog_version, event_time, trace_id, payload)


_BY_RESOURCE: dict[int, tuple[Resource, BodyWriter]] = {}


def body_writer(resource: Resource) -> BodyWriter:
    """The resource's writer (cached per Resource object, as ``schemas.codec``)."""
    hit = _BY_RESOURCE.get(id(resource))
    if hit is not None and hit[0] is resource:
        return hit[1]
    code = resource.code.encode()
    writer = BodyWriter(
        long_bytes(len(code)) + code,
        tuple((i.code, not i.required, i.data_type) for i in resource.items),
    )
    if len(_BY_RESOURCE) >= 1024:
        _BY_RESOURCE.clear()
    _BY_RESOURCE[id(resource)] = (resource, writer)
    return writer
