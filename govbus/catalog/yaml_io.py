"""The catalog as a YAML file: the canonical dict form of ``CatalogSpec``, written readably.

Files keep Chinese text as is (``allow_unicode``) and fields in the canonical order of
``to_dict`` (``sort_keys=False``), so a file written twice is byte-identical and diffs stay short.

Reading and writing go through libyaml (PyYAML's ``CSafeLoader``/``CSafeDumper``): the
pure-Python ones took 198 s to read and 83 s to write a 10,000-resource (33 MB) catalog. libyaml
writes list items at their key's indentation (``key:\n- item``), which is as valid YAML as the
indented form and reads back the same. Without libyaml the pure-Python classes are used.

libyaml parses, but PyYAML still builds the values in Python, node by node, through a generic
constructor (two thirds of the reading time). ``_construct`` builds them straight from libyaml's
node tree: text (nearly every scalar of a catalog) as is, every other scalar through the safe
constructor, so values are exactly those ``yaml.safe_load`` gives. The elements of the lists
under the root (each resource) are built while libyaml composes the next one and their nodes
dropped: the node tree of a whole city's file took 1.2 GB; reading it now peaks at 0.3 GB.
Errors name the file: YAML syntax errors with line and column, structural errors with the path
inside the document (``catalog.yaml: resources[3].items[0].code: ...``).
"""

from __future__ import annotations

import weakref
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import yaml

from govbus.vocabulary.spec import CatalogSpec, SpecError

__all__ = ["SAMPLE_CATALOG_PATH", "dump_yaml", "load_yaml", "to_yaml_text"]

# The sample catalog of 常州市 shipped with the package (demo, tests, `catalog init`).
SAMPLE_CATALOG_PATH = Path(__file__).resolve().parent.parent / "data" / "sample_catalog.yaml"


_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc]
    """Builds the values of a top-level list element by element while libyaml composes.

    libyaml's composer calls ``descend_resolver``/``ascend_resolver`` around every node, so the
    loader knows when an element of a list under the root (``resources``, ``departments``) is
    complete: the next element begins. That element's values are built then and its nodes
    dropped, so the node tree of the whole file (1.4 GB for a 10,000-resource catalog) never
    exists at once. A construction error stops this and is raised where the whole-tree
    construction would raise it, so a file reports the same first error as before.

    It also remembers the tag of short plain scalars: a catalog repeats the same few thousand
    (``C``, ``internal``, ``true``, codes), and resolving each again is a third of parsing.
    """

    _tags: dict[tuple[str, Any], str] = {}  # noqa: RUF012 (shared on purpose: same answers)

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0  # of the node whose children are being composed (the root is 1)
        # node -> its value, for aliases. Weak: a dropped element's nodes go, and no new node
        # can be taken for one of them by a reused id(). Anchored nodes stay alive (libyaml
        # keeps its anchors for the document), so their values stay here.
        self._seen: weakref.WeakKeyDictionary[yaml.Node, Any] = weakref.WeakKeyDictionary()
        self._built: dict[int, list[Any]] = {}  # id(list node) -> its elements built so far
        self._failed: tuple[yaml.Node, Exception] | None = None

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and len(value) <= 40:
            key = (value, implicit)
            tag = self._tags.get(key)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(self._tags) < 100_000:
                    self._tags[key] = tag
            return tag
        return super().resolve(kind, value, implicit)

    # No path resolvers are registered on this class, so the base methods (which only serve
    # those) are replaced, not extended.
    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        if (
            self._depth == 2
            and self._failed is None
            and type(current_node) is yaml.SequenceNode
            and current_node.tag == _SEQ
            and current_index
        ):
            self._build_elements(current_node, current_index)
        self._depth += 1

    def ascend_resolver(self) -> None:
        self._depth -= 1

    def _build_elements(self, node: yaml.SequenceNode, end: int) -> None:
        """Build the elements of a list under the root up to ``end``, then drop their nodes.

        Usually the one before ``end``; an alias element (``- *x``) is composed without a call,
        so it is built with the next."""
        # Out of _built meanwhile: an element naming the list itself (``&l [*l]``) finds it
        # in _seen, as _construct registers a list before its elements.
        out = self._built.pop(id(node), None)  # the list node lives as long as the tree
        if out is None:
            out = self._seen[node] = []
        try:
            for index in range(len(out), end):
                out.append(_construct(self, node.value[index], self._seen))
                node.value[index] = None
        except Exception as exc:  # e.g. ValueError for `!!int x`, as safe_load raises it
            self._failed = (node, exc)  # raised when construction reaches this element
        finally:
            self._built[id(node)] = out
        # The safe constructor keeps every node it built (non-text scalars) until the document
        # ends; nothing is under construction between two elements.
        self.constructed_objects.clear()


_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


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
        data: Any = _load(text)
    except yaml.YAMLError as exc:
        raise SpecError(_yaml_location(name, exc), f"invalid YAML: {_yaml_problem(exc)}") from exc
    if data is None:
        data = {}
    try:
        return CatalogSpec.from_dict(data)
    except SpecError as exc:
        raise SpecError(f"{name}: {exc.path}" if exc.path else name, exc.message) from exc


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"


def _load(text: str) -> Any:
    """``yaml.safe_load`` with libyaml, values built from the node tree directly."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        return _construct(loader, node, loader._seen)
    finally:
        loader.dispose()


def _construct(loader: _Loader, node: yaml.Node, seen: MutableMapping[yaml.Node, Any]) -> Any:
    if isinstance(node, yaml.ScalarNode):
        if node.tag == _STR:
            return node.value
        return loader.construct_object(node)
    if isinstance(node, yaml.SequenceNode):
        built = loader._built.pop(id(node), None)  # a list under the root, built as composed
        if built is not None:
            if loader._failed is not None and loader._failed[0] is node:
                raise loader._failed[1]  # the element after those built
            built.extend(_construct(loader, item, seen) for item in node.value[len(built) :])
            return built
    done = seen.get(node)  # an alias: the same node again
    if done is not None:
        return done
    if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
        out: Any = []
        seen[node] = out
        out.extend(_construct(loader, item, seen) for item in node.value)
        return out
    if (
        isinstance(node, yaml.MappingNode)
        and node.tag == _MAP
        and not any(key.tag == _MERGE for key, _ in node.value)
    ):
        mapping: dict[Any, Any] = {}
        seen[node] = mapping
        for key, value in node.value:
            k = _construct(loader, key, seen)
            try:
                hash(k)
            except TypeError as exc:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found unhashable key",
                    key.start_mark,
                ) from exc
            mapping[k] = _construct(loader, value, seen)
        return mapping
    # Anything else (merge keys, explicit tags, sets): the safe constructor, as safe_load does.
    return loader.construct_document(node)


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
