"""Checks of one record against its resource's catalog entry, before it goes on the bus (pure).

Every rule that fails is reported (not just the first), each as a ``RecordError`` whose message
names the record position, the item (code and Chinese name) and the rule, e.g.::

    record 3, item citizen_id (公民身份号码): rule citizen-id — 公民身份号码 '320402********123X'
    check digit is '5', expected 'X' (GB 11643-1999)

Values are never quoted in messages (they may be personal data); identifier validators show
a 公民身份号码 masked.

Rules
    unknown-item   a field that is not an info item of the resource
    key-item       a key item (one-data-one-source key) missing or empty, or containing ``|``
    required-item  a required item missing or empty (null, or text of only spaces)
    data-type      the value does not fit the item's data type (see ``_TYPE_CHECKS``)
    length         text longer than the item's length, counted in characters
    citizen-id     a 公民身份号码 fails GB 11643-1999
    uscc           a 统一社会信用代码 fails GB 32100-2015

Which items are identifiers: the single key item of a natural-person (legal-entity) resource,
and any item coded ``citizen_id`` (``uscc``) or named 公民身份号码 (统一社会信用代码).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from govbus.vocabulary.identifiers import IdentifierError, validate_citizen_id, validate_uscc
from govbus.vocabulary.schemas import MONEY_PRECISION, MONEY_SCALE, converter
from govbus.vocabulary.spec import DATA_TYPE_NAMES, InfoItem, Resource

__all__ = [
    "KEY_SEPARATOR",
    "META_FIELDS",
    "RULES",
    "RecordError",
    "avro_payload",
    "identifier_kind",
    "record_key",
    "to_payload",
    "validate_key",
    "validate_record",
]

RULES = (
    "unknown-item",
    "key-item",
    "required-item",
    "data-type",
    "length",
    "citizen-id",
    "uscc",
)
# Fields a record may carry besides its items; they steer publishing and are not payload.
# ``_origin`` says where the record came from (a front-end agent's table and primary key); a
# dead letter carries it, so the department can find the row to fix.
META_FIELDS = frozenset({"_event_time", "_origin"})
KEY_SEPARATOR = "|"


@dataclass(frozen=True)
class RecordError:
    """One broken rule of one record; ``position`` counts records from 1."""

    position: int
    item: str | None  # item code (or the unknown field's name)
    rule: str
    message: str

    def __str__(self) -> str:
        return self.message


# --- data types ---------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
        return False
    return math.isfinite(value) if isinstance(value, float) else True


def _money_problem(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | decimal.Decimal):
        return f"expects an amount (number or numeric text), got a {type(value).__name__}"
    try:
        amount = decimal.Decimal(str(value) if isinstance(value, float) else value)
    except decimal.InvalidOperation:
        return "expects an amount, got text that is not a number"
    if not amount.is_finite():
        return "expects a finite amount"
    if amount != amount.quantize(decimal.Decimal(1).scaleb(-MONEY_SCALE)):
        return f"allows at most {MONEY_SCALE} decimal places"
    if len(amount.quantize(decimal.Decimal(1).scaleb(-MONEY_SCALE)).as_tuple().digits) > (
        MONEY_PRECISION
    ):
        return f"allows at most {MONEY_PRECISION} digits"
    return None


def _iso(parse: Callable[[str], object], value: str) -> bool:
    try:
        parse(value)
    except ValueError:
        return False
    return True


def _base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _type_problem(data_type: str, value: object) -> str | None:
    """Why ``value`` does not fit the data type, or None."""
    kind = type(value).__name__
    if data_type in ("C", "M"):
        return None if isinstance(value, str) else f"expects text, got a {kind}"
    if data_type in ("N", "B", "F"):
        return None if _is_number(value) else f"expects a finite number, got a {kind}"
    if data_type == "Y":
        return _money_problem(value)
    if data_type == "I":
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expects a whole number, got a {kind}"
        return None if -(2**63) <= value < 2**63 else "is outside the 64-bit integer range"
    if data_type == "D":
        if isinstance(value, str):
            return None if _iso(dt.date.fromisoformat, value) else "expects an ISO date YYYY-MM-DD"
        # A datetime is a date subclass; refuse it rather than silently drop its time.
        ok = isinstance(value, dt.date) and not isinstance(value, dt.datetime)
        return None if ok else f"expects a date, got a {kind}"
    if data_type == "T":
        if isinstance(value, str):
            ok = _iso(dt.datetime.fromisoformat, value)
            return None if ok else "expects an ISO 8601 date-time"
        return None if isinstance(value, dt.datetime) else f"expects a date-time, got a {kind}"
    if data_type == "L":
        return None if isinstance(value, bool) else f"expects true or false, got a {kind}"
    if data_type == "G":
        if isinstance(value, bytes | bytearray | memoryview):
            return None
        if isinstance(value, str):
            return None if _base64(value) else "expects bytes or base64 text, got invalid base64"
        return f"expects bytes or base64 text, got a {kind}"
    raise ValueError(f"unknown data type {data_type!r}")  # the catalog spec prevents this


# --- identifiers --------------------------------------------------------------------------------


def identifier_kind(resource: Resource, item: InfoItem) -> str | None:
    """'citizen-id', 'uscc' or None: which identifier rule applies to the item."""
    only_key = len(resource.key.items) == 1 and resource.key.items[0] == item.code
    if (only_key and resource.key.subject_type == "natural-person") or (
        item.code == "citizen_id" or item.name == "公民身份号码"
    ):
        return "citizen-id"
    if (only_key and resource.key.subject_type == "legal-entity") or (
        item.code == "uscc" or item.name == "统一社会信用代码"
    ):
        return "uscc"
    return None


def _identifier_problem(kind: str, value: str) -> str | None:
    try:
        if kind == "citizen-id":
            validate_citizen_id(value)  # its messages show the number masked
        else:
            validate_uscc(value)
    except IdentifierError as exc:
        return str(exc)
    return None


# --- records ------------------------------------------------------------------------------------

# (rule, problem) of one present value, or None.
_Check = Callable[[object], "tuple[str, str] | None"]


def _value_check(item: InfoItem, kind: str | None) -> _Check:
    """Data type, length and identifier rules of one item, compiled once per resource."""
    data_type = item.data_type
    prefix = f"data type {data_type} {DATA_TYPE_NAMES[data_type]} "
    limit = item.length if data_type in ("C", "M") else None
    if data_type in ("C", "M"):
        # Text, the commonest case: no generic type dispatch per value.
        def text(value: object) -> tuple[str, str] | None:
            if not isinstance(value, str):
                return "data-type", f"{prefix}expects text, got a {type(value).__name__}"
            if limit is not None and len(value) > limit:
                return "length", f"has {len(value)} characters, at most {limit} allowed"
            if kind is not None and value:
                problem = _identifier_problem(kind, value)
                if problem is not None:
                    return kind, problem
            return None

        return text

    def other(value: object) -> tuple[str, str] | None:
        problem = _type_problem(data_type, value)
        if problem is not None:
            return "data-type", prefix + problem
        if kind is not None and isinstance(value, str) and value:
            problem = _identifier_problem(kind, value)
            if problem is not None:
                return kind, problem
        return None

    return other


def _avro_value(item: InfoItem, kind: str | None) -> Callable[[Any], Any] | None:
    """How a valid value becomes its Avro payload value (None: as is); see ``to_payload``."""
    convert = converter(item.data_type)
    if item.data_type == "G":
        return lambda v: base64.b64decode(v, validate=True) if isinstance(v, str) else bytes(v)
    if kind == "citizen-id" and convert is None:
        return lambda v: v.upper() if isinstance(v, str) else v
    return convert


@dataclass(frozen=True)
class _ItemPlan:
    item: InfoItem
    code: str
    is_key: bool
    required: bool
    kind: str | None  # identifier rule
    check: _Check
    to_avro: Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Plan:
    """What a resource's rules need per item, worked out once per resource, not per record."""

    items: tuple[_ItemPlan, ...]
    known: frozenset[str]  # item codes and META_FIELDS: the fields a record may have
    key: tuple[_ItemPlan, ...]  # in key order
    passes: Callable[[Mapping[str, Any]], bool]  # True: breaks no rule (``_compile_passes``)
    payload: Callable[[Mapping[str, Any]], dict[str, Any]]  # ``avro_payload``, compiled


