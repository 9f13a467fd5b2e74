"""How the reconciler scales: derive the desired broker state and plan it against an empty broker.

    python -m benchmarks.reconcile_bench [--resources 2000] [--departments 500] [--items 5]
                                         [--grants 5000]

The ratio compares the ACL bindings the reconciler derives with what a naive per-department
grant of unconditional resources would need (departments × unconditional resources × 2, READ
and DESCRIBE each); the reconciler uses one ``User:*`` pair per unconditional topic instead.

Item-level grants (issue 11): ``--grants`` random approved share requests (seeded) for the
conditional resources, each for a random non-provider department and a random item set (half
the whole resource, half a strict subset). A strict subset is read from its item-set projection
topic (one per distinct (resource, item set)), so topics grow with resources + distinct item
sets and bindings with resources + grants. The figures are set beside the two designs one might
pick instead: a topic per grant, and a topic per info item (a grantee then needs a READ pair on
every granted item's topic).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence

from benchmarks.sample_catalog import generate_catalog
from govbus.reconcile.desired import desired_state
from govbus.reconcile.plan import ActualState, Scope, make_plan
from govbus.vocabulary.grants import Grant, granted_items
from govbus.vocabulary.spec import CatalogSpec
from stream_apps.projection.views import grant_item_sets


def random_grants(spec: CatalogSpec, n: int, seed: int = 1) -> list[Grant]:
    """``n`` grants of conditional resources to non-provider departments (deterministic)."""
    rng = random.Random(seed)
    conditional = [r for r in spec.resources if r.share_type == "conditional"]
    if not conditional:
        return []
    out = []
    for g in range(n):
        resource = rng.choice(conditional)
        dept = rng.choice(spec.departments)
        while dept.code == resource.provider:
            dept = rng.choice(spec.departments)
        codes = [i.code for i in resource.items]
        if rng.random() < 0.5 or len(codes) < 2:
            items: tuple[str, ...] = ()
        else:
            items = tuple(rng.sample(codes, rng.randrange(1, len(codes))))
        out.append(Grant(dept.code, resource.code, items=items, purpose="administrative-basis",
                         grant_id=g + 1))  # fmt: skip
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=2000)
    parser.add_argument("--departments", type=int, default=500)
    parser.add_argument("--items", type=int, default=5)
    parser.add_argument("--grants", type=int, default=5000)
    args = parser.parse_args(argv)

    spec = generate_catalog(args.resources, args.items, args.departments)
    grants = random_grants(spec, args.grants)
    start = time.perf_counter()
    bare = desired_state(spec)
    derive_bare = time.perf_counter() - start
    start = time.perf_counter()
    desired = desired_state(spec, grants)
    derive = time.perf_counter() - start
    start = time.perf_counter()
    plan = make_plan(desired, ActualState(Scope()))
    planning = time.perf_counter() - start

    unconditional = sum(1 for r in spec.resources if r.share_type == "unconditional")
    conditional = sum(1 for r in spec.resources if r.share_type == "conditional")
    naive = len(spec.departments) * unconditional * 2
    item_sets = sum(len(sets) for _, sets in grant_item_sets(spec, grants).values())
    by_code = {r.code: r for r in spec.resources}
    subset = [g for g in grants if granted_items(g, by_code[g.resource_code])]
    distinct_reads = {
        (g.department_code, g.resource_code, granted_items(g, by_code[g.resource_code]))
        for g in grants
    }
    grant_topics = len(desired.topics) - len(bare.topics)
    grant_acls = len(desired.acls) - len(bare.acls)
    # The alternatives, with the same grants: a topic per grant; a topic per info item.
    per_grant_topics = len(subset)
    items_total = sum(len(r.items) for r in spec.resources if r.share_type == "conditional")
    per_item_acls = 2 * sum(
        len(granted_items(g, by_code[g.resource_code]) or by_code[g.resource_code].items)
        for g in grants
    )
    rows = [
        ("catalog", f"{len(spec.resources):,} resources, {len(spec.departments):,} departments"),
        ("unconditional / conditional", f"{unconditional:,} / {conditional:,}"),
        ("grants", f"{len(grants):,} ({len(subset):,} for part of the items)"),
        ("distinct item sets (projections)", f"{item_sets:,}"),
        ("derive desired state", f"{derive * 1000:,.1f} ms ({derive_bare * 1000:,.1f} ms "
                                 "without grants)"),
        ("plan against an empty broker", f"{planning * 1000:,.1f} ms ({len(plan.changes):,})"),
        ("topics / users", f"{len(desired.topics):,} / {len(desired.users):,}"),
        ("topics from grants", f"{grant_topics:,} (= distinct item sets)"),
        ("ACL bindings", f"{len(desired.acls):,}"),
        ("ACL bindings from grants", f"{grant_acls:,} (2 × {len(distinct_reads):,} distinct "
                                     "(department, resource, item set))"),
        ("naive per-department bindings", f"{naive:,} (departments × unconditional × 2)"),
        ("ratio naive / derived", f"{naive / max(len(desired.acls), 1):,.1f}×"),
        ("alt: topic per grant", f"{per_grant_topics:,} topics "
                                 f"(ratio {per_grant_topics / max(item_sets, 1):,.2f}× ours)"),
        ("alt: topic per info item", f"{items_total:,} topics, {per_item_acls:,} grant bindings "
                                     f"(ratio {per_item_acls / max(grant_acls, 1):,.2f}× ours)"),
    ]  # fmt: skip
    for name, value in rows:
        print(f"{name + ':':<36} {value}", flush=True)


if __name__ == "__main__":
    main()
