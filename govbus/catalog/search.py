"""Who already holds this item? Catalog search by info item name (article 17).

A department must not ask a citizen for data the platform already has, so before designing a
form it looks the item up here: ``SearchIndex.build(spec).search("公民身份号码")`` lists every
resource carrying that item, the authoritative provider first and the holders' copies after,
each with how to get it for its share type.

Chinese has no spaces, so text is cut into character bigrams (and unigrams for one-character
queries) after normalisation; no tokenizer or dictionary is needed and partial names such as
``身份`` still find ``公民身份号码``.

Ranking, best first:

1. the item name equals the query (score 3);
2. the item name contains the query (score 2 plus the share of the name the query covers, so
   ``身份`` ranks ``身份证件类型`` above ``公民身份号码``);
3. bigram overlap: matched query bigrams / query bigrams, times the field's weight (item name
   1.0, item code name 0.6, resource name 0.5, category names 0.4); an entry takes its best
   field.

Equal scores list the provider before holders, then follow the resource code.
"""

from __future__ import annotations

import functools
import heapq
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain, groupby
from operator import itemgetter
from typing import Literal

from govbus.vocabulary.spec import CatalogSpec, Resource, ShareType

__all__ = ["Hit", "Role", "SearchIndex", "how_to_get", "normalize"]

Role = Literal["provider", "holder"]

EXACT = 3.0
CONTAINS = 2.0
W_ITEM_NAME = 1.0
W_ITEM_CODE = 0.6
W_RESOURCE_NAME = 0.5
W_CATEGORY = 0.4
_OTHER_FIELDS_BEST = max(W_ITEM_CODE, W_RESOURCE_NAME, W_CATEGORY)

_METHOD_NAMES = {
    "system-integration": "系统对接",
    "front-end-agent": "前置机共享",
    "online-lookup": "联机查询",
    "batch-download": "部门批量下载",
}
_PURPOSE_NAMES = {
    "administrative-basis": "行政依据",
    "work-reference": "工作参考",
    "data-verification": "数据校核",
    "business-collaboration": "业务协同",
}


def normalize(text: str) -> str:
    """NFKC (full-width to half-width), lower case, letters and digits only."""
    folded = unicodedata.normalize("NFKC", text).lower()
    return "".join(c for c in folded if unicodedata.category(c)[0] in "LN")


def _tokens(norm: str) -> set[str]:
    """Index tokens: every unigram and bigram."""
    return set(norm) | {norm[i : i + 2] for i in range(len(norm) - 1)}


def _query_tokens(norm: str) -> set[str]:
    # Bigrams carry the meaning of Chinese text; a single character is all a short query has.
    if len(norm) == 1:
        return {norm}
    return {norm[i : i + 2] for i in range(len(norm) - 1)}


@dataclass(frozen=True)
class Hit:
    """One department that has one item, and how a consumer gets it."""

    item_name: str
    item_code: str
    resource_code: str
    resource_name: str
    department_code: str  # who has this copy: the provider, or a holder
    department_name: str
    role: Role
    share_type: ShareType
    how_to_get: str
    provider_code: str  # the authoritative provider (一数一源), also for holder hits
    provider_name: str
    note: str
    score: float


def how_to_get(resource: Resource, *, shareable_to_all: bool = False) -> str:
    """A one-line Chinese + English instruction for getting a resource's data (article 17)."""
    methods = list(resource.share_methods)
    via_zh = "、".join(_METHOD_NAMES[m] for m in methods) or "共享交换平台"
    via_en = ", ".join(methods) or "the exchange platform"
    if resource.share_type == "unconditional" or (
        resource.share_type == "conditional" and shareable_to_all
    ):
        scope = "（本信息项面向所有部门共享）" if resource.share_type == "conditional" else ""
        scope_en = " (this item is shared with all departments)" if scope else ""
        return (
            f"无条件共享{scope}：在平台上通过{via_zh}直接订阅或查询 / unconditional"
            f"{scope_en}: subscribe or look up directly via {via_en}"
        )
    if resource.share_type == "conditional":
        purposes = list(resource.purposes)
        first = purposes[0] if purposes else "<purpose>"
        purposes_zh = "、".join(_PURPOSE_NAMES[p] for p in purposes)
        return (
            f"有条件共享：提交共享申请并说明用途（{purposes_zh}），"
            f"提供部门10个工作日内答复，获准后通过{via_zh}获取 / conditional: apply with a share "
            f"request, e.g. `govbus request {resource.code} --purpose {first}` "
            f"(allowed purposes: {', '.join(purposes) or 'none declared'}); the provider answers "
            f"within 10 working days, then get it via {via_en}"
        )
    basis = resource.legal_basis or "未注明"
    return (
        f"不予共享（依据：{basis}）；确因履职需要可与提供部门协商，协商未果由共享主管部门协调 / "
        f"not shared (legal basis: {resource.legal_basis or 'not stated'}); if your duties "
        "require it, negotiate with the provider, failing that the sharing authority mediates"
    )