# --- compiled per resource ------------------------------------------------------------------
#
# A publish validates and converts every record item by item; a loop over the items, with a
# checker function per item, costs more than the checks. So each resource's rules are also
# turned once into the source of two Python functions (run with ``exec``; item codes enter the
# source only as ``repr`` string literals):
#
# - ``passes(record)``: True when the record breaks no rule, by the same rules, in straight-line
#   code (text items inline, other types through their ``_ItemPlan.check``). It is a fast path
#   only: on False, ``validate_record`` runs the item-by-item rules, which alone write the error
#   messages, so a dead letter says exactly what it said before. It may answer False for a
#   record that passes (then the slow path finds no error); never True for one that does not.
# - ``payload(record)``: ``avro_payload`` as one dict display.


def _identifier_passes(kind: str) -> Callable[[str], bool]:
    def passes(value: str) -> bool:
        return _identifier_problem(kind, value) is None

    return passes


def _compile_passes(items: tuple[_ItemPlan, ...], known: frozenset[str]) -> Any:
    namespace: dict[str, Any] = {"KNOWN": known, "SEP": KEY_SEPARATOR, "str": str}
    lines = ["def passes(record):", "    if not KNOWN.issuperset(record):", "        return False",
             "    get = record.get"]  # fmt: skip
    for n, plan in enumerate(items):
        lines.append(f"    v = get({plan.code!r})")
        if plan.is_key:  # check_key_item: present, not blank, no separator
            lines += ["    if v is None or (type(v) is str and (not v.strip() or SEP in v)):",
                      "        return False"]  # fmt: skip
            body = "    "
        else:
            lines += ["    if v is None:", f"        {'return False' if plan.required else 'pass'}",
                      "    else:"]  # fmt: skip
            body = "        "
            if plan.required:
                lines += [f"{body}if type(v) is str and not v.strip():",
                          f"{body}    return False"]  # fmt: skip
        if plan.item.data_type in ("C", "M"):
            limit = plan.item.length
            test = "type(v) is not str" + (f" or len(v) > {limit}" if limit is not None else "")
            lines += [f"{body}if {test}:", f"{body}    return False"]
            if plan.kind is not None:
                namespace[f"ID{n}"] = _identifier_passes(plan.kind)
                lines += [f"{body}if v and not ID{n}(v):", f"{body}    return False"]
        else:
            namespace[f"CHECK{n}"] = plan.check
            lines += [f"{body}if CHECK{n}(v) is not None:", f"{body}    return False"]
    lines.append("    return True")
    exec(compile("\n".join(lines), "<record rules>", "exec"), namespace)
    return namespace["passes"]


