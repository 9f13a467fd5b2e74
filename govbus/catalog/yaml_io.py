"""The catalog as a YAML file: the canonical dict form of ``CatalogSpec``, written readably.

Files keep Chinese text as is (``allow_unicode``) and fields in the canonical order of
``to_dict`` (``sort_keys=False``), so a file written twice is byte-identical and diffs stay short.
Errors name the file: YAML syntax errors with line and column, structural errors with the path
inside the document (``catalog.yaml: resources[3].items[0].code: ...``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from govbus.vocabulary.spec import CatalogSpec, SpecError

__all__ = ["SAMPLE_CATALOG_PATH", "dump_yaml", "load_yaml", "to_yaml_text"]

# The sample catalog of 常州市 shipped with the package (demo, tests, `catalog init`).
SAMPLE_CATALOG_PATH = Path(__file__).resolve().parent.parent / "data" / "sample_catalog.yaml"


class _Dumper(yaml.SafeDumper):
    """Indents list items under their key, which is how people write YAML by hand."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def to_yaml_text(spec: CatalogSpec) -> str:
    return yaml.dump(
        spec.to_dict(),
        Dumper=_Dumper,
        allow_unicode=True,
        sort_keys=False,
        default_flow_style=False,
        width=100,
    )


def dump_yaml(spec: CatalogSpec, path: str | Path) -> None:
    Path(path).write_text(to_yaml_text(spec), encoding="utf-8")


def load_yaml(path: str | Path) -> CatalogSpec:
    """Read a catalog file; raises SpecError whose path starts with the file name."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(name, f"cannot read the catalog file: {exc}") from exc
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(_yaml_location(name, exc), f"invalid YAML: {_yaml_problem(exc)}") from exc
    if data is None:
        data = {}
    try:
        return CatalogSpec.from_dict(data)
    except SpecError as exc:
        raise SpecError(f"{name}: {exc.path}" if exc.path else name, exc.message) from exc


def _yaml_location(name: str, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return name
    # PyYAML counts from 0; editors count from 1.
    return f"{name}:{mark.line + 1}:{mark.column + 1}"


def _yaml_problem(exc: yaml.YAMLError) -> str:
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    text = ", ".join(p for p in parts if p)
    return text or str(exc)
