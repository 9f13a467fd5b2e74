"""How the reconciler scales: derive the desired broker state and plan it against an empty broker.

    python -m benchmarks.reconcile_bench [--resources 2000] [--departments 500] [--items 5]

The ratio compares the ACL bindings the reconciler derives with what a naive per-department
grant of unconditional resources would need (departments × unconditional resources × 2, READ
and DESCRIBE each); the reconciler uses one ``User:*`` pair per unconditional topic instead.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from benchmarks.sample_catalog import generate_catalog
from govbus.reconcile.desired import desired_state
from govbus.reconcile.plan import ActualState, Scope, make_plan


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=2000)
    parser.add_argument("--departments", type=int, default=500)
    parser.add_argument("--items", type=int, default=5)
    args = parser.parse_args(argv)

    spec = generate_catalog(args.resources, args.items, args.departments)
    start = time.perf_counter()
    desired = desired_state(spec)
    derive = time.perf_counter() - start
    start = time.perf_counter()
    plan = make_plan(desired, ActualState(Scope()))
    planning = time.perf_counter() - start

    unconditional = sum(1 for r in spec.resources if r.share_type == "unconditional")
    naive = len(spec.departments) * unconditional * 2
    rows = [
        ("catalog", f"{len(spec.resources):,} resources, {len(spec.departments):,} departments"),
        ("unconditional resources", f"{unconditional:,}"),
        ("derive desired state", f"{derive * 1000:,.1f} ms"),
        ("plan against an empty broker", f"{planning * 1000:,.1f} ms ({len(plan.changes):,})"),
        ("topics / users", f"{len(desired.topics):,} / {len(desired.users):,}"),
        ("ACL bindings", f"{len(desired.acls):,}"),
        ("naive per-department bindings", f"{naive:,} (departments × unconditional × 2)"),
        ("ratio naive / derived", f"{naive / max(len(desired.acls), 1):,.1f}×"),
    ]
    for name, value in rows:
        print(f"{name + ':':<32} {value}", flush=True)


if __name__ == "__main__":
    main()
