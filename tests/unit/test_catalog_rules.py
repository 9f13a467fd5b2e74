"""Catalog sharing rules: each rule fires on a sample catalog broken in one place, names the
resource, the item and itself, and stays quiet on the nearest input that is allowed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from govbus.catalog import rules
from govbus.catalog.rules import CatalogRuleError, Violation, check, validate
from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, load_yaml
from govbus.vocabulary.identifiers import uscc_check_char
from govbus.vocabulary.spec import CatalogSpec, Holder, InfoItem, Resource

SAMPLE = load_yaml(SAMPLE_CATALOG_PATH)
Edit = Callable[[CatalogSpec], CatalogSpec]


def res(spec: CatalogSpec, name: str) -> Resource:
    return next(r for r in spec.resources if r.name == name)


def dept(spec: CatalogSpec, dept_id: str) -> str:
    found = spec.department_by_id(dept_id)
    assert found is not None
    return found.code


def edit(name: str, **changes: object) -> Edit:
    """Change fields of the named resource; values may be functions of the old resource."""

    def apply(spec: CatalogSpec) -> CatalogSpec:
        old = res(spec, name)
        values = {k: v(old) if callable(v) else v for k, v in changes.items()}
        new = replace(old, **values)  # type: ignore[arg-type]
        return replace(spec, resources=tuple(new if r is old else r for r in spec.resources))

    return apply


def add_department(**changes: object) -> Edit:
    def apply(spec: CatalogSpec) -> CatalogSpec:
        copy = replace(spec.departments[1], **changes)  # type: ignore[arg-type]
        return replace(spec, departments=(*spec.departments, copy))

    return apply


def edit_department(dept_id: str, **changes: object) -> Edit:
    def apply(spec: CatalogSpec) -> CatalogSpec:
        return replace(
            spec,
            departments=tuple(
                replace(d, **changes) if d.id == dept_id else d  # type: ignore[arg-type]
                for d in spec.departments
            ),
        )

    return apply


# Valid 统一社会信用代码 that no sample department has.
STRANGER = "11320400MB9999999" + uscc_check_char("11320400MB9999999")
TAX_CREDIT = "纳税信用等级信息"
POPULATION = "人口户籍基本信息"
EMPLOYMENT = "就业创业人员信息"
FOOD = "武进区食品经营许可信息"


def _other_serial(r: Resource) -> str:
    return r.code[:-6] + "000999"


def _provider_to_stranger(spec: CatalogSpec) -> CatalogSpec:
    # Code and provider change together, so only the unknown provider is wrong.
    return edit(
        FOOD, provider=STRANGER, code=lambda r: r.code.split("/")[0] + f"/{STRANGER}-000001"
    )(spec)


# (rule, edit, name of the resource the violation is about or None, item or None)
FAILING: list[tuple[str, Edit, str | None, str | None]] = [
    (
        "none-needs-legal-basis",
        edit("个人所得税纳税明细", legal_basis=""),
        "个人所得税纳税明细",
        None,
    ),
    ("conditional-needs-conditions", edit(EMPLOYMENT, share_conditions=""), EMPLOYMENT, None),
    ("conditional-needs-purposes", edit(EMPLOYMENT, purposes=()), EMPLOYMENT, None),
    ("shared-needs-methods", edit(TAX_CREDIT, share_methods=()), TAX_CREDIT, None),
    (
        "base-items-unconditional",
        edit(
            POPULATION,
            share_type="conditional",
            share_conditions="仅限公安业务",
            purposes=("work-reference",),
        ),
        POPULATION,
        "household_address",
    ),
    ("base-items-unconditional", edit(POPULATION, base_category=None), POPULATION, None),
    ("base-items-unconditional", edit(TAX_CREDIT, base_category="credit"), TAX_CREDIT, None),
    ("theme-needs-lead", edit("社会救助对象信息", lead_department=None), "社会救助对象信息", None),
    (
        "holder-items-exist",
        edit(
            POPULATION,
            holders=lambda r: (Holder(r.holders[0].department, ("citizen_name", "nickname")),),
        ),
        POPULATION,
        "nickname",
    ),
    (
        "holder-items-exist",
        edit(POPULATION, holders=lambda r: (Holder(r.provider, ("citizen_name",)),)),
        POPULATION,
        None,
    ),
    (
        "key-items-exist",
        edit(EMPLOYMENT, key=lambda r: replace(r.key, items=("citizen_id", "passport_no"))),
        EMPLOYMENT,
        "passport_no",
    ),
    ("key-items-exist", edit(EMPLOYMENT, key=lambda r: replace(r.key, items=())), EMPLOYMENT, None),
    (
        "key-items-exist",
        edit("不动产登记信息", key=lambda r: replace(r.key, identifier=None)),
        "不动产登记信息",
        None,
    ),
    ("duplicate-code", add_department(id="cz-gaj-copy"), None, None),
    (
        "duplicate-code",
        add_department(code="11320400MB8888888" + uscc_check_char("11320400MB8888888")),
        None,
        None,
    ),
    (
        "duplicate-code",
        lambda s: replace(s, resources=(*s.resources, replace(s.resources[0], name="副本"))),
        POPULATION,
        None,
    ),
    (
        "duplicate-code",
        edit("婚姻登记信息", items=lambda r: (*r.items, r.items[1])),
        "婚姻登记信息",
        "marital_status",
    ),
    ("unknown-department", lambda s: _provider_to_stranger(s), FOOD, None),
    (
        "unknown-department",
        edit(POPULATION, holders=lambda r: (*r.holders, Holder(STRANGER, ("gender",)))),
        POPULATION,
        None,
    ),
    ("unknown-department", edit(EMPLOYMENT, lead_department=STRANGER), EMPLOYMENT, None),
    ("unknown-department", edit_department("tn-mzj", parent=STRANGER), None, None),
    (
        "provider-code-matches",
        lambda s: edit(TAX_CREDIT, provider=dept(s, "cz-scjgj"))(s),
        TAX_CREDIT,
        None,
    ),
    (
        "related-exists",
        edit("社会救助对象信息", related=lambda r: (*r.related, _other_serial(r))),
        "社会救助对象信息",
        None,
    ),
    ("invalid-code", edit_department("tn-scjgj", code="11320402MB017396X0"), None, None),
    ("invalid-code", edit(FOOD, code=lambda r: "4" + r.code[1:]), None, None),
    (
        "single-source",
        edit(EMPLOYMENT, items=lambda r: (*r.items, InfoItem("姓名", "citizen_name", "C"))),
        EMPLOYMENT,
        "citizen_name",
    ),
]


def _ids(case: tuple[str, Edit, str | None, str | None]) -> str:
    return case[0]


@pytest.mark.parametrize("case", FAILING, ids=[_ids(c) for c in FAILING])
def test_rule_fires_and_names_resource_item_and_rule(
    case: tuple[str, Edit, str | None, str | None],
) -> None:
    rule, change, resource_name, item = case
    spec = change(SAMPLE)
    found = validate(spec)
    # Each broken sample breaks this one rule only, so the rule is what the test exercises.
    assert {v.rule for v in found} == {rule}, [v.message for v in found]
    assert all(f"[{rule};" in v.message for v in found)
    if resource_name is not None:
        r = res(spec, resource_name)
        about = [v for v in found if v.resource == r.code]
        assert about, [v.message for v in found]
        assert all(r.code in v.message and r.name in v.message for v in about)
        if item is not None:
            assert any(v.item == item and f"item {item}" in v.message for v in about)


def test_base_items_of_a_conditional_base_resource_are_each_named() -> None:
    spec = FAILING[4][1](SAMPLE)
    items = {v.item for v in validate(spec)}
    base_items = {i.code for i in res(SAMPLE, POPULATION).items if i.base_item}
    assert items == base_items
    assert any("article 11(2)" in v.message for v in validate(spec))


def test_single_source_names_both_providers_and_both_resources() -> None:
    (violation,) = validate(FAILING[-1][1](SAMPLE))
    population = res(SAMPLE, POPULATION)
    employment = res(SAMPLE, EMPLOYMENT)
    for text in (population.code, population.name, employment.code, "常州市公安局"):
        assert text in violation.message
    assert "常州市人力资源和社会保障局" in violation.message
    assert "holders" in violation.message


def test_none_without_legal_basis_cites_article_11_1() -> None:
    (violation,) = validate(FAILING[0][1](SAMPLE))
    assert "article 11(1)" in violation.message
    assert "legal_basis" in violation.message


def _nine_char_provider(r: Resource) -> str:
    front = r.code.split("/")[0]
    return f"{front}/{r.provider[8:17]}-000001"


def _no_base_items(r: Resource) -> tuple[InfoItem, ...]:
    return tuple(replace(i, base_item=False) for i in r.items)


# The nearest allowed input for each rule: no violation at all.
PASSING: list[tuple[str, Edit]] = [
    (
        "none-needs-legal-basis",
        edit(TAX_CREDIT, share_type="none", legal_basis="《中华人民共和国税收征收管理法》第八条"),
    ),
    (
        "conditional-needs-conditions",
        edit(EMPLOYMENT, share_type="unconditional", share_conditions="", purposes=()),
    ),
    (
        "shared-needs-methods",
        edit(TAX_CREDIT, share_type="none", legal_basis="某法第一条", share_methods=()),
    ),
    (
        "base-items-unconditional",
        edit(
            POPULATION,
            share_type="conditional",
            share_conditions="仅限公安业务",
            purposes=("work-reference",),
            items=_no_base_items,
        ),
    ),
    ("provider-code-matches", edit(FOOD, code=_nine_char_provider)),
    (
        "single-source",  # same item code, but a different kind of 'other' subject
        edit(
            "商品房网签备案信息", items=lambda r: (*r.items, InfoItem("面积", "building_area", "N"))
        ),
    ),
    (
        "holder-items-exist",  # the city bureau keeps a copy of a district's licences
        lambda s: edit(FOOD, holders=(Holder(dept(s, "cz-scjgj"), ("food_license_no",)),))(s),
    ),
]


@pytest.mark.parametrize("case", PASSING, ids=[c[0] for c in PASSING])
def test_nearest_allowed_input_passes(case: tuple[str, Edit]) -> None:
    _, change = case
    spec = change(SAMPLE)
    assert spec != SAMPLE
    assert validate(spec) == []


def test_single_source_within_the_same_kind_of_other_subject_fires() -> None:
    spec = edit(
        "商品房网签备案信息",
        items=lambda r: (*r.items, InfoItem("面积", "building_area", "N")),
        key=lambda r: replace(r.key, identifier="不动产单元号"),
    )(SAMPLE)
    assert [(v.rule, v.item) for v in validate(spec)] == [("single-source", "building_area")]


def test_sample_shows_what_the_rules_allow() -> None:
    assert validate(SAMPLE) == []
    check(SAMPLE)
    # Allowed shapes the failing cases rely on being absent from the rules:
    theme = res(SAMPLE, "参保人员医保待遇信息")
    assert theme.classification == "theme" and theme.lead_department != theme.provider
    other = res(SAMPLE, "不动产登记信息")
    assert other.key.subject_type == "other" and other.key.identifier == "不动产单元号"
    # citizen_name of a natural person appears in several resources, all of 公安.
    providers = {r.provider for r in SAMPLE.resources if r.item("citizen_name") is not None}
    assert providers == {dept(SAMPLE, "cz-gaj")}
    assert any(d.parent for d in SAMPLE.departments)


def test_every_rule_has_a_failing_case() -> None:
    assert {case[0] for case in FAILING} == set(rules._SOURCE)


def test_check_raises_with_every_violation() -> None:
    spec = edit(EMPLOYMENT, share_conditions="", lead_department=None)(SAMPLE)
    spec = edit("个人所得税纳税明细", legal_basis="")(spec)
    with pytest.raises(CatalogRuleError) as info:
        check(spec)
    found = info.value.violations
    assert {v.rule for v in found} == {
        "conditional-needs-conditions",
        "theme-needs-lead",
        "none-needs-legal-basis",
    }
    assert all(isinstance(v, Violation) for v in found)
    assert "3 rule(s)" in str(info.value)
    for v in found:
        assert v.message in str(info.value)
