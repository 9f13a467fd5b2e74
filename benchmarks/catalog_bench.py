"""How fast the catalog is at city scale: generate, validate, store, index and search.

    python -m benchmarks.catalog_bench [--resources 10000] [--items 20] [--queries 1000]
                                       [--departments 500] [--seed 0] [--dsn sqlite:///...]

Search latency is compared with a naive linear scan over every item (exact or substring match
on names normalised beforehand, so the baseline pays nothing but the scan) for the same
queries in the same run; the ratio is what the inverted index buys.

Rules and the SQL store are imported only when run, so the benchmark still reports the rest
while either is missing.
"""

from __future__ import annotations

import argparse
import math
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from benchmarks.sample_catalog import generate_catalog
from govbus.catalog.search import SearchIndex, normalize
from govbus.vocabulary.spec import CatalogSpec

T = TypeVar("T")


class Report:
    """Figures as aligned ``name: value unit`` lines, printed as they come."""

    WIDTH = 34

    def line(self, name: str, value: float | str, unit: str = "") -> None:
        shown = f"{value:,.3f}" if isinstance(value, float) else str(value)
        print(f"{name + ':':<{self.WIDTH}} {shown:>14} {unit}".rstrip(), flush=True)

    def note(self, name: str, text: str) -> None:
        print(f"{name + ':':<{self.WIDTH}} {text}", flush=True)


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def make_queries(spec: CatalogSpec, n: int, seed: int) -> list[str]:
    """Half full item names, half a part of one (two characters or more), as users type them."""
    rng = random.Random(seed)
    names = [i.name for r in spec.resources for i in r.items]
    if not names:
        return []
    queries = []
    for _ in range(n):
        name = rng.choice(names)
        if rng.random() < 0.5 and len(name) > 2:
            length = rng.randint(2, len(name) - 1)
            start = rng.randint(0, len(name) - length)
            name = name[start : start + length]
        queries.append(name)
    return queries


def naive_search(
    items: list[tuple[str, str, str]], query: str, limit: int
) -> list[tuple[str, str]]:
    """The baseline: scan every (normalised name, resource code, item code); exact first."""
    q = normalize(query)
    found = [(0 if name == q else 1, rcode, icode) for name, rcode, icode in items if q in name]
    found.sort()
    return [(rcode, icode) for _, rcode, icode in found[:limit]]


def latencies(run: Callable[[str], object], queries: list[str]) -> list[float]:
    out = []
    for q in queries:
        start = time.perf_counter()
        run(q)
        out.append(time.perf_counter() - start)
    return sorted(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.catalog_bench", description=__doc__)
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=20, help="info items per resource")
    parser.add_argument("--departments", type=int, default=500)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dsn", help="catalog store DSN (default: SQLite in a temporary dir)")
    args = parser.parse_args(argv)
    report = Report()
    n_items = args.resources * args.items
    report.line("catalog", f"{args.resources}×{args.items}", f"({n_items:,} items)")

    spec, t_generate = timed(
        lambda: generate_catalog(args.resources, args.items, args.departments, args.seed)
    )
    report.line("generate", t_generate, "s")

    _, t_struct = timed(lambda: CatalogSpec.from_dict(spec.to_dict()))
    report.line("structural validation (dict)", t_struct, "s")

    try:
        from govbus.catalog.rules import validate
    except ModuleNotFoundError as exc:
        if exc.name != "govbus.catalog.rules":
            raise
        report.note("rules", "not available")
    else:
        violations, t_rules = timed(lambda: validate(spec))
        report.line("rules validate", t_rules, "s")
        report.line("rule violations", len(violations))

    _store(report, spec, args.dsn)

    index, t_index = timed(lambda: SearchIndex.build(spec))
    report.line("search index build", t_index, "s")

    queries = make_queries(spec, args.queries, args.seed)
    if not queries:
        report.note("search", "no items, nothing to search")
        return 0
    fast = latencies(index.search, queries)
    items = [(normalize(i.name), r.code, i.code) for r in spec.resources for i in r.items]
    slow = latencies(lambda q: naive_search(items, q, 10), queries)
    f50, f99 = percentile(fast, 50) * 1e3, percentile(fast, 99) * 1e3
    s50, s99 = percentile(slow, 50) * 1e3, percentile(slow, 99) * 1e3
    report.line("search p50", f50, "ms")
    report.line("search p99", f99, "ms")
    report.line("linear scan p50", s50, "ms")
    report.line("linear scan p99", s99, "ms")
    report.line("speed-up p50 (scan / index)", s50 / f50, "×")
    report.line("speed-up p99 (scan / index)", s99 / f99, "×")

    # Linux reports ru_maxrss in KiB; read it before the traced pass below adds a second copy.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak = _python_peak(args)
    report.line("python peak (generate + index)", peak / 2**20, "MiB (tracemalloc)")
    report.line("process max RSS (untraced run)", rss, "MiB")

    print(
        f"\nsummary: {n_items:,} items in {args.resources:,} resources; generate "
        f"{t_generate:.2f} s, index {t_index:.2f} s, search p50 {f50:.3f} ms / p99 {f99:.3f} ms "
        f"over {len(queries)} queries, {s50 / f50:.0f}× (p50) faster than a linear scan; "
        f"peak {peak / 2**20:.0f} MiB Python, {rss:.0f} MiB RSS"
    )
    return 0


def _store(report: Report, spec: CatalogSpec, dsn: str | None) -> None:
    try:
        from govbus.catalog.store import CatalogStore
    except ModuleNotFoundError as exc:
        if exc.name != "govbus.catalog.store":
            raise
        report.note("store import", "not available (govbus.catalog.store missing)")
        return
    with tempfile.TemporaryDirectory(prefix="govbus-bench-") as tmp:
        store = CatalogStore(dsn or f"sqlite:///{Path(tmp) / 'catalog.db'}")
        _, t_migrate = timed(store.migrate)
        report.line("store migrate", t_migrate, "s")
        version, t_apply = timed(lambda: store.apply(spec, "bench", "benchmark"))
        report.line(f"store import (version {version})", t_apply, "s")


def _python_peak(args: argparse.Namespace) -> int:
    """Peak traced Python allocation for generating the catalog and indexing it.

    Measured in a separate pass because tracing slows everything it watches.
    """
    tracemalloc.start()
    try:
        spec = generate_catalog(args.resources, args.items, args.departments, args.seed)
        SearchIndex.build(spec)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


if __name__ == "__main__":
    sys.exit(main())
