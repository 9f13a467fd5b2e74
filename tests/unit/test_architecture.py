"""The package structure of docs/architecture.md, held against the code.

import-linter (``lint-imports`` in scripts/test.sh) checks the layers; these tests check what
its contracts do not say: no import cycle between packages, a vocabulary that imports nothing
else of govbus, and imports at module top (an import hidden in a function hides a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[2]
ROOTS = ("govbus", "producers", "stream_apps", "connectors")
# The one place a function may import project code: the stream-app registry loads an app's
# module (and with it Faust, ~0.5 s) only when that app is run or planned.
LAZY_IMPORTS_ALLOWED = {"stream_apps/registry.py"}


def package_of(module: str) -> str:
    """``govbus.catalog.store`` → ``govbus.catalog``; ``producers.publisher`` → ``producers``
    (``connectors.sink`` → ``connectors``)."""
    parts = module.split(".")
    if parts[0] in ("producers", "connectors"):
        return parts[0]
    return ".".join(parts[:2])


def package_graph() -> dict[str, set[str]]:
    graph = grimp.build_graph(*ROOTS, include_external_packages=False)
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            a, b = package_of(module), package_of(imported)
            if a != b:
                edges.setdefault(a, set()).add(b)
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}}) is None


def test_no_import_cycle_between_packages() -> None:
    edges = package_graph()
    assert "govbus.catalog" in edges  # the graph was built from the code
    assert find_cycle(edges) is None, " -> ".join(find_cycle(edges) or [])


def test_vocabulary_imports_nothing_else_of_govbus() -> None:
    edges = package_graph()
    assert edges.get("govbus.vocabulary", set()) == set()


def local_project_imports(path: Path) -> list[int]:
    """Line numbers of imports of project modules that are not at module level."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    for node in tree.body:
        if isinstance(node, ast.If):  # `if TYPE_CHECKING:` blocks count as module level
            top.update(id(n) for n in ast.walk(node))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and id(node) not in top:
            if node.module.split(".")[0] in ROOTS:
                lines.append(node.lineno)
        elif (
            isinstance(node, ast.Import)
            and id(node) not in top
            and any(alias.name.split(".")[0] in ROOTS for alias in node.names)
        ):
            lines.append(node.lineno)
    return lines


def test_local_import_finder_sees_one(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\nfrom govbus.vocabulary import clock\n\n"
        "def f():\n    import json\n    from govbus.catalog import store\n    return store\n",
        encoding="utf-8",
    )
    assert local_project_imports(sample) == [6]


def test_imports_at_module_top() -> None:
    hidden = {}
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel not in LAZY_IMPORTS_ALLOWED and (lines := local_project_imports(path)):
                hidden[rel] = lines
    assert hidden == {}
