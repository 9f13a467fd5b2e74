"""Catalog search by info item name: "who already holds this?" (article 17)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from benchmarks.sample_catalog import generate_catalog
from govbus.catalog.search import EXACT, SearchIndex, normalize
from govbus.vocabulary.identifiers import uscc_check_char
from govbus.vocabulary.spec import (
    CatalogSpec,
    Department,
    Holder,
    InfoItem,
    Resource,
    ResourceKey,
    ShareType,
)


def _uscc(body: str) -> str:
    first17 = f"11320400{body}"
    return first17 + uscc_check_char(first17)


POLICE = _uscc("000000011")
HRSS = _uscc("000000022")
CIVIL = _uscc("000000033")


def _resource(
    code: str,
    name: str,
    provider: str,
    share_type: ShareType,
    items: list[tuple[str, str]],
    **extra: object,
) -> Resource:
    return Resource(
        code=code,
        name=name,
        provider=provider,
        abstract=name,
        format="database",
        category=("人口", name),
        items=tuple(InfoItem(name=n, code=c, data_type="C") for n, c in items),
        key=ResourceKey(("citizen_id",), "natural-person"),
        share_type=share_type,
        update_cycle="daily",
        publish_date=dt.date(2024, 1, 1),
        **extra,  # type: ignore[arg-type]
    )


R_POLICE = f"10101/{POLICE}-000001"
R_HRSS = f"30201/{HRSS}-000001"
R_CIVIL = f"30301/{CIVIL}-000001"

SPEC = CatalogSpec(
    departments=(
        Department("police", POLICE, "常州市公安局", "city", "320400"),
        Department("hrss", HRSS, "常州市人力资源和社会保障局", "city", "320400"),
        Department("civil", CIVIL, "常州市民政局", "city", "320400"),
    ),
    resources=(
        # Listed out of code order on purpose: ties follow the resource code, not input order.
        _resource(
            R_CIVIL,
            "婚姻登记信息",
            CIVIL,
            "none",
            [("公民身份号码", "citizen_id"), ("婚姻状况", "marital_status")],
            legal_basis="《中华人民共和国个人信息保护法》第二十八条",
        ),
        _resource(
            R_POLICE,
            "户籍人口信息",
            POLICE,
            "unconditional",
            [("公民身份号码", "citizen_id"), ("姓名", "name"), ("IC卡号", "ic_card_no")],
            share_methods=("online-lookup",),
            base_category="population",
            holders=(Holder(CIVIL, ("citizen_id", "name")),),
        ),
        _resource(
            R_HRSS,
            "社会保险参保信息",
            HRSS,
            "conditional",
            [
                ("公民身份号码", "citizen_id"),
                ("社保缴费基数", "contribution_base"),
                ("监护人公民身份号码", "guardian_id"),
            ],
            share_conditions="仅限社会救助业务使用",
            share_methods=("online-lookup", "batch-download"),
            purposes=("administrative-basis", "data-verification"),
        ),
    ),
)


@pytest.fixture(scope="module")
def index() -> SearchIndex:
    return SearchIndex.build(SPEC)


def test_normalize_folds_full_width_case_spaces_and_punctuation() -> None:
    assert normalize("ＩＣ卡号") == "ic卡号"
    assert normalize(" 公民 身份号码（ＩＤ）。") == "公民身份号码id"


def test_exact_name_ranks_before_partial_and_provider_before_holder(index: SearchIndex) -> None:
    hits = index.search("公民身份号码")

    order = [(h.resource_code, h.role, h.department_code, h.item_code) for h in hits]
    assert order == [
        # exact matches: every provider in resource-code order, then the holder's copy
        (R_POLICE, "provider", POLICE, "citizen_id"),
        (R_HRSS, "provider", HRSS, "citizen_id"),
        (R_CIVIL, "provider", CIVIL, "citizen_id"),
        (R_POLICE, "holder", CIVIL, "citizen_id"),
        # the name contains the query: after every exact match
        (R_HRSS, "provider", HRSS, "guardian_id"),
    ]
    assert [h.score for h in hits[:4]] == [EXACT] * 4
    assert hits[4].score < EXACT


def test_holder_hit_names_the_authoritative_provider(index: SearchIndex) -> None:
    provider, holder = index.search("姓名")

    assert (provider.role, provider.department_name) == ("provider", "常州市公安局")
    assert (holder.role, holder.department_code, holder.department_name) == (
        "holder",
        CIVIL,
        "常州市民政局",
    )
    assert holder.provider_code == POLICE
    assert holder.provider_name == "常州市公安局"
    assert "常州市公安局" in holder.note
    assert "authoritative value comes from the provider" in holder.note


def test_full_width_query_matches_exactly(index: SearchIndex) -> None:
    hits = index.search("ＩＣ卡号")

    assert hits[0].item_code == "ic_card_no"
    assert hits[0].score == EXACT


def test_partial_chinese_name_finds_the_item(index: SearchIndex) -> None:
    hits = index.search("身份")

    assert "公民身份号码" in {h.item_name for h in hits}
    assert hits[0].item_name == "公民身份号码"  # shorter name containing it ranks first


def test_resource_name_match_lists_its_items_with_lower_weight(index: SearchIndex) -> None:
    hits = index.search("婚姻登记")

    # 婚姻状况 shares one of three bigrams (1/3); the resource name has all three (0.5).
    assert [(h.resource_code, h.item_code, h.score) for h in hits] == [
        (R_CIVIL, "citizen_id", 0.5),
        (R_CIVIL, "marital_status", 0.5),
    ]


def test_unknown_item_returns_nothing(index: SearchIndex) -> None:
    assert index.search("宠物疫苗") == []
    assert index.search("？！ ") == []


def test_limit_caps_hits(index: SearchIndex) -> None:
    assert len(index.search("公民身份号码", limit=2)) == 2
    assert index.search("公民身份号码", limit=0) == []


def test_how_to_get_follows_share_type(index: SearchIndex) -> None:
    by_resource = {
        h.resource_code: h.how_to_get for h in index.search("公民身份号码") if h.role == "provider"
    }

    unconditional, conditional, none = (by_resource[c] for c in (R_POLICE, R_HRSS, R_CIVIL))
    assert len({unconditional, conditional, none}) == 3
    assert "unconditional" in unconditional and "online-lookup" in unconditional
    assert f"govbus request {R_HRSS} --purpose administrative-basis" in conditional
    assert "data-verification" in conditional
    assert "《中华人民共和国个人信息保护法》第二十八条" in none
    assert "negotiate" in none


def test_conditional_item_shared_with_all_is_got_directly() -> None:
    resource = SPEC.resource(R_HRSS)
    assert resource is not None
    shared = InfoItem("社保缴费基数", "contribution_base", "Y", shareable_to_all=True)
    items = (resource.items[0], shared)
    spec = CatalogSpec(SPEC.departments, (replace(resource, items=items),))

    (hit,) = SearchIndex.build(spec).search("社保缴费基数")

    assert "govbus request" not in hit.how_to_get
    assert "shared with all departments" in hit.how_to_get


def test_generated_catalog_finds_each_name_exactly_first() -> None:
    spec = generate_catalog(300, 12, 40, seed=3)
    index = SearchIndex.build(spec)
    names = {i.name for r in spec.resources for i in r.items}

    for name in sorted(names):
        hits = index.search(name, limit=5)
        assert hits[0].item_name == name, name
        assert hits[0].role == "provider"
    total = sum(len(r.items) for r in spec.resources)
    assert len(index) == total
