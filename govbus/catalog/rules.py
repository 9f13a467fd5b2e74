"""The sharing rules of the catalog: what must hold across fields, resources and departments.

``spec.CatalogSpec.from_dict`` only checks structure. ``validate`` checks the rules of the
Changzhou measures (常州市政务信息资源共享管理办法) and of the catalog guide
(政务信息资源目录编制指南) on a whole catalog and returns every violation, each with a rule id,
the resource and item concerned and a message that names them and the rule. ``check`` raises
:class:`CatalogRuleError` listing them all, so one run shows everything to fix.

A department changes only its own part of the catalog (articles 8-9: 谁编制、谁负责), but the
rules hold across the whole city. ``validate(part, outside=...)`` checks a part (one
department's or one district's departments and resources) against an :class:`Outside`: what
the rules need to know of the rest of the catalog (its departments, its resources' codes, the
single-source items it already provides, and its references into the part). The store builds
it from the database with a few indexed queries, so a one-resource change does not load the
city's catalog; a violation across the boundary names the other department.

Rules (ids are stable; tools and tests refer to them):

``invalid-code``
    department 统一社会信用代码 and 政务信息资源代码 must be valid (a spec built in code has not
    been through ``from_dict``).
``duplicate-code``
    department codes and ids, resource codes, and item codes within one resource are unique.
``unknown-department``
    provider, holders, lead department and parent are departments of the catalog.
``provider-code-matches``
    the provider code inside the resource code is the provider's own code (its 18-character
    USCC, or its 9-character 组织机构代码, characters 9-17 of the USCC).
``none-needs-legal-basis``
    a 不予共享 resource cites the law or regulation that forbids sharing (article 11(1)).
``conditional-needs-conditions`` / ``conditional-needs-purposes``
    a 有条件共享 resource states its conditions and the purposes a request may name
    (article 11(1)).
``shared-needs-methods``
    a shared (not 不予共享) resource lists at least one share method.
``base-items-unconditional``
    a base resource (基础信息资源) belongs to one of the five base categories and its base items
    are shared unconditionally (article 11(2)); only base resources carry a base category.
``theme-needs-lead``
    a theme resource (主题信息资源) names its lead department (牵头部门).
``holder-items-exist``
    a holder (a department keeping a copy) is not the provider and holds items the resource has.
``key-items-exist``
    the key is non-empty and made of the resource's items; a key of subject type ``other``
    declares its identifier (e.g. 不动产单元号).
``related-exists``
    related resource codes are resources of the catalog.
``single-source``
    one data, one source (一数一源): a data item is identified by the subject type of its
    resource's key and its item code, so ``citizen_name`` of a natural person is one item
    wherever it appears (for subject type ``other`` the declared identifier is part of the
    identity: the ``area`` of a 不动产单元 and of a 图斑 are different items). Two resources
    of *different* providers may not both declare the same such item outside their keys: that
    would make two departments authoritative for it. Key items are exempt (every resource
    about a person carries the person's citizen_id to say whose record it is). A department
    that merely keeps a copy of another's item says so in the providing resource's
    ``holders``, which is what multi-source verification compares.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from govbus.vocabulary.errors import UserError
from govbus.vocabulary.identifiers import IdentifierError, parse_resource_code, validate_uscc
from govbus.vocabulary.spec import CatalogSpec, Department, Resource

__all__ = [
    "CatalogRuleError",
    "Outside",
    "OutsideResource",
    "Reference",
    "Violation",
    "check",
    "referenced",
    "single_source_identities",
    "validate",
]

# Where each rule comes from, quoted in every message.
_SOURCE = {
    "invalid-code": "GB 32100-2015 / 政务信息资源目录编制指南",
    "duplicate-code": "政务信息资源目录编制指南: codes are unique",
    "unknown-department": "catalog departments",
    "provider-code-matches": "政务信息资源目录编制指南: 后段码 is the provider's code",
    "none-needs-legal-basis": "办法 article 11(1): 不予共享 needs a legal basis",
    "conditional-needs-conditions": "办法 article 11(1): 有条件共享 states its conditions",
    "conditional-needs-purposes": "办法 article 11(1): 有条件共享 states its purposes",
    "shared-needs-methods": "政务信息资源目录编制指南: 共享方式",
    "base-items-unconditional": "办法 article 11(2): base items are shared unconditionally",
    "theme-needs-lead": "政务信息资源目录编制指南: 主题信息资源 has a 牵头部门",
    "holder-items-exist": "holders keep copies of the resource's own items",
    "key-items-exist": "一数一源: the key identifies one record",
    "related-exists": "政务信息资源目录编制指南: 关联资源代码",
    "single-source": "一数一源: one authoritative provider per data item",
}


@dataclass(frozen=True)
class Violation:
    rule: str
    resource: str | None  # resource code, None for a department-level violation
    item: str | None  # item code (or department code/id for department-level violations)
    message: str

    def __str__(self) -> str:
        return self.message


class CatalogRuleError(UserError):
    """The catalog breaks sharing rules; ``violations`` lists every one."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = list(violations)
        lines = "\n".join(f"  - {v.message}" for v in self.violations)
        super().__init__(f"catalog breaks {len(self.violations)} rule(s):\n{lines}")