def _compile_payload(items: tuple[_ItemPlan, ...]) -> Any:
    namespace: dict[str, Any] = {}
    lines = ["def payload(record):", "    get = record.get"]
    entries = []
    for n, plan in enumerate(items):
        if plan.to_avro is None:
            entries.append(f"{plan.code!r}: get({plan.code!r})")
            continue
        namespace[f"TO{n}"] = plan.to_avro
        lines.append(f"    v{n} = get({plan.code!r})")
        entries.append(f"{plan.code!r}: None if v{n} is None else TO{n}(v{n})")
    lines.append("    return {" + ", ".join(entries) + "}")
    exec(compile("\n".join(lines), "<record payload>", "exec"), namespace)
    return namespace["payload"]


# By identity: hashing a Resource (a deep frozen dataclass) costs more than validating a record.
# The entry keeps its resource alive, so an id is never reused while cached.
_PLANS: dict[int, tuple[Resource, _Plan]] = {}


def _plan(resource: Resource) -> _Plan:
    hit = _PLANS.get(id(resource))
    if hit is not None and hit[0] is resource:
        return hit[1]
    items = []
    for item in resource.items:
        kind = identifier_kind(resource, item)
        items.append(
            _ItemPlan(
                item,
                item.code,
                item.code in resource.key.items,
                item.required,
                kind,
                _value_check(item, kind),
                _avro_value(item, kind),
            )
        )
    by_code = {p.code: p for p in items}
    known = frozenset(by_code) | META_FIELDS
    plan = _Plan(
        tuple(items),
        known,
        tuple(by_code[c] for c in resource.key.items),
        _compile_passes(tuple(items), known),
        _compile_payload(tuple(items)),
    )
    if len(_PLANS) >= 256:
        _PLANS.clear()
    _PLANS[id(resource)] = (resource, plan)
    return plan


