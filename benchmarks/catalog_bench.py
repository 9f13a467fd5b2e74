"""How fast the catalog is at city scale: generate, validate, store, index and search.

    python -m benchmarks.catalog_bench [--resources 10000] [--items 20] [--queries 1000]
                                       [--departments 500] [--seed 0] [--dsn sqlite:///...]
                                       [--pg-dsn postgresql+psycopg://...] [--changes 1000]
                                       [--files] [--skip-search]

The store section runs on SQLite (a temporary file, or ``--dsn``) and, with ``--pg-dsn``, again
on PostgreSQL (in a database of its own, dropped after): the full-city import, one department
changing one resource (time and storage growth), ``--changes`` sequential department changes,
a whole-city re-import with one change, and reading an old version back from the deltas.
``--files`` times the CLI end to end (a process per command, as a user runs it) importing and
exporting the catalog as YAML, xlsx and CSV.

Search latency is compared with a naive linear scan over every item (exact or substring match
on names normalised beforehand, so the baseline pays nothing but the scan) for the same
queries in the same run; the ratio is what the inverted index buys.

Rules and the SQL store are imported only when run, so the benchmark still reports the rest
while either is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa

from benchmarks.sample_catalog import generate_catalog
from govbus.catalog.search import SearchIndex, normalize
from govbus.vocabulary.spec import CatalogSpec

T = TypeVar("T")


class Report:
    """Figures as aligned ``name: value unit`` lines, printed as they come."""

    WIDTH = 42

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
    parser.add_argument("--pg-dsn", help="also run the store section on this PostgreSQL server")
    parser.add_argument("--changes", type=int, default=1000, help="sequential department changes")
    parser.add_argument("--files", action="store_true", help="time CLI import/export per format")
    parser.add_argument("--skip-search", action="store_true", help="skip the search figures")
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

    with tempfile.TemporaryDirectory(prefix="govbus-bench-") as tmp:
        _store(report, spec, args.dsn or f"sqlite:///{Path(tmp) / 'catalog.db'}", args)
    if args.pg_dsn:
        with _pg_database(args.pg_dsn) as dsn:
            _store(report, spec, dsn, args)
    if args.files:
        _files(report, spec)
    if args.skip_search:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        report.line("process max RSS", rss, "MiB")
        return 0

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


def _store(report: Report, spec: CatalogSpec, dsn: str, args: argparse.Namespace) -> None:
    try:
        from govbus.catalog.store import CatalogStore
    except ModuleNotFoundError as exc:
        if exc.name != "govbus.catalog.store":
            raise
        report.note("store import", "not available (govbus.catalog.store missing)")
        return
    store = CatalogStore(dsn)
    backend = store.engine.dialect.name
    report.note("store", f"{backend} ({store.engine.url.render_as_string(hide_password=True)})")
    try:
        _, t_migrate = timed(store.migrate)
        report.line(f"[{backend}] migrate", t_migrate, "s")
        size0 = _size(store)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        version, t_apply = timed(lambda: store.apply(spec, "bench", "benchmark"))
        size1 = _size(store)
        report.line(f"[{backend}] full-city import (v{version})", t_apply, "s")
        report.line(f"[{backend}]   storage", (size1 - size0) / 2**20, "MiB")
        report.line(
            f"[{backend}]   max RSS so far",
            max(rss0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "MiB",
        )
        _, t_current = timed(store.current)
        report.line(f"[{backend}] read the current catalog", t_current, "s")

        by_provider: dict[str, list[int]] = {}
        for n, r in enumerate(spec.resources):
            by_provider.setdefault(r.provider, []).append(n)
        resources = list(spec.resources)
        rng = random.Random(args.seed)

        def one_change(k: int) -> None:
            n = rng.randrange(len(resources))
            provider = resources[n].provider
            r = resources[n]
            resources[n] = dataclasses.replace(r, abstract=f"{r.abstract}（修订{k}）")
            part = CatalogSpec(
                tuple(d for d in spec.departments if d.code == provider),
                tuple(resources[i] for i in by_provider[provider]),
            )
            store.apply(part, "maintainer", f"change {k}", department=provider)

        before = _size(store)
        _, t_one = timed(lambda: one_change(0))
        one_growth = _size(store) - before
        report.line(f"[{backend}] one department, one resource", t_one, "s")
        report.line(f"[{backend}]   storage growth", one_growth / 1024, "KiB")
        report.line(f"[{backend}]   ratio change / full import", t_one / t_apply, "")

        before = _size(store)
        times = []
        for k in range(1, args.changes + 1):
            _, t = timed(lambda k=k: one_change(k))  # type: ignore[misc]
            times.append(t)
        grown = _size(store) - before
        if times:
            times.sort()
            report.line(f"[{backend}] {len(times)} sequential dept changes", sum(times), "s")
            report.line(f"[{backend}]   per change p50", percentile(times, 50), "s")
            report.line(f"[{backend}]   per change p99", percentile(times, 99), "s")
            report.line(
                f"[{backend}]   storage growth per change", grown / len(times) / 1024, "KiB"
            )
        number = store.latest_number()
        old, t_old = timed(lambda: store.version(1))
        report.line(f"[{backend}] read v1 back from deltas (of {number})", t_old, "s")
        assert old == spec, "version 1 read back differs from what was imported"
        everything = dataclasses.replace(spec, resources=tuple(resources))
        k = len(resources) // 2
        r = resources[k]
        resources[k] = dataclasses.replace(r, abstract=f"{r.abstract}（全市）")
        everything = dataclasses.replace(spec, resources=tuple(resources))
        before = _size(store)
        _, t_city = timed(lambda: store.apply(everything, "operator", "whole city, one change"))
        report.line(f"[{backend}] full-city re-import, 1 change", t_city, "s")
        report.line(f"[{backend}]   storage growth", (_size(store) - before) / 1024, "KiB")
    finally:
        store.dispose()


def _size(store: object) -> int:
    """Bytes the catalog database takes: the SQLite file, or PostgreSQL's database size."""
    engine = store.engine  # type: ignore[attr-defined]
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        return sum(os.path.getsize(p) for p in (path, f"{path}-wal") if os.path.exists(p))
    with engine.connect() as conn:
        return int(conn.execute(sa.text("select pg_database_size(current_database())")).scalar())