@dataclass(frozen=True)
class OutsideResource:
    """A resource outside the part being checked: enough to name it in a message."""

    code: str
    name: str
    provider: str  # department code


@dataclass(frozen=True)
class Reference:
    """A resource or department outside the part that names a department or resource of it.

    ``kind``: ``related`` (a related resource code), ``holder``, ``lead`` (lead department) or
    ``parent`` (a department's parent); ``source`` is the referring resource's code or, for
    ``parent``, the referring department's code."""

    kind: str
    source: str
    target: str


@dataclass(frozen=True)
class Outside:
    """The rest of the catalog, as the rules need it when only a part is being changed.

    ``sources`` maps a single-source identity (see :func:`single_source_identities`) to a
    resource outside that declares it; only the identities the part declares are needed."""

    departments: tuple[Department, ...] = ()
    resources: Mapping[str, OutsideResource] = field(default_factory=dict)
    sources: Mapping[tuple[str, str, str], OutsideResource] = field(default_factory=dict)
    references: tuple[Reference, ...] = ()


def check(spec: CatalogSpec, outside: Outside | None = None) -> None:
    """Raise :class:`CatalogRuleError` listing all violations, if there are any."""
    violations = validate(spec, outside)
    if violations:
        raise CatalogRuleError(violations)


def validate(spec: CatalogSpec, outside: Outside | None = None) -> list[Violation]:
    """Every violation of the sharing rules in ``spec``, in catalog order.

    With ``outside``, ``spec`` is a part of the catalog and the rules are checked for the whole:
    the part's own resources in full, and every rule that crosses into the rest.
    """
    ctx = _Context(spec, outside or Outside())
    out = list(_departments(ctx))
    out.extend(_duplicate_resources(ctx))
    for resource in spec.resources:
        out.extend(_resource(ctx, resource))
    out.extend(_single_source(ctx))
    out.extend(_references(ctx))
    return out


def single_source_identities(r: Resource) -> Iterator[tuple[tuple[str, str, str], str]]:
    """(identity, item code) of each item ``r`` declares as its provider: every item outside
    its key. The identity is (subject type, declared identifier for ``other``, item code)."""
    kind = (r.key.identifier or "") if r.key.subject_type == "other" else ""
    keys = set(r.key.items)
    for item in r.items:
        if item.code not in keys:
            yield (r.key.subject_type, kind, item.code), item.code


class _Context:
    """The part being checked and the rest of the catalog, with lookups by code."""

    def __init__(self, spec: CatalogSpec, outside: Outside) -> None:
        self.spec = spec
        self.outside = outside
        self.departments: dict[str, Department] = {d.code: d for d in outside.departments}
        self.departments.update((d.code, d) for d in spec.departments)
        self.resources = {r.code: r for r in spec.resources}

    def department(self, code: str) -> Department | None:
        return self.departments.get(code)

    def has_resource(self, code: str) -> bool:
        return code in self.resources or code in self.outside.resources

    def dept_name(self, code: str) -> str:
        dept = self.departments.get(code)
        return f"{dept.name} ({code})" if dept else code


# --- helpers --------------------------------------------------------------------------------


def _where(resource: Resource, item: str | None) -> str:
    where = f"resource {resource.code} ({resource.name})"
    if item is not None:
        named = resource.item(item)
        where += f" item {item}" + (f" ({named.name})" if named else "")
    return where


def _v(rule: str, resource: Resource, item: str | None, problem: str) -> Violation:
    message = f"{_where(resource, item)}: {problem} [{rule}; {_SOURCE[rule]}]"
    return Violation(rule, resource.code, item, message)


# --- departments ----------------------------------------------------------------------------


