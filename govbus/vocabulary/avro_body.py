"""Avro binary of validated UPSERT envelopes, compiled once per resource: the publish hot path.

fastavro interprets the parsed schema for every datum (union branch matching, logical-type
dispatch, type checks): about 25 µs for a 1 KB record, more than validating it. The catalog's
schemas use a closed set of types (govbus/catalog/schemas.py), and ``validate_record`` has
already checked every value, so this module turns each resource's schema into a list of small
writers once and then only writes bytes.

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
from dataclasses import dataclass
from typing import Any

from govbus.vocabulary import schemas
from govbus.vocabulary.spec import Resource

__all__ = ["BodyWriter", "body_writer"]

_Write = Callable[[list[bytes], Any], None]

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


def _string(out: list[bytes], value: str) -> None:
    data = value.encode()
    out.append(long_bytes(len(data)))
    out.append(data)


def _bytes(out: list[bytes], value: bytes) -> None:
    out.append(long_bytes(len(value)))
    out.append(value)


def _double(out: list[bytes], value: float) -> None:
    out.append(_DOUBLE.pack(value))


def _long(out: list[bytes], value: int) -> None:
    out.append(long_bytes(value))


def _boolean(out: list[bytes], value: bool) -> None:
    out.append(b"\x01" if value else b"\x00")


def _date(out: list[bytes], value: dt.date) -> None:
    out.append(long_bytes(value.toordinal() - _EPOCH_DAYS))


def millis(value: dt.datetime) -> int:
    """timestamp-millis of an aware datetime, truncated as fastavro does."""
    delta = value - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1000 + int(delta.microseconds / 1000)


def _timestamp(out: list[bytes], value: dt.datetime) -> None:
    out.append(long_bytes(millis(value)))


def _money(out: list[bytes], value: decimal.Decimal) -> None:
    # fastavro's decimal bytes: the unscaled value, big-endian two's complement, one byte more
    # than the magnitude's bits need (so the length matches fastavro for negative amounts too).
    unscaled = int(value.scaleb(schemas.MONEY_SCALE))
    size = (abs(unscaled).bit_length() + 8) // 8
    _bytes(out, unscaled.to_bytes(size, "big", signed=True))


_WRITERS: dict[str, _Write] = {
    "C": _string,
    "M": _string,
    "N": _double,
    "B": _double,
    "F": _double,
    "Y": _money,
    "I": _long,
    "D": _date,
    "T": _timestamp,
    "L": _boolean,
    "G": _bytes,
}


@dataclass(frozen=True)
class BodyWriter:
    """Writes one resource's UPSERT envelopes (see ``write``)."""

    resource_code: bytes  # the resource_code field, encoded once
    fields: tuple[tuple[str, bool, _Write], ...]  # (item code, optional, writer) in schema order

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
        _string(out, provider)
        out.append(self.resource_code)
        out.append(long_bytes(catalog_version))
        out.append(_UPSERT)
        out.append(long_bytes(millis(event_time)))
        _string(out, trace_id)
        out.append(_PRESENT)
        for code, optional, write in self.fields:
            value = payload[code]
            if optional:
                if value is None:
                    out.append(_NULL)
                    continue
                out.append(_PRESENT)
            write(out, value)


_BY_RESOURCE: dict[int, tuple[Resource, BodyWriter]] = {}


def body_writer(resource: Resource) -> BodyWriter:
    """The resource's writer (cached per Resource object, as ``schemas.codec``)."""
    hit = _BY_RESOURCE.get(id(resource))
    if hit is not None and hit[0] is resource:
        return hit[1]
    code = resource.code.encode()
    writer = BodyWriter(
        long_bytes(len(code)) + code,
        tuple((i.code, not i.required, _WRITERS[i.data_type]) for i in resource.items),
    )
    if len(_BY_RESOURCE) >= 1024:
        _BY_RESOURCE.clear()
    _BY_RESOURCE[id(resource)] = (resource, writer)
    return writer
