"""`govbus stream-apps list | run NAME`: the platform's stream apps, one worker in the foreground.

``run`` authenticates as the app's own SCRAM user with the password the reconciler stored when
it created that user (``govbus apply``; govbus/reconcile/secrets.py), so apply first. The
catalog comes from the catalog store, or from a YAML file with ``--catalog``. Ctrl-C (or
SIGTERM) stops the worker cleanly: it commits what it processed and leaves its group.

``--option KEY=VALUE`` passes app options (topic prefixes such as ``topic_prefix=t1.gov.``,
``app_id``) for drills and tests that run an app in a namespace of their own; ``--now`` starts
the app's clock at that instant (it then runs at normal speed), for drills and tests of
deadlines.
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from govbus.config import Settings

__all__ = ["register"]


def _options(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--option {pair!r}: expected KEY=VALUE, e.g. topic_prefix=t1.gov.")
        out[key.strip()] = value
    return out


def _clock(now: str) -> Callable[[], dt.datetime]:
    try:
        start = dt.datetime.fromisoformat(now)
    except ValueError:
        raise ValueError(
            f"--now {now!r}: expected an ISO-8601 time, e.g. 2026-03-02T09:00+08:00"
        ) from None
    if start.tzinfo is None:
        raise ValueError(f"--now {now!r}: give the offset, e.g. 2026-03-02T09:00+08:00")
    offset = start - dt.datetime.now(dt.UTC)
    return lambda: dt.datetime.now(dt.UTC) + offset


def _spec(settings: Settings, catalog: Path | None) -> Any:
    if catalog is not None:
        from govbus.catalog.yaml_io import load_yaml

        return load_yaml(catalog)
    from govbus.catalog.store import CatalogStore

    store = CatalogStore(settings.resolved_catalog_dsn)
    try:
        store.migrate()
        return store.current()
    finally:
        store.dispose()


def _grants(settings: Settings) -> list[Any]:
    from govbus.catalog.store import CatalogStore
    from govbus.share.requests import ShareRequests

    store = CatalogStore(settings.resolved_catalog_dsn)
    try:
        return list(ShareRequests(store, coordinator=settings.share_coordinator).grants())
    finally:
        store.dispose()


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from stream_apps.registry import APPS, app_module

    for name in sorted(APPS):
        doc = (app_module(name).__doc__ or "").strip().splitlines()
        print(f"{name}  {doc[0] if doc else ''}")
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    import faust

    from govbus.reconcile.secrets import PasswordStore
    from stream_apps.registry import app_module

    module = app_module(args.name)
    spec = _spec(settings, args.catalog)
    options: dict[str, Any] = _options(args.option)
    # needs() takes the naming options (prefixes, app_id); build() takes them all.
    accepted = inspect.signature(module.needs).parameters
    naming = {k: v for k, v in options.items() if k in accepted}
    app_spec = module.needs(spec, partitions=args.partitions, **naming)
    password = PasswordStore(settings.state_dir)(app_spec.user)
    if args.now:
        options["clock"] = _clock(args.now)
    takes = inspect.signature(module.build).parameters
    if "operator" in takes:
        options.setdefault("operator", settings.share_coordinator)
    if "grants" in takes and args.catalog is None:
        # Apps whose rules follow the share types (who may file a doubt) need the grants valid
        # now; a grant approved later takes effect at the worker's next start.
        options["grants"] = _grants(settings)
    app = module.build(settings, spec, password, partitions=args.partitions, **options)
    if args.metrics_port is not None:
        from prometheus_client import start_http_server

        from govbus.metrics import REGISTRY

        start_http_server(args.metrics_port, registry=REGISTRY)
        print(f"metrics on http://127.0.0.1:{args.metrics_port}/metrics", flush=True)
    print(f"stream app {args.name} running as user {app_spec.user}; Ctrl-C stops it", flush=True)
    worker = faust.Worker(app, loglevel=args.loglevel, quiet=True)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("stream-apps", help="list and run the platform's stream apps (Faust)")
    ssub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ssub.add_parser("list", help="the stream apps and what they do").set_defaults(handler=_list)
    run = ssub.add_parser(
        "run",
        help="run one app's worker in the foreground (Ctrl-C stops it)",
        description=(__doc__ or "").split("\n\n", 1)[1] if __doc__ else None,
    )
    run.add_argument("name", metavar="NAME", help="the app (see `govbus stream-apps list`)")
    run.add_argument(
        "--partitions",
        type=int,
        default=3,
        help="partitions of the app's topics, as the reconciler created them (default 3)",
    )
    run.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    run.add_argument("--catalog", type=Path, help="catalog YAML instead of the catalog store")
    run.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="app option, e.g. topic_prefix=t1.gov. (drills and tests; repeatable)",
    )
    run.add_argument(
        "--now", help="start the app's clock at this ISO time (drills and tests of deadlines)"
    )
    run.add_argument("--loglevel", default="warning", help="worker log level (default warning)")
    run.set_defaults(handler=_run)