@contextlib.contextmanager
def _pg_database(dsn: str) -> Iterator[str]:
    url = sa.make_url(dsn)
    name = f"bench_{uuid.uuid4().hex[:10]}"
    server = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        server.dispose()


def _files(report: Report, spec: CatalogSpec) -> None:
    """`govbus catalog import FILE` and `export FILE` end to end, one process each."""
    from govbus.catalog import sheets
    from govbus.catalog.yaml_io import dump_yaml

    with tempfile.TemporaryDirectory(prefix="govbus-bench-files-") as tmp:
        root = Path(tmp)
        for fmt, name, write in (
            ("yaml", "city.yaml", dump_yaml),
            ("xlsx", "city.xlsx", sheets.write_xlsx),
            ("csv", "city-csv", sheets.write_csv_dir),
        ):
            source = root / name
            _, t_write = timed(lambda write=write, source=source: write(spec, source))  # type: ignore[misc]
            report.line(f"[{fmt}] write the file (library)", t_write, "s")
            state = root / f"state-{fmt}"
            t_import, rss = _cli(state, "import", str(source))
            report.line(f"[{fmt}] govbus catalog import", t_import, "s")
            report.line(f"[{fmt}]   max RSS", rss, "MiB")
            target = root / f"export-{name}"
            t_export, rss = _cli(state, "export", str(target))
            report.line(f"[{fmt}] govbus catalog export", t_export, "s")
            report.line(f"[{fmt}]   max RSS", rss, "MiB")


# Runs a command and prints its max RSS (KiB). A child forked straight from this benchmark
# (~1 GB by then) would report the benchmark's own RSS as its maximum; forked from this small
# process it reports its own.
_RSS_WRAPPER = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "print(usage.ru_maxrss)\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def _cli(state: Path, *args: str) -> tuple[float, float]:
    """Seconds and max RSS (MiB) of one `govbus catalog ...` process, its own."""
    command = [sys.executable, "-m", "govbus.cli", "--state-dir", str(state), "catalog", *args]
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _RSS_WRAPPER, *command], capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return elapsed, int(done.stdout.split()[-1]) / 1024


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
