"""`govbus catalog ...` end to end on an embedded SQLite catalog in a temporary state dir."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, dump_yaml, load_yaml
from govbus.cli import main
from govbus.vocabulary.schemas import write_schemas

REPO = Path(__file__).resolve().parents[2]


def run(tmp_path: Path, *args: str) -> int:
    return main(["--state-dir", str(tmp_path / "state"), "catalog", *args])


def test_validate_passes_the_sample_and_names_the_rule_a_bad_file_breaks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, "validate", str(SAMPLE_CATALOG_PATH)) == 0
    assert "all rules pass" in capsys.readouterr().out

    sample = load_yaml(SAMPLE_CATALOG_PATH)
    not_shared = next(r for r in sample.resources if r.share_type == "none")
    broken = dataclasses.replace(
        sample,
        resources=tuple(
            dataclasses.replace(r, legal_basis="") if r is not_shared else r
            for r in sample.resources
        ),
    )
    bad = tmp_path / "bad.yaml"
    dump_yaml(broken, bad)
    assert run(tmp_path, "validate", str(bad)) == 1
    out = capsys.readouterr()
    assert "none-needs-legal-basis" in out.out
    assert not_shared.code in out.out
    assert "nothing was imported" in out.err


def test_import_is_a_version_and_reimport_is_a_no_op(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, "import", "--author", "张三", "--reason", "首次编制") == 0
    assert "catalog version 1" in capsys.readouterr().out
    assert run(tmp_path, "import") == 0
    assert "no change" in capsys.readouterr().out
    assert run(tmp_path, "history") == 0
    history = capsys.readouterr().out
    assert "v1" in history and "张三: 首次编制" in history and "v2" not in history


def test_export_round_trips_through_yaml_and_xlsx(tmp_path: Path) -> None:
    assert run(tmp_path, "import") == 0
    sample = load_yaml(SAMPLE_CATALOG_PATH)
    for name in ("out.yaml", "out.xlsx"):
        assert run(tmp_path, "export", str(tmp_path / name)) == 0
    assert load_yaml(tmp_path / "out.yaml") == sample
    assert run(tmp_path, "import", str(tmp_path / "out.xlsx")) == 0  # same catalog: no change


def test_search_says_who_provides_an_item_and_how_to_get_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, "import") == 0
    capsys.readouterr()
    assert run(tmp_path, "search", "公民身份号码", "--limit", "3") == 0
    out = capsys.readouterr().out
    assert "常州市公安局" in out and "provider" in out
    assert run(tmp_path, "search", "火星探测器轨道") == 1


def test_committed_avro_schemas_match_the_sample_catalog(tmp_path: Path) -> None:
    # schemas/avro/ is generated from the sample; a catalog change must regenerate it
    # (`govbus catalog schemas` after importing the sample).
    fresh = tmp_path / "avro"
    write_schemas(load_yaml(SAMPLE_CATALOG_PATH), fresh)
    committed = {p.name: p.read_bytes() for p in (REPO / "schemas" / "avro").glob("*.avsc")}
    generated = {p.name: p.read_bytes() for p in fresh.glob("*.avsc")}
    assert committed == generated


def test_a_department_maintainer_exports_edits_checks_and_imports_its_own_part(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, "import") == 0
    mine = tmp_path / "cz-gaj.yaml"
    assert run(tmp_path, "export", str(mine), "--department", "cz-gaj") == 0
    part = load_yaml(mine)
    driving = next(r for r in part.resources if r.name == "机动车驾驶证信息")
    edited = dataclasses.replace(
        part,
        resources=tuple(
            dataclasses.replace(r, abstract="机动车驾驶证核发与注销信息。") if r is driving else r
            for r in part.resources
        ),
    )
    dump_yaml(edited, mine)
    capsys.readouterr()
    assert run(tmp_path, "validate", str(mine), "--department", "cz-gaj") == 0
    assert "~1 resource" in capsys.readouterr().out
    assert run(tmp_path, "import", str(mine), "--department", "cz-gaj", "--author", "李四") == 0
    assert "catalog version 2" in capsys.readouterr().out
    assert run(tmp_path, "history", "--department", "cz-gaj") == 0
    assert "department:1132040001410015XY  李四" in capsys.readouterr().out
    assert run(tmp_path, "show", "--department", "cz-gaj") == 0
    shown = capsys.readouterr().out
    assert driving.code in shown and "社会救助" not in shown
    # Another department's file under this department's name: one line naming both.
    civil = tmp_path / "cz-mzj.yaml"
    assert run(tmp_path, "export", str(civil), "--department", "cz-mzj") == 0
    capsys.readouterr()
    assert run(tmp_path, "import", str(civil), "--department", "cz-gaj") == 1
    err = capsys.readouterr().err
    assert "常州市民政局" in err and "cz-gaj" in err and len(err.strip().splitlines()) == 1
    # The city's catalog as it was before the change.
    old = tmp_path / "v1.yaml"
    assert run(tmp_path, "export", str(old), "--version", "1") == 0
    assert load_yaml(old) == load_yaml(SAMPLE_CATALOG_PATH)
    assert run(tmp_path, "deadlines", "--district", "320402") == 0
    assert "no catalog update deadlines" in capsys.readouterr().out
