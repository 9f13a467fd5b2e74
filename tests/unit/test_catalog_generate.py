"""The synthetic catalog generator: deterministic, the requested size, valid codes and rules."""

from __future__ import annotations

from collections import defaultdict

import pytest

from benchmarks.sample_catalog import generate_catalog
from govbus.catalog.rules import validate
from govbus.vocabulary.identifiers import parse_resource_code, validate_uscc
from govbus.vocabulary.spec import CatalogSpec


@pytest.fixture(scope="module")
def spec() -> CatalogSpec:
    return generate_catalog(200, 10, 30)


def test_same_seed_same_catalog_other_seed_other_catalog() -> None:
    assert generate_catalog(60, 6, 20, seed=7) == generate_catalog(60, 6, 20, seed=7)
    assert generate_catalog(60, 6, 20, seed=7) != generate_catalog(60, 6, 20, seed=8)


def test_counts(spec: CatalogSpec) -> None:
    assert len(spec.departments) == 30
    assert len(spec.resources) == 200
    assert all(len(r.items) == 10 for r in spec.resources)


def test_department_codes_are_valid_and_unique(spec: CatalogSpec) -> None:
    for d in spec.departments:
        validate_uscc(d.code)
        assert d.parent is None or spec.department(d.parent) is not None
    assert len({d.code for d in spec.departments}) == 30
    assert len({d.id for d in spec.departments}) == 30


def test_resource_codes_are_valid_unique_and_embed_the_provider(spec: CatalogSpec) -> None:
    for r in spec.resources:
        assert parse_resource_code(r.code).provider_code == r.provider
        assert spec.department(r.provider) is not None
    assert len({r.code for r in spec.resources}) == 200
    assert {r.classification for r in spec.resources} == {"base", "theme", "department"}
    assert {r.share_type for r in spec.resources} == {"unconditional", "conditional", "none"}


def test_item_codes_unique_per_resource_and_keys_exist(spec: CatalogSpec) -> None:
    for r in spec.resources:
        codes = [i.code for i in r.items]
        assert len(set(codes)) == len(codes), r.code
        assert r.key.items and all(r.item(k) is not None for k in r.key.items)


def test_non_key_item_codes_have_one_provider(spec: CatalogSpec) -> None:
    providers: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in spec.resources:
        for i in r.items:
            if i.code not in r.key.items:
                providers[(r.key.subject_type, i.code)].add(r.provider)

    assert {k: v for k, v in providers.items() if len(v) > 1} == {}
    # while item names repeat across providers, as in a real catalog
    by_name: dict[str, set[str]] = defaultdict(set)
    for r in spec.resources:
        for i in r.items:
            by_name[i.name].add(r.provider)
    assert len(by_name["姓名"]) > 1


def test_holders_are_other_departments_with_existing_items(spec: CatalogSpec) -> None:
    with_holders = [r for r in spec.resources if r.holders]
    assert with_holders
    for r in with_holders:
        for h in r.holders:
            assert h.department != r.provider
            assert spec.department(h.department) is not None
            assert all(r.item(code) is not None for code in h.items)


def test_more_items_than_the_vocabulary_get_numbered_variants() -> None:
    (resource,) = generate_catalog(1, 60, 3).resources
    codes = [i.code for i in resource.items]
    assert len(codes) == 60 == len(set(codes))
    assert any(i.name[-1].isdigit() for i in resource.items)


def test_round_trips_through_the_canonical_dict(spec: CatalogSpec) -> None:
    assert CatalogSpec.from_dict(spec.to_dict()) == spec


def test_passes_the_catalog_rules(spec: CatalogSpec) -> None:
    assert validate(spec) == []
    assert validate(generate_catalog(300, 25, 200, seed=5)) == []


def test_rejects_impossible_sizes() -> None:
    with pytest.raises(ValueError, match="items_per_resource >= 1"):
        generate_catalog(10, 0)
    with pytest.raises(ValueError, match="n_departments >= 1"):
        generate_catalog(10, 5, 0)
