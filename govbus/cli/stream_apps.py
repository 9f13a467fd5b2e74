"""`govbus stream-apps list | run NAME`: the platform's stream apps, one worker in the foreground.

``run`` authenticates as the app's own SCRAM user with the password the reconciler stored when
it created that user (``govbus apply``; govbus/reconcile/secrets.py), so apply first. The
catalog comes from the catalog store, or from a YAML file with ``--catalog``. Ctrl-C (or
SIGTERM) stops the worker cleanly: it commits what it processed and leaves its group.

``--option KEY=VALUE`` passes app options (e.g. ``batch=500``; the rest are Faust settings);
``--option prefix=t1.`` runs the app in a namespace of its own (every topic, user and app id
prefixed, govbus.vocabulary.naming) for drills and tests, ``--option operator=ID`` names
another operator department than the configured coordinator; ``--now`` starts
the app's clock at that instant (it then runs at normal speed), for drills and tests of
deadlines.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from govbus.catalog.store import CatalogStore
from govbus.catalog.yaml_io import load_yaml
from govbus.share.requests import ShareRequests
from govbus.vocabulary.config import Settings
from govbus.vocabulary.errors import UserError
from govbus.vocabulary.grants import Grant
from govbus.vocabulary.metrics import serve
from govbus.vocabulary.naming import Naming
from govbus.vocabulary.secrets import PasswordStore
from govbus.vocabulary.spec import CatalogSpec
from stream_apps.registry import APPS, AppContext, app_module

__all__ = ["register"]


def _options(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--option {pair!r}: expected KEY=VALUE, e.g. topic_prefix=t1.gov.")
        out[key.strip()] = value
    return out


def _clock(now: str) -> Callable[[], dt.datetime]:
    try:
        start = dt.datetime.fromisoformat(now)
    except ValueError:
        raise UserError(
            f"--now {now!r}: expected an ISO-8601 time, e.g. 2026-03-02T09:00+08:00"
        ) from None
    if start.tzinfo is None:
        raise UserError(f"--now {now!r}: give the offset, e.g. 2026-03-02T09:00+08:00")
    offset = start - dt.datetime.now(dt.UTC)
    return lambda: dt.datetime.now(dt.UTC) + offset


def _spec(settings: Settings, catalog: Path | None) -> CatalogSpec:
    if catalog is not None:
        return load_yaml(catalog)
    with CatalogStore.opened(settings) as store:
        return store.current()


def _grants(settings: Settings) -> list[Grant]:
    with CatalogStore.opened(settings) as store:
        return list(ShareRequests(store, coordinator=settings.share_coordinator).grants())


def _list(args: argparse.Namespace, settings: Settings) -> int:
    for name in sorted(APPS):
        doc = (app_module(name).__doc__ or "").strip().splitlines()
        print(f"{name}  {doc[0] if doc else ''}")
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    # Deferred: Faust costs ~0.5 s of start-up; only running an app needs it.
    import faust

    module = app_module(args.name)  # an unknown name: UserError listing the apps
    spec = _spec(settings, args.catalog)
    options: dict[str, Any] = _options(args.option)
    context = AppContext(
        naming=Naming(options.pop("prefix", settings.namespace)),
        partitions=args.partitions,
        # Apps whose rules follow the share types (who may file a doubt) need the grants valid
        # now; a grant approved later takes effect at the worker's next start.
        grants=() if args.catalog is not None else tuple(_grants(settings)),
        operator=options.pop("operator", settings.share_coordinator),
    )
    app_spec = module.needs(spec, context)
    password = PasswordStore(settings.state_dir, context.naming)(app_spec.user)
    if args.now:
        options["clock"] = _clock(args.now)
    app = module.build(settings, spec, password, context, **options)
    if args.metrics_port is not None:
        serve(args.metrics_port)  # a taken port: UserError naming it
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
        help="app option, e.g. prefix=t1. (drills and tests; repeatable)",
    )
    run.add_argument(
        "--now", help="start the app's clock at this ISO time (drills and tests of deadlines)"
    )
    run.add_argument("--loglevel", default="warning", help="worker log level (default warning)")
    run.set_defaults(handler=_run)
