"""The catalog as plain values: what YAML, spreadsheets, the database and versions exchange.

A ``CatalogSpec`` is the whole catalog (政务信息资源目录) at one moment: departments and their
resources with the core metadata of the national catalog guide (政务信息资源目录编制指南).
It is immutable and has one canonical dict form (``to_dict``/``from_dict``), which is what the
YAML file holds, what a catalog version snapshots and what ``diff`` compares.

``from_dict`` checks structure only (types, enumerations, identifier formats) and reports the
path of what is wrong; the sharing rules that relate several fields live in ``rules``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import MISSING, dataclass, field, fields
from functools import cached_property
from typing import Any, Literal, TypeVar, get_args

from govbus.vocabulary.errors import UserError
from govbus.vocabulary.identifiers import IdentifierError, parse_resource_code, validate_uscc

ShareType = Literal["unconditional", "conditional", "none"]  # 无条件 / 有条件 / 不予共享
Level = Literal["province", "city", "district"]
Classification = Literal["base", "theme", "department"]  # 基础 / 主题 / 部门
# The five base resources of the measures (article 11(2)).
BaseCategory = Literal["population", "legal-entity", "natural-resources", "e-license", "credit"]
ShareMethod = Literal[
    "system-integration",  # 系统对接
    "front-end-agent",  # 前置机共享
    "online-lookup",  # 联机查询
    "batch-download",  # 部门批量下载
]
Purpose = Literal[
    "administrative-basis",  # 行政依据
    "work-reference",  # 工作参考
    "data-verification",  # 数据校核
    "business-collaboration",  # 业务协同
]
UpdateCycle = Literal[
    "realtime", "daily", "weekly", "monthly", "quarterly", "half-yearly", "yearly", "other"
]
# The guide's data types: 字符型C 数值型N 货币型Y 日期型D 日期时间型T 逻辑型L 备注型M 通用型G
# 双精度型B 整型I 浮点型F.
DataType = Literal["C", "N", "Y", "D", "T", "L", "M", "G", "B", "I", "F"]
Sensitivity = Literal["public", "internal", "sensitive"]
# How an item is masked where the catalog lets everyone see it (article 10 projections).
Mask = Literal["none", "citizen-id", "name", "phone", "all"]
# How multi-source verification compares a holder's copy with the authoritative value.
CompareRule = Literal["exact", "text", "numeric", "date"]
SubjectType = Literal["natural-person", "legal-entity", "other"]
ResourceFormat = Literal["database", "spreadsheet", "document", "image", "stream", "api", "other"]

DATA_TYPE_NAMES: dict[str, str] = {
    "C": "字符型",
    "N": "数值型",
    "Y": "货币型",
    "D": "日期型",
    "T": "日期时间型",
    "L": "逻辑型",
    "M": "备注型",
    "G": "通用型",
    "B": "双精度型",
    "I": "整型",
    "F": "浮点型",
}

_DEPT_ID = re.compile(r"[a-z][a-z0-9-]{1,62}")
_ITEM_CODE = re.compile(r"[a-z][a-z0-9_]{0,62}")
_REGION = re.compile(r"\d{6}")


class SpecError(UserError):
    """A catalog document is malformed; ``path`` says where (e.g. ``resources[3].items[0]``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Department:
    """A 政务部门. ``id`` is its short name on the bus (its Kafka principal)."""

    id: str
    code: str  # 统一社会信用代码 (GB 32100)
    name: str
    level: Level
    region: str  # 6-digit administrative division code, e.g. 320400 常州市, 320402 天宁区
    parent: str | None = None  # code of the department it reports to, if any


@dataclass(frozen=True)
class InfoItem:
    """A 信息项 of a resource."""

    name: str  # 信息项名称, e.g. 公民身份号码
    code: str  # code name, e.g. citizen_id; the Avro field name
    data_type: DataType
    length: int | None = None
    required: bool = False
    base_item: bool = False  # a base item of a base resource (must be shared unconditionally)
    sensitivity: Sensitivity = "internal"
    shareable_to_all: bool = False  # article 10: this item of a conditional resource is for all
    mask: Mask = "none"
    compare: CompareRule = "exact"
    tolerance: float | None = None  # for compare == "numeric"


@dataclass(frozen=True)
class ResourceKey:
    """The one-data-one-source key: the items that identify one record, and whose record it is."""

    items: tuple[str, ...]  # item codes
    subject_type: SubjectType
    identifier: str | None = None  # for "other": the declared identifier's name


@dataclass(frozen=True)
class Holder:
    """Another department that keeps a copy of some of a resource's items."""

    department: str  # department code
    items: tuple[str, ...]  # item codes


@dataclass(frozen=True)
class Resource:
    """A 政务信息资源 with the guide's core metadata."""

    code: str  # 政务信息资源代码
    name: str
    provider: str  # department code of the one authoritative provider
    abstract: str
    format: ResourceFormat
    category: tuple[str, ...]  # names along the class-item-subitem path, e.g. (人口, 户籍)
    items: tuple[InfoItem, ...]
    key: ResourceKey
    share_type: ShareType
    update_cycle: UpdateCycle
    publish_date: dt.date
    share_conditions: str = ""
    share_methods: tuple[ShareMethod, ...] = ()
    purposes: tuple[Purpose, ...] = ()  # purposes a consumer may state in a share request
    open_to_public: bool = False
    open_conditions: str = ""
    related: tuple[str, ...] = ()  # related resource codes
    base_category: BaseCategory | None = None  # for base resources
    lead_department: str | None = None  # for theme resources: the lead department's code
    legal_basis: str = ""  # for not-shared resources: the law or regulation cited
    holders: tuple[Holder, ...] = ()

    @property
    def classification(self) -> Classification:
        return parse_resource_code(self.code).classification

    def item(self, code: str) -> InfoItem | None:
        return next((i for i in self.items if i.code == code), None)


T = TypeVar("T")


def _first_by(values: Iterable[T], key: Callable[[T], str]) -> dict[str, T]:
    out: dict[str, T] = {}
    for value in values:
        out.setdefault(key(value), value)
    return out


@dataclass(frozen=True)
class CatalogSpec:
    departments: tuple[Department, ...] = ()
    resources: tuple[Resource, ...] = field(default=())

    # Indexes built on first use: a city's catalog holds thousands of resources, and a lookup
    # or a record read finds its resource and department on every call. The first of equal
    # codes wins, as a scan would find it (the catalog rules refuse duplicates anyway).
    @cached_property
    def _departments_by_code(self) -> dict[str, Department]:
        return _first_by(self.departments, lambda d: d.code)

    @cached_property
    def _departments_by_id(self) -> dict[str, Department]:
        return _first_by(self.departments, lambda d: d.id)

    @cached_property
    def _resources_by_code(self) -> dict[str, Resource]:
        return _first_by(self.resources, lambda r: r.code)

    def department(self, code: str) -> Department | None:
        return self._departments_by_code.get(code)

    def department_by_id(self, dept_id: str) -> Department | None:
        return self._departments_by_id.get(dept_id)

    def resource(self, code: str) -> Resource | None:
        return self._resources_by_code.get(code)

    def for_region(self, region: str) -> CatalogSpec:
        """A district's own catalog: its departments and the resources they provide.

        The city's catalog is the whole spec: its own departments' plus every district's.
        """
        depts = tuple(d for d in self.departments if d.region == region)
        codes = {d.code for d in depts}
        return CatalogSpec(depts, tuple(r for r in self.resources if r.provider in codes))

    def to_dict(self) -> dict[str, Any]:
        return {
            "departments": [_canonical_fields(d) for d in self.departments],
            "resources": [_resource_dict(r) for r in self.resources],
        }

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> CatalogSpec:
        _only_keys(data, "", {"departments", "resources"})
        departments = tuple(
            _department(d, f"departments[{i}]")
            for i, d in enumerate(_list(data.get("departments", []), "departments"))
        )
        resources = tuple(
            _resource(r, f"resources[{i}]")
            for i, r in enumerate(_list(data.get("resources", []), "resources"))
        )
        return CatalogSpec(departments, resources)


# --- canonical dict form: defaults are left out so files and diffs stay short ----------------


# A resource's parts that are not plain values: each form spells them its own way.
_NESTED_FIELDS = frozenset({"items", "key", "holders"})


def plain_fields(value: Department | Resource) -> dict[str, Any]:
    """The fields of a department or resource that hold plain values, by name, in declaration
    order: all of a department's, a resource's but its items, key and holders."""
    return {f.name: getattr(value, f.name) for f in fields(value) if f.name not in _NESTED_FIELDS}


def _canonical_fields(value: Department | Resource) -> dict[str, Any]:
    """``plain_fields`` in the canonical dict form: the required ones always, the optional ones
    when set; tuples as lists, dates as ISO strings."""
    optional = {f.name for f in fields(value) if f.default is not MISSING}
    return {
        name: _canonical_value(v)
        for name, v in plain_fields(value).items()
        if v or name not in optional
    }


def _canonical_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


_ITEM_DEFAULTS = InfoItem(name="", code="", data_type="C")
# The optional item fields with their defaults, in declaration order.
_ITEM_OPTIONAL = tuple(
    (f.name, getattr(_ITEM_DEFAULTS, f.name))
    for f in fields(InfoItem)
    if f.name not in ("name", "code", "data_type")
)


def _item_dict(i: InfoItem) -> dict[str, Any]:
    out: dict[str, Any] = {"name": i.name, "code": i.code, "data_type": i.data_type}
    for name, default in _ITEM_OPTIONAL:
        value = getattr(i, name)
        if value != default:
            out[name] = value
    return out


def _resource_dict(r: Resource) -> dict[str, Any]:
    out = _canonical_fields(r)
    key: dict[str, Any] = {"items": list(r.key.items), "subject_type": r.key.subject_type}
    if r.key.identifier:
        key["identifier"] = r.key.identifier
    out["key"] = key
    out["items"] = [_item_dict(i) for i in r.items]
    if r.holders:
        out["holders"] = [{"department": h.department, "items": list(h.items)} for h in r.holders]
    return out


# --- parsing with paths -------------------------------------------------------------------------


def _only_keys(data: object, path: str, allowed: Set[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise SpecError(path, f"expected a mapping, got {type(data).__name__}")
    if data.keys() <= allowed:  # the common case, without building a sorted list
        return data
    unknown = sorted(set(map(str, data)) - set(allowed))
    if unknown:
        raise SpecError(path, f"unknown field(s) {', '.join(unknown)}; known: {sorted(allowed)}")
    return data


def _list(value: object, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise SpecError(path, f"expected a list, got {type(value).__name__}")
    return list(value)


def _str(data: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> str:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise SpecError(f"{path}.{key}", "is required")
        return ""
    if not isinstance(value, str):
        raise SpecError(f"{path}.{key}", f"expected text, got {value!r}")
    return value.strip()


# Keyed by the Literal's identity: hashing a typing.Literal walks its arguments on every call,
# which cost more than the rest of parsing a 200,000-item catalog. The Literal is kept in the
# value, so its id cannot be reused while the entry exists.
_ALLOWED: dict[int, tuple[Any, frozenset[str]]] = {}


def _allowed(kind: Any) -> frozenset[str]:
    entry = _ALLOWED.get(id(kind))
    if entry is None:
        entry = _ALLOWED[id(kind)] = (kind, frozenset(get_args(kind)))
    return entry[1]


def _choice(data: Mapping[str, Any], key: str, path: str, kind: Any, default: Any = None) -> Any:
    value = data.get(key, default)
    if value not in _allowed(kind):
        allowed = get_args(kind)
        shown = "missing" if value is None else repr(value)
        raise SpecError(f"{path}.{key}", f"{shown} is not one of {', '.join(allowed)}")
    return value


def _choices(data: Mapping[str, Any], key: str, path: str, kind: Any) -> tuple[Any, ...]:
    values = _list(data.get(key), f"{path}.{key}")
    allowed = get_args(kind)
    for n, value in enumerate(values):
        if value not in _allowed(kind):
            raise SpecError(f"{path}.{key}[{n}]", f"{value!r} is not one of {', '.join(allowed)}")
    return tuple(values)


def _bool(data: Mapping[str, Any], key: str, path: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise SpecError(f"{path}.{key}", f"expected true or false, got {value!r}")
    return value


def _codes(values: Iterable[Any], path: str) -> tuple[str, ...]:
    out = []
    for n, value in enumerate(values):
        if not isinstance(value, str) or not value:
            raise SpecError(f"{path}[{n}]", f"expected a code, got {value!r}")
        out.append(value)
    return tuple(out)


def _uscc(value: str, path: str) -> str:
    try:
        validate_uscc(value)
    except IdentifierError as exc:
        raise SpecError(path, str(exc)) from exc
    return value


def _department(data: object, path: str) -> Department:
    d = _only_keys(data, path, {"id", "code", "name", "level", "region", "parent"})
    dept_id = _str(d, "id", path)
    if not _DEPT_ID.fullmatch(dept_id):
        raise SpecError(f"{path}.id", f"{dept_id!r} must be lower-case letters, digits and '-'")
    region = _str(d, "region", path)
    if not _REGION.fullmatch(region):
        raise SpecError(f"{path}.region", f"{region!r} must be a 6-digit division code")
    parent = _str(d, "parent", path, required=False) or None
    return Department(
        id=dept_id,
        code=_uscc(_str(d, "code", path), f"{path}.code"),
        name=_str(d, "name", path),
        level=_choice(d, "level", path, Level),
        region=region,
        parent=_uscc(parent, f"{path}.parent") if parent else None,
    )


_ITEM_FIELDS = frozenset(f.name for f in fields(InfoItem))


def _item(data: object, path: str) -> InfoItem:
    d = _only_keys(data, path, _ITEM_FIELDS)
    code = _str(d, "code", path)
    if not _ITEM_CODE.fullmatch(code):
        raise SpecError(f"{path}.code", f"{code!r} must be lower-case letters, digits and '_'")
    length = d.get("length")
    if length is not None and (not isinstance(length, int) or isinstance(length, bool)):
        raise SpecError(f"{path}.length", f"expected a whole number, got {length!r}")
    if length is not None and length <= 0:
        raise SpecError(f"{path}.length", f"must be positive, got {length}")
    tolerance = d.get("tolerance")
    if tolerance is not None and (
        not isinstance(tolerance, int | float) or isinstance(tolerance, bool) or tolerance < 0
    ):
        raise SpecError(f"{path}.tolerance", f"expected a number >= 0, got {tolerance!r}")
    return InfoItem(
        name=_str(d, "name", path),
        code=code,
        data_type=_choice(d, "data_type", path, DataType),
        length=length,
        required=_bool(d, "required", path),
        base_item=_bool(d, "base_item", path),
        sensitivity=_choice(d, "sensitivity", path, Sensitivity, "internal"),
        shareable_to_all=_bool(d, "shareable_to_all", path),
        mask=_choice(d, "mask", path, Mask, "none"),
        compare=_choice(d, "compare", path, CompareRule, "exact"),
        tolerance=float(tolerance) if tolerance is not None else None,
    )


def _date(data: Mapping[str, Any], key: str, path: str) -> dt.date:
    value = data.get(key)
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise SpecError(f"{path}.{key}", f"expected a date like 2026-01-31, got {value!r}")


_RESOURCE_FIELDS = frozenset(f.name for f in fields(Resource))


def _resource(data: object, path: str) -> Resource:
    d = _only_keys(data, path, _RESOURCE_FIELDS)
    code = _str(d, "code", path)
    try:
        parse_resource_code(code)
    except IdentifierError as exc:
        raise SpecError(f"{path}.code", str(exc)) from exc
    items = tuple(
        _item(item, f"{path}.items[{n}]")
        for n, item in enumerate(_list(d.get("items"), f"{path}.items"))
    )
    key_data = _only_keys(d.get("key"), f"{path}.key", {"items", "subject_type", "identifier"})
    key = ResourceKey(
        items=_codes(_list(key_data.get("items"), f"{path}.key.items"), f"{path}.key.items"),
        subject_type=_choice(key_data, "subject_type", f"{path}.key", SubjectType),
        identifier=_str(key_data, "identifier", f"{path}.key", required=False) or None,
    )
    holders = []
    for n, h in enumerate(_list(d.get("holders"), f"{path}.holders")):
        hp = f"{path}.holders[{n}]"
        hd = _only_keys(h, hp, {"department", "items"})
        holders.append(
            Holder(
                department=_uscc(_str(hd, "department", hp), f"{hp}.department"),
                items=_codes(_list(hd.get("items"), f"{hp}.items"), f"{hp}.items"),
            )
        )
    base_category = d.get("base_category")
    if base_category is not None:
        base_category = _choice(d, "base_category", path, BaseCategory)
    lead = _str(d, "lead_department", path, required=False) or None
    return Resource(
        code=code,
        name=_str(d, "name", path),
        provider=_uscc(_str(d, "provider", path), f"{path}.provider"),
        abstract=_str(d, "abstract", path),
        format=_choice(d, "format", path, ResourceFormat),
        category=_codes(_list(d.get("category"), f"{path}.category"), f"{path}.category"),
        items=items,
        key=key,
        share_type=_choice(d, "share_type", path, ShareType),
        update_cycle=_choice(d, "update_cycle", path, UpdateCycle),
        publish_date=_date(d, "publish_date", path),
        share_conditions=_str(d, "share_conditions", path, required=False),
        share_methods=_choices(d, "share_methods", path, ShareMethod),
        purposes=_choices(d, "purposes", path, Purpose),
        open_to_public=_bool(d, "open_to_public", path),
        open_conditions=_str(d, "open_conditions", path, required=False),
        related=_codes(_list(d.get("related"), f"{path}.related"), f"{path}.related"),
        base_category=base_category,
        lead_department=_uscc(lead, f"{path}.lead_department") if lead else None,
        legal_basis=_str(d, "legal_basis", path, required=False),
        holders=tuple(holders),
    )
