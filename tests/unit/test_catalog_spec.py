"""The canonical dict/YAML form of the catalog: the sample survives every round trip, and a
malformed document is rejected with the path (and file, line, column) of what is wrong."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, dump_yaml, load_yaml, to_yaml_text
from govbus.vocabulary.spec import CatalogSpec, SpecError


@pytest.fixture(scope="module")
def sample() -> CatalogSpec:
    return load_yaml(SAMPLE_CATALOG_PATH)


@pytest.fixture
def sample_dict(sample: CatalogSpec) -> dict[str, Any]:
    return copy.deepcopy(sample.to_dict())


def test_sample_is_a_realistic_changzhou_catalog(sample: CatalogSpec) -> None:
    assert len(sample.departments) >= 12
    assert len(sample.resources) >= 25
    assert {d.region for d in sample.departments} == {"320400", "320402", "320412"}
    assert {r.share_type for r in sample.resources} == {"unconditional", "conditional", "none"}
    assert {r.classification for r in sample.resources} == {"base", "theme", "department"}
    assert {r.base_category for r in sample.resources if r.base_category} == {
        "population",
        "legal-entity",
        "natural-resources",
        "e-license",
        "credit",
    }
    assert {r.key.subject_type for r in sample.resources} == {
        "natural-person",
        "legal-entity",
        "other",
    }


def test_lookups_by_code_and_id_find_what_a_scan_finds(sample: CatalogSpec) -> None:
    for r in sample.resources:
        assert sample.resource(r.code) is r
    for d in sample.departments:
        assert sample.department(d.code) is d and sample.department_by_id(d.id) is d
    assert sample.resource("no/such-code") is None and sample.department_by_id("nobody") is None
    # A changed copy answers from its own resources, not the original's index.
    first = sample.resources[0]
    renamed = dataclasses.replace(first, name="改名后的资源")
    changed = dataclasses.replace(sample, resources=(renamed, *sample.resources[1:], first))
    assert sample.resource(first.code) is first
    assert changed.resource(first.code) is renamed  # the first of equal codes, as a scan


def test_dict_round_trip_of_the_sample(sample: CatalogSpec) -> None:
    assert CatalogSpec.from_dict(sample.to_dict()) == sample


def test_yaml_text_round_trip_is_stable(sample: CatalogSpec, tmp_path: Path) -> None:
    text = to_yaml_text(sample)
    assert CatalogSpec.from_dict(yaml.safe_load(text)) == sample
    assert "常州市公安局" in text  # allow_unicode: Chinese stays readable
    path = tmp_path / "catalog.yaml"
    dump_yaml(sample, path)
    assert load_yaml(path) == sample
    dump_yaml(load_yaml(path), path)
    assert path.read_text(encoding="utf-8") == text


def test_yaml_keeps_the_canonical_field_order(sample: CatalogSpec) -> None:
    text = to_yaml_text(sample)
    assert text.index("departments:") < text.index("resources:")
    first = text[text.index("resources:") :]
    assert first.index("code:") < first.index("name:") < first.index("provider:")


def _spec_error(data: dict[str, Any]) -> SpecError:
    with pytest.raises(SpecError) as info:
        CatalogSpec.from_dict(data)
    return info.value


def test_bad_enum_names_the_field_and_the_choices(sample_dict: dict[str, Any]) -> None:
    sample_dict["resources"][0]["share_type"] = "partial"
    err = _spec_error(sample_dict)
    assert err.path == "resources[0].share_type"
    assert "'partial'" in err.message
    assert "unconditional, conditional, none" in err.message


def test_bad_uscc_names_the_department_and_the_check_character(
    sample_dict: dict[str, Any],
) -> None:
    code = sample_dict["departments"][1]["code"]
    sample_dict["departments"][1]["code"] = code[:17] + ("0" if code[17] != "0" else "1")
    err = _spec_error(sample_dict)
    assert err.path == "departments[1].code"
    assert "check character" in err.message
    assert "GB 32100-2015" in err.message


def test_unknown_field_is_reported_with_its_path(sample_dict: dict[str, Any]) -> None:
    sample_dict["resources"][2]["items"][0]["colour"] = "red"
    err = _spec_error(sample_dict)
    assert err.path == "resources[2].items[0]"
    assert "colour" in err.message


def test_bad_date_says_what_is_expected(sample_dict: dict[str, Any]) -> None:
    sample_dict["resources"][3]["publish_date"] = "2024-13-01"
    err = _spec_error(sample_dict)
    assert err.path == "resources[3].publish_date"
    assert "2026-01-31" in err.message


def test_load_prefixes_structural_errors_with_the_file_name(
    sample_dict: dict[str, Any], tmp_path: Path
) -> None:
    sample_dict["resources"][0]["format"] = "fax"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(sample_dict, allow_unicode=True), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_yaml(path)
    assert info.value.path == f"{path}: resources[0].format"
    assert "'fax'" in str(info.value)


def test_load_reports_yaml_syntax_errors_with_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("departments:\n  - id: cz-gaj\n    name: [unclosed\n", encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_yaml(path)
    assert info.value.path.startswith(f"{path}:")
    line, column = info.value.path.rsplit(":", 2)[1:]
    assert int(line) >= 3 and int(column) >= 1
    assert "invalid YAML" in info.value.message


def test_load_of_a_missing_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(SpecError) as info:
        load_yaml(path)
    assert info.value.path == str(path)


def test_an_empty_file_is_an_empty_catalog(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    assert load_yaml(path) == CatalogSpec()


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nl:\n- &x {k: v, d: 2024-01-01}\n- *x\n- [1, *x]\n",  # an element aliased later
        "base: &b {x: 1}\nl:\n- {<<: *b, y: 2}\n- &c {z: 3}\n- !!set {q: null}\n- *c\n",
        "l:\n- &d 2024-01-01\n- *d\n- [*d, {e: *d}]\nm: [*d]\n",
        "- [1, 2, &q [3]]\n- [*q, *q]\n",  # a list at the root: lists in lists
        "l: !!seq [1, 2, 3]\n",
    ],
)
def test_yaml_built_element_by_element_equals_safe_load(text: str) -> None:
    # The lists under the root are built while the next element is parsed (yaml_io._Loader);
    # aliases into elements already built must still give the same values.
    from govbus.catalog.yaml_io import _load

    assert _load(text) == yaml.safe_load(text)


def test_yaml_alias_to_an_element_is_the_same_object() -> None:
    from govbus.catalog.yaml_io import _load

    data = _load("l:\n- &x {k: v}\n- *x\n- {a: *x}\n")
    assert data["l"][1] is data["l"][0] is data["l"][2]["a"]
    data = _load("l: &r\n- 1\n- *r\n- {a: *r}\n")
    assert data["l"][1] is data["l"] and data["l"][2]["a"] is data["l"]


def test_yaml_first_error_is_in_file_order(tmp_path: Path) -> None:
    # A bad value in an element built early is reported only if nothing before it in the file
    # is wrong, and a syntax error anywhere wins, as when the whole tree was built first.
    from govbus.catalog.yaml_io import _load

    with pytest.raises(yaml.YAMLError, match="line 1, column 5"):
        _load("a: {[1]: x}\nl:\n- {[2]: y}\n- 3\n")
    with pytest.raises(yaml.YAMLError, match="line 3, column 3"):
        _load("l:\n- 1\n- {[2]: y}\n- 3\n")
    with pytest.raises(yaml.MarkedYAMLError, match="flow node"):
        _load("l:\n- {[2]: y}\n- 3\n- [\n")