class _Field:
    """One searchable field: its distinct normalised texts, what each points at, and the tokens.

    Names repeat across a catalog (every population resource has 姓名), so each distinct text
    is tokenised and scored once. Targets are entry or resource numbers in ascending order.
    """

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.targets: list[list[int]] = []
        self.index: dict[str, list[int]] = {}
        self._ids: dict[str, int] = {}

    def add(self, text: str, target: int) -> None:
        tid = self._ids.get(text)
        if tid is None:
            tid = self._ids[text] = len(self.texts)
            self.texts.append(text)
            self.targets.append([])
        self.targets[tid].append(target)

    def finish(self) -> None:
        for tid, text in enumerate(self.texts):
            # "|" separates category names; normalised text has no punctuation of its own.
            for token in set().union(*(_tokens(part) for part in text.split("|"))):
                self.index.setdefault(token, []).append(tid)

    def overlap(self, tokens: set[str]) -> Counter[int]:
        """How many query tokens each text matches; only texts sharing a token are touched."""
        return Counter(chain.from_iterable(self.index.get(t, ()) for t in tokens))

    def by_count(self, tokens: set[str]) -> Iterator[tuple[int, list[list[int]]]]:
        """The targets of matching texts, grouped by how many query tokens they match."""
        # Sorting and grouping run in C: item codes are mostly distinct, so there are many.
        counted = sorted(self.overlap(tokens).items(), key=itemgetter(1))
        for matched, group in groupby(counted, key=itemgetter(1)):
            yield matched, list(map(self.targets.__getitem__, map(itemgetter(0), group)))


@dataclass
class _Level:
    """Everything with one score: entry lists and resource lists (standing for all their items)."""

    entries: list[list[int]] = field(default_factory=list)
    resources: list[list[int]] = field(default_factory=list)