def _is_empty(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class _Collector:
    def __init__(self, position: int) -> None:
        self.position = position
        self.errors: list[RecordError] = []

    def add(self, item: InfoItem | str, rule: str, problem: str) -> None:
        if isinstance(item, InfoItem):
            code, label = item.code, f"item {item.code} ({item.name})"
        else:
            code, label = item, f"field {item}"
        message = f"record {self.position}, {label}: rule {rule} — {problem}"
        self.errors.append(RecordError(self.position, code, rule, message))

    def check_value(self, plan: _ItemPlan, value: object) -> None:
        """Data type, length and identifier rules of one present value."""
        broken = plan.check(value)
        if broken is not None:
            self.add(plan.item, *broken)

    def check_key_item(self, item: InfoItem, value: object) -> bool:
        """False (and an error) if the key item is unusable in a key."""
        if _is_empty(value):
            self.add(item, "key-item", "is part of the record key and must have a value")
            return False
        if isinstance(value, str) and KEY_SEPARATOR in value:
            self.add(item, "key-item", f"is part of the record key and must not contain "
                     f"{KEY_SEPARATOR!r}")  # fmt: skip
            return False
        return True


def validate_record(
    resource: Resource, record: Mapping[str, Any], position: int
) -> list[RecordError]:
    """Every rule ``record`` breaks as a record of ``resource``; empty if it may be published."""
    plan = _plan(resource)
    if plan.passes(record):  # the compiled fast path; ``broken_rules`` writes the messages
        return []
    return broken_rules(resource, record, position)


def broken_rules(resource: Resource, record: Mapping[str, Any], position: int) -> list[RecordError]:
    """``validate_record`` item by item, without the compiled fast path (the rules' reference:
    tests hold the fast path to it)."""
    plan = _plan(resource)
    out = _Collector(position)
    if not plan.known.issuperset(record):
        for name in record:
            if name not in plan.known:
                out.add(str(name), "unknown-item", f"is not an info item of resource "
                        f"{resource.code} {resource.name}")  # fmt: skip
    get = record.get
    for item_plan in plan.items:
        value = get(item_plan.code)
        if item_plan.is_key:
            if not out.check_key_item(item_plan.item, value):
                continue
        elif value is None:
            if item_plan.required:
                out.add(item_plan.item, "required-item", "is required but missing or empty")
            continue
        elif item_plan.required and isinstance(value, str) and not value.strip():
            out.add(item_plan.item, "required-item", "is required but missing or empty")
        broken = item_plan.check(value)
        if broken is not None:
            out.add(item_plan.item, *broken)
    return out.errors


def validate_key(resource: Resource, key: Mapping[str, Any], position: int) -> list[RecordError]:
    """Rules of a delete request: exactly the key items, each valid."""
    out = _Collector(position)
    for name in key:
        if name not in resource.key.items:
            out.add(str(name), "unknown-item", f"is not a key item of resource {resource.code} "
                    f"{resource.name} (key: {', '.join(resource.key.items)})")  # fmt: skip
    for item_plan in _plan(resource).key:
        value = key.get(item_plan.code)
        if out.check_key_item(item_plan.item, value):
            out.check_value(item_plan, value)
    return out.errors


def _key_part(plan: _ItemPlan, value: object) -> str:
    if isinstance(value, str):
        # GB 11643 allows a lower-case 'x'; one person must have one key.
        return value.upper() if plan.kind == "citizen-id" else value
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def record_key(resource: Resource, record: Mapping[str, Any]) -> bytes:
    """The Kafka message key: the record's one-data-one-source key.

    The values of the resource's key items, in the catalog's key order, joined with ``|`` and
    encoded as UTF-8; a 公民身份号码 with its check digit upper-cased, dates as ISO text, other
    non-text values as ``str``. A single-item key is therefore just that value (e.g. the
    citizen id). Validation refuses key values containing ``|``, so different keys never
    produce the same bytes. Raises KeyError naming the item when a key item has no value.
    """
    parts = []
    for item_plan in _plan(resource).key:
        value = record.get(item_plan.code)
        if _is_empty(value):
            raise KeyError(f"resource {resource.code}: key item {item_plan.code} has no value")
        parts.append(_key_part(item_plan, value))
    return KEY_SEPARATOR.join(parts).encode("utf-8")


def to_payload(resource: Resource, record: Mapping[str, Any]) -> dict[str, Any]:
    """The Avro payload of a valid record: items only, base64 text of G items as bytes,
    公民身份号码 upper-cased (the same canonical form as in the key)."""
    payload: dict[str, Any] = {}
    for item_plan in _plan(resource).items:
        value = record.get(item_plan.code)
        if value is None:
            continue
        if isinstance(value, str):
            if item_plan.item.data_type == "G":
                value = base64.b64decode(value, validate=True)
            elif item_plan.kind == "citizen-id":
                value = value.upper()
        payload[item_plan.code] = value
    return payload


def avro_payload(resource: Resource, record: Mapping[str, Any]) -> dict[str, Any]:
    """``to_payload`` in the exact values fastavro writes (``wire.encode_upsert``), every item
    present (None when absent). Only for a record ``validate_record`` accepted: its values are
    not checked again."""
    return _plan(resource).payload(record)