def _departments(ctx: _Context) -> Iterator[Violation]:
    def v(rule: str, key: str, problem: str) -> Violation:
        return Violation(rule, None, key, f"{problem} [{rule}; {_SOURCE[rule]}]")

    spec = ctx.spec
    for d in spec.departments:
        try:
            validate_uscc(d.code)
        except IdentifierError as exc:
            yield v("invalid-code", d.code, f"department {d.id} ({d.name}) code: {exc}")
        if d.parent is not None and d.parent not in ctx.departments:
            yield v(
                "unknown-department",
                d.code,
                f"department {d.id} ({d.name}) parent {d.parent} is not a catalog department",
            )
    # Duplicates within the part, and between the part and the rest of the catalog.
    everyone = [*spec.departments, *(d for d in ctx.outside.departments)]
    for attr in ("code", "id"):
        counts = Counter(getattr(d, attr) for d in everyone)
        for value in dict.fromkeys(getattr(d, attr) for d in spec.departments):
            if counts[value] > 1:
                names = ", ".join(
                    f"{d.name} ({d.code})" for d in everyone if getattr(d, attr) == value
                )
                yield v(
                    "duplicate-code",
                    value,
                    f"department {attr} {value} is used by {counts[value]} departments ({names})",
                )


def _duplicate_resources(ctx: _Context) -> Iterator[Violation]:
    spec = ctx.spec
    counts = Counter(r.code for r in spec.resources)
    reported: set[str] = set()
    for r in spec.resources:
        if r.code in reported:
            continue
        other = ctx.outside.resources.get(r.code)
        if other is not None:
            reported.add(r.code)
            yield _v(
                "duplicate-code",
                r,
                None,
                f"resource code is already used by {other.name}, provided by "
                f"{ctx.dept_name(other.provider)}",
            )
        elif counts[r.code] > 1:
            reported.add(r.code)
            names = ", ".join(x.name for x in spec.resources if x.code == r.code)
            yield _v(
                "duplicate-code",
                r,
                None,
                f"resource code is used by {counts[r.code]} resources ({names})",
            )


# --- one resource ---------------------------------------------------------------------------


def _resource(ctx: _Context, r: Resource) -> Iterator[Violation]:
    yield from _codes(ctx, r)
    yield from _share_type(r)
    yield from _key(r)
    yield from _holders(ctx, r)
    for code, count in Counter(i.code for i in r.items).items():
        if count > 1:
            yield _v("duplicate-code", r, code, f"item code appears {count} times")
    for related in r.related:
        if not ctx.has_resource(related):
            yield _v("related-exists", r, None, f"related resource {related} is not in the catalog")


def _codes(ctx: _Context, r: Resource) -> Iterator[Violation]:
    if ctx.department(r.provider) is None:
        yield _v(
            "unknown-department", r, None, f"provider {r.provider} is not a catalog department"
        )
    if r.lead_department is not None and ctx.department(r.lead_department) is None:
        yield _v(
            "unknown-department",
            r,
            None,
            f"lead department {r.lead_department} is not a catalog department",
        )
    try:
        parsed = parse_resource_code(r.code)
    except IdentifierError as exc:
        # Without a valid code the classification is unknown; the class rules are skipped.
        yield _v("invalid-code", r, None, str(exc))
        return
    expected = r.provider if len(parsed.provider_code) == 18 else r.provider[8:17]
    if parsed.provider_code != expected:
        yield _v(
            "provider-code-matches",
            r,
            None,
            f"the code names provider {parsed.provider_code}, but the provider is "
            f"{ctx.dept_name(r.provider)}; the code must end in /{expected}-<serial>",
        )
    classification = parsed.classification
    if classification == "base":
        if r.base_category is None:
            yield _v(
                "base-items-unconditional",
                r,
                None,
                "a base resource (class digit 1) must name its base_category: population, "
                "legal-entity, natural-resources, e-license or credit",
            )
        if r.share_type != "unconditional":
            for item in r.items:
                if item.base_item:
                    yield _v(
                        "base-items-unconditional",
                        r,
                        item.code,
                        f"is a base item of a base resource but the resource is shared "
                        f"{r.share_type}; base items must be shared unconditionally "
                        "(move the other items to a conditional resource)",
                    )
    elif r.base_category is not None:
        yield _v(
            "base-items-unconditional",
            r,
            None,
            f"base_category {r.base_category} is set but the code's class digit makes it a "
            f"{classification} resource; base resources have class digit 1",
        )
    if classification == "theme" and r.lead_department is None:
        yield _v(
            "theme-needs-lead",
            r,
            None,
            "a theme resource (class digit 2) must name its lead_department (牵头部门)",
        )


