"""Avro bodies of envelopes read straight into rows, compiled once per resource: the download's
hot path.

A download decodes every record of a resource's topic (1,000,000 and more). fastavro reads a
10-item envelope in ~24 µs here, interpreting the parsed schema per datum (union branches,
logical types, a dict per record), and ``wire.read_single_object`` then turns its timestamps to
China time: ~37 µs a row in all, two thirds of a download's time. As ``avro_body`` does for
writing, this module turns a resource's envelope schema once into the source of one Python
function that reads the fields in order and returns only the row a file needs (``[*items,
provider, catalog_version, event_time]``), skipping the fields it does not return.

It reads records written with the reader's own schema (the fingerprints are equal); a record of
an older schema needs Avro schema resolution and is left to fastavro
(``decode_pool._Decoder``). The values are fastavro's, converted as ``wire`` does: timestamps
as aware datetimes in China time, dates, ``Decimal`` money at the catalog's scale, bytes
(tests/unit/test_avro_body.py holds the rows equal to fastavro's for every data type).
"""

from __future__ import annotations

import datetime as dt
import decimal
import struct
from collections.abc import Callable, Sequence
from typing import Any, cast

from govbus.vocabulary import schemas
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.spec import Resource

__all__ = ["RowReader", "row_reader"]

# read(data, position): the row, or None for a DELETE (no payload).
RowReader = Callable[[bytes, int], list[Any] | None]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC).astimezone(CHINA_TZ)
_EPOCH_DAYS = dt.date(1970, 1, 1).toordinal()
_MONEY = decimal.Context(prec=schemas.MONEY_PRECISION)


def _long(d: bytes, p: int) -> tuple[int, int]:
    """An Avro long (zig-zag varint) at ``p`` and the position after it."""
    n = shift = 0
    while True:
        b = d[p]
        p += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return (n >> 1) ^ -(n & 1), p
        shift += 7
        if shift > 63:
            raise ValueError(f"an Avro long longer than 10 bytes at byte {p}")


def _money(unscaled: bytes) -> decimal.Decimal:
    """fastavro's decimal: the big-endian two's complement, at the money scale."""
    value = int.from_bytes(unscaled, "big", signed=True)
    return _MONEY.create_decimal(value).scaleb(-schemas.MONEY_SCALE, _MONEY)


# Source lines of the compiled reader. ``n`` is read at ``p``: one byte for most lengths and
# small longs, ``LONG`` for the rest.
_N = "b = d[p]\nif b < 128: n = (b >> 1) ^ -(b & 1); p += 1\nelse: n, p = LONG(d, p)"
_READ: dict[str, str] = {
    "C": f"{_N}\nv = d[p:p + n].decode(); p += n",
    "M": f"{_N}\nv = d[p:p + n].decode(); p += n",
    "N": "v = DOUBLE(d, p)[0]; p += 8",
    "B": "v = DOUBLE(d, p)[0]; p += 8",
    "F": "v = DOUBLE(d, p)[0]; p += 8",
    "Y": f"{_N}\nv = MONEY(d[p:p + n]); p += n",
    "I": f"{_N}\nv = n",
    "D": f"{_N}\nv = DATE(n + EPOCH_DAYS)",
    "T": f"{_N}\nv = EPOCH + MILLIS(milliseconds=n)",
    "L": "v = d[p] != 0; p += 1",
    "G": f"{_N}\nv = d[p:p + n]; p += n",
}
_SKIP: dict[str, str] = {
    **dict.fromkeys("CMYG", f"{_N}\np += n"),
    **dict.fromkeys("NBF", "p += 8"),
    **dict.fromkeys("IDT", _N),
    "L": "p += 1",
}
_NAMESPACE: dict[str, Any] = {
    "LONG": _long, "DOUBLE": struct.Struct("<d").unpack_from, "MONEY": _money,
    "DATE": dt.date.fromordinal, "EPOCH_DAYS": _EPOCH_DAYS, "EPOCH": _EPOCH,
    "MILLIS": dt.timedelta,
}  # fmt: skip


def _indent(source: str, depth: int) -> list[str]:
    return [" " * depth + line for line in source.split("\n")]


def _compile(
    name: str, fields: Sequence[tuple[str, bool, str]], wanted: dict[str, int]
) -> RowReader:
    """``fields``: (item code, optional, data type) in schema order; ``wanted``: item code ->
    its place in the row. Item codes enter the source only as comments via ``repr``."""
    lines = ["def read(d, p):"]
    body = [
        f"{_N}\nprovider = d[p:p + n].decode(); p += n",  # provider
        f"{_N}\np += n",  # resource_code
        f"{_N}\nversion = n",  # catalog_version
        f"{_N}\nif n != 0: return None",  # op: 0 is UPSERT (schemas.OPS)
        f"{_N}\nevent_time = EPOCH + MILLIS(milliseconds=n)",
        f"{_N}\np += n",  # trace_id
        f"{_N}\nif n == 0: return None",  # payload: the null branch
    ]
    for source in body:
        lines += _indent(source, 4)
    for code, optional, data_type in fields:
        place = wanted.get(code)
        read = _SKIP[data_type] if place is None else f"{_READ[data_type]}\nv{place} = v"
        lines.append(f"    # {code!r}")
        if optional:
            absent = "pass" if place is None else f"v{place} = None"
            lines += _indent(f"{_N}\nif n == 0: {absent}\nelse:", 4)
            lines += _indent(read, 8)
        else:
            lines += _indent(read, 4)
    lines.append("    if p != len(d): raise ValueError(f'{len(d) - p} byte(s) after the record')")
    row = ", ".join(f"v{i}" for i in range(len(wanted)))
    lines.append(f"    return [{row}{', ' if row else ''}provider, version, event_time]")
    namespace = dict(_NAMESPACE)
    exec(compile("\n".join(lines), f"<avro row reader of {name}>", "exec"), namespace)
    return cast(RowReader, namespace["read"])


def row_reader(resource: Resource, items: Sequence[str]) -> RowReader:
    """The reader of ``resource``'s envelopes (bodies written with its own schema) returning
    ``[*items, provider, catalog_version, event_time]``; ``items``: codes of the resource's
    items, in the row's order. Raises ValueError for a body that is cut short or too long."""
    codes = {i.code for i in resource.items}
    unknown = [c for c in items if c not in codes]
    if unknown:
        raise ValueError(f"resource {resource.code} has no item {', '.join(unknown)}")
    if len(set(items)) != len(items):
        raise ValueError(f"resource {resource.code}: an item asked twice in {list(items)}")
    read = _compile(
        resource.code,
        [(i.code, not i.required, i.data_type) for i in resource.items],
        {code: place for place, code in enumerate(items)},
    )

    def checked(data: bytes, position: int) -> list[Any] | None:
        try:
            return read(data, position)
        except (IndexError, struct.error):
            raise ValueError(f"resource {resource.code}: the record is cut short") from None

    return checked
