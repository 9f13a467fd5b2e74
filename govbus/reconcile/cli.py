"""`govbus plan` and `govbus apply`: make the broker match what the catalog (and grants) say."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from govbus.config import Settings


def plan_for(settings: Settings) -> tuple[Any, Any]:
    from govbus import kafka_clients
    from govbus.broker.properties import ADMIN_PRINCIPAL, CONTROLLER_PRINCIPAL
    from govbus.catalog.store import CatalogStore
    from govbus.reconcile.desired import desired_state
    from govbus.reconcile.plan import Scope, make_plan, read_actual
    from govbus.share.requests import ShareRequests
    from stream_apps.registry import all_needs

    store = CatalogStore(settings.resolved_catalog_dsn)
    try:
        store.migrate()
        spec = store.current()
        share = ShareRequests(store, coordinator=settings.share_coordinator)
        # The sweep records expiries first, so each grant's end is in its history.
        now = dt.datetime.now(dt.UTC)
        share.sweep(now)
        grants = share.grants(now)
    finally:
        store.dispose()
    apps = all_needs(spec, grants, operator=settings.share_coordinator)
    desired = desired_state(spec, grants, now=now, stream_apps=apps)
    admin = kafka_clients.admin_client(settings)
    protected = frozenset({settings.admin_username, ADMIN_PRINCIPAL, CONTROLLER_PRINCIPAL})
    plan = make_plan(desired, read_actual(admin, scope=Scope(protected_users=protected)))
    return plan, admin


def _plan(args: argparse.Namespace, settings: Settings) -> int:
    from govbus.reconcile.status import record_plan

    plan, _ = plan_for(settings)
    record_plan(settings.state_dir, plan.drift(), applied=False)  # for `govbus exporter`
    lines = plan.render()
    for line in lines:
        print(line)
    if not lines:
        print("no changes: the broker matches the catalog")
    return 0


def _apply(args: argparse.Namespace, settings: Settings) -> int:
    from govbus.reconcile.plan import apply
    from govbus.reconcile.secrets import PasswordStore
    from govbus.reconcile.status import record_plan

    plan, admin = plan_for(settings)
    result = apply(
        plan, admin, PasswordStore(settings.state_dir), allow_topic_deletion=args.delete_topics
    )
    record_plan(settings.state_dir, plan.drift(), applied=True)  # for `govbus exporter`
    for line in result.render():
        print(line)
    if result.skipped:
        print("topics holding data were not deleted; re-run with --delete-topics to delete them")
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