class SearchIndex:
    """An in-memory inverted index over a catalog's info items.

    An entry is one item of one resource. Entries are numbered in resource-code order, so entry
    order is the tie-break order and a resource's entries form one contiguous range.
    """

    def __init__(self) -> None:
        self._resources: list[Resource] = []
        self._first_entry: list[int] = [0]  # per resource, plus the end
        self._entry_resource: list[int] = []
        self._holders: dict[int, list[str]] = {}  # entry -> holder department codes, sorted
        self._dept_names: dict[str, str] = {}
        self._item_names = _Field()  # -> entries
        self._item_codes = _Field()  # -> entries
        self._resource_names = _Field()  # -> resources
        self._categories = _Field()  # -> resources

    @classmethod
    def build(cls, spec: CatalogSpec) -> SearchIndex:
        self = cls()
        self._dept_names = {d.code: d.name for d in spec.departments}
        self._resources = sorted(spec.resources, key=lambda r: r.code)
        norm = functools.cache(normalize)  # names repeat; normalise each text once
        for rid, resource in enumerate(self._resources):
            first = self._first_entry[-1]
            self._first_entry.append(first + len(resource.items))
            self._entry_resource.extend([rid] * len(resource.items))
            holders: dict[str, set[str]] = defaultdict(set)
            for holder in resource.holders:
                for code in holder.items:
                    holders[code].add(holder.department)
            for n, item in enumerate(resource.items):
                if item.code in holders:
                    self._holders[first + n] = sorted(holders[item.code])
                self._item_names.add(norm(item.name), first + n)
                self._item_codes.add(norm(item.code), first + n)
            self._resource_names.add(norm(resource.name), rid)
            self._categories.add("|".join(norm(c) for c in resource.category), rid)
        for f in (self._item_names, self._item_codes, self._resource_names, self._categories):
            f.finish()
        return self

    def __len__(self) -> int:
        """The number of indexed (resource, item) entries."""
        return len(self._entry_resource)

    def search(self, query: str, limit: int = 10) -> list[Hit]:
        """The best ``limit`` hits for an item name or part of one; [] when nothing matches."""
        q = normalize(query)
        if not q or limit <= 0:
            return []
        tokens = _query_tokens(q)
        levels: dict[float, _Level] = defaultdict(_Level)
        names = self._item_names
        for nid, matched in names.overlap(tokens).items():
            name = names.texts[nid]
            if name == q:
                score = EXACT
            elif q in name:
                score = CONTAINS + len(q) / len(name)
            else:
                score = W_ITEM_NAME * matched / len(tokens)
            levels[score].entries.append(names.targets[nid])
        # Each entry has one name, so these counts are distinct entries. Once item names alone
        # beat every other field's best score for ``limit`` entries, the other fields can't show.
        if (
            sum(len(t) for sc, lv in levels.items() if sc > _OTHER_FIELDS_BEST for t in lv.entries)
            >= limit
        ):
            return self._collect(levels, limit)
        for f, weight in (
            (self._item_codes, W_ITEM_CODE),
            (self._resource_names, W_RESOURCE_NAME),
            (self._categories, W_CATEGORY),
        ):
            for matched, targets in f.by_count(tokens):
                level = levels[weight * matched / len(tokens)]
                (level.entries if f is self._item_codes else level.resources).extend(targets)
        return self._collect(levels, limit)

    def _stream(self, level: _Level) -> Iterator[int]:
        """A level's entries in ascending order, possibly repeated; resources expand lazily."""
        entries = _sorted_union(level.entries)
        if not level.resources:
            return iter(entries)
        # Lazily: a bigram common to resource names may cover most of the catalog.
        expanded = chain.from_iterable(
            range(self._first_entry[rid], self._first_entry[rid + 1])
            for rid in _sorted_union(level.resources)
        )
        return heapq.merge(entries, expanded) if entries else expanded

    def _collect(self, levels: dict[float, _Level], limit: int) -> list[Hit]:
        """Walk score levels best first; an entry counts at the first (best) level it shows up.

        Within a level providers come before holders, so once a level yields as many new
        entries as hits are still wanted the rest of it need not be read.
        """
        hits: list[Hit] = []
        seen: set[int] = set()
        for score in sorted(levels, reverse=True):
            wanted = limit - len(hits)
            fresh: list[int] = []
            for eid in self._stream(levels[score]):
                if eid in seen:
                    continue
                seen.add(eid)
                fresh.append(eid)
                if len(fresh) == wanted:
                    break
            hits.extend(self._hit(eid, None, score) for eid in fresh)
            hits.extend(
                self._hit(eid, dept, score) for eid in fresh for dept in self._holders.get(eid, ())
            )
            if len(hits) >= limit:
                break
        return hits[:limit]

    def _hit(self, eid: int, holder: str | None, score: float) -> Hit:
        rid = self._entry_resource[eid]
        resource = self._resources[rid]
        item = resource.items[eid - self._first_entry[rid]]
        provider_name = self._dept_names.get(resource.provider, resource.provider)
        department = holder or resource.provider
        if holder is None:
            note = "权威来源 / authoritative source"
        else:
            note = (
                f"副本，权威数据以提供部门{provider_name}为准 / a copy; the authoritative value "
                f"comes from the provider {resource.provider}"
            )
        return Hit(
            item_name=item.name,
            item_code=item.code,
            resource_code=resource.code,
            resource_name=resource.name,
            department_code=department,
            department_name=self._dept_names.get(department, department),
            role="provider" if holder is None else "holder",
            share_type=resource.share_type,
            how_to_get=how_to_get(resource, shareable_to_all=item.shareable_to_all),
            provider_code=resource.provider,
            provider_name=provider_name,
            note=note,
            score=score,
        )


def _sorted_union(lists: list[list[int]]) -> list[int]:
    # sorted() runs in C; duplicates are dropped by the caller's seen-set.
    return lists[0] if len(lists) == 1 else sorted(chain.from_iterable(lists))
