"""`govbus plan` and `govbus apply`: make the broker match what the catalog (and grants) say.

`govbus apply` also issues each registered department its lookup API key (govbus.lookup)."""

from __future__ import annotations

import argparse

from govbus.catalog.store import CatalogStore
from govbus.lookup.apikeys import issue_keys
from govbus.reconcile.plan import apply
from govbus.reconcile.planner import plan_for
from govbus.reconcile.status import record_plan
from govbus.vocabulary.config import Settings
from govbus.vocabulary.secrets import PasswordStore


def _plan(args: argparse.Namespace, settings: Settings) -> int:
    plan, _ = plan_for(settings)
    record_plan(settings.state_dir, plan.drift(), applied=False)  # for `govbus exporter`
    lines = plan.render()
    for line in lines:
        print(line)
    if not lines:
        print("no changes: the broker matches the catalog")
    return 0


def _apply(args: argparse.Namespace, settings: Settings) -> int:
    plan, admin = plan_for(settings)
    result = apply(
        plan,
        admin,
        PasswordStore(settings.state_dir, settings.naming),
        allow_topic_deletion=args.delete_topics,
    )
    record_plan(settings.state_dir, plan.drift(), applied=True)  # for `govbus exporter`
    for line in result.render():
        print(line)
    if result.skipped:
        print("topics holding data were not deleted; re-run with --delete-topics to delete them")
    # The lookup service's API keys (govbus.lookup.apikeys): one per registered department.
    with CatalogStore.opened(settings) as store:
        departments = [d.id for d in store.current().departments]
    for issued in issue_keys(settings.state_dir, departments):
        if issued.new:
            print(f"lookup API key of {issued.department} issued: {issued.path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sub.add_parser(
        "plan", help="show how the broker differs from the catalog (create/alter/delete, why)"
    ).set_defaults(handler=_plan)
    p = sub.add_parser("apply", help="create, alter and delete until the broker matches")
    p.add_argument(
        "--delete-topics", action="store_true", help="also delete topics (and their data)"
    )
    p.set_defaults(handler=_apply)