def _share_type(r: Resource) -> Iterator[Violation]:
    if r.share_type == "none":
        if not r.legal_basis:
            yield _v(
                "none-needs-legal-basis",
                r,
                None,
                "share_type none (不予共享) must cite the law or regulation in legal_basis",
            )
        return
    if not r.share_methods:
        yield _v(
            "shared-needs-methods",
            r,
            None,
            f"share_type {r.share_type} needs at least one share_methods entry",
        )
    if r.share_type == "conditional":
        if not r.share_conditions:
            yield _v(
                "conditional-needs-conditions",
                r,
                None,
                "share_type conditional (有条件共享) must state share_conditions",
            )
        if not r.purposes:
            yield _v(
                "conditional-needs-purposes",
                r,
                None,
                "share_type conditional (有条件共享) must list the purposes a request may state",
            )


def _key(r: Resource) -> Iterator[Violation]:
    if not r.key.items:
        yield _v("key-items-exist", r, None, "key.items is empty; name the items of one record")
    for code in r.key.items:
        if r.item(code) is None:
            yield _v("key-items-exist", r, code, "is in key.items but not among the items")
    if r.key.subject_type == "other" and not r.key.identifier:
        yield _v(
            "key-items-exist",
            r,
            None,
            "key subject_type other must declare its identifier (e.g. 不动产单元号)",
        )


def _holders(ctx: _Context, r: Resource) -> Iterator[Violation]:
    for h in r.holders:
        if ctx.department(h.department) is None:
            yield _v(
                "unknown-department",
                r,
                None,
                f"holder {h.department} is not a catalog department",
            )
        if h.department == r.provider:
            yield _v(
                "holder-items-exist",
                r,
                None,
                f"holder {ctx.dept_name(h.department)} is the provider itself; "
                "holders are other departments keeping copies",
            )
        for code in h.items:
            if r.item(code) is None:
                yield _v(
                    "holder-items-exist",
                    r,
                    code,
                    f"holder {ctx.dept_name(h.department)} holds an item the resource "
                    "does not have",
                )


# --- across resources -----------------------------------------------------------------------


def _single_source(ctx: _Context) -> Iterator[Violation]:
    first: dict[tuple[str, str, str], Resource | OutsideResource] = dict(ctx.outside.sources)
    for r in ctx.spec.resources:
        for identity, code in single_source_identities(r):
            other = first.setdefault(identity, r)
            if other.provider != r.provider:
                yield _v(
                    "single-source",
                    r,
                    code,
                    f"{r.key.subject_type} item {code} is also provided by "
                    f"{ctx.dept_name(other.provider)} in resource {other.code} "
                    f"({other.name}), and here by {ctx.dept_name(r.provider)}; one "
                    "provider must be authoritative: drop it here and list this department "
                    "under holders of the other resource, or rename the item if it means "
                    "something else",
                )


def _references(ctx: _Context) -> Iterator[Violation]:
    """Resources and departments outside the part that name what the part no longer has."""
    for ref in ctx.outside.references:
        if ref.kind == "parent":
            if ref.target in ctx.departments:
                continue
            child = ctx.departments.get(ref.source)
            name = f"{child.id} ({child.name})" if child else ref.source
            rule = "unknown-department"
            yield Violation(
                rule,
                None,
                ref.source,
                f"department {name} parent {ref.target} would no longer be a catalog department "
                f"[{rule}; {_SOURCE[rule]}]",
            )
            continue
        source = ctx.outside.resources.get(ref.source)
        where = (
            f"resource {ref.source} ({source.name}) of {ctx.dept_name(source.provider)}"
            if source
            else f"resource {ref.source}"
        )
        if ref.kind == "related":
            if ctx.has_resource(ref.target):
                continue
            rule, problem = "related-exists", f"related resource {ref.target} would be removed"
        elif ref.target in ctx.departments:
            continue
        else:
            what = "holder" if ref.kind == "holder" else "lead department"
            rule = "unknown-department"
            problem = f"{what} {ref.target} would no longer be a catalog department"
        yield Violation(rule, ref.source, None, f"{where}: {problem} [{rule}; {_SOURCE[rule]}]")


def referenced(spec: Iterable[Resource]) -> Iterator[Reference]:
    """Every reference the resources make to other resources and departments."""
    for r in spec:
        for code in r.related:
            yield Reference("related", r.code, code)
        for h in r.holders:
            yield Reference("holder", r.code, h.department)
        if r.lead_department is not None:
            yield Reference("lead", r.code, r.lead_department)
