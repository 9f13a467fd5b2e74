"""The `govbus` command: one entry point, a subcommand per job, errors without tracebacks."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from govbus.config import ConfigError, Settings, load_settings

Handler = Callable[[argparse.Namespace, Settings], int]


def _broker_install(args: argparse.Namespace, settings: Settings) -> int:
    from govbus.broker.cluster import LocalCluster

    cp = LocalCluster(settings).install()
    print(f"Kafka {cp.version} broker classpath verified in {cp.libs}")
    return 0


def _broker_lock(args: argparse.Namespace, settings: Settings) -> int:
    from govbus.broker.classpath import write_lock

    path = write_lock(settings.kafka_version, settings.cache_dir, settings.maven_repo)
    print(f"wrote {path}: review it, then commit it")
    return 0


def _print_status(settings: Settings) -> bool:
    from govbus.broker.cluster import LocalCluster

    cluster = LocalCluster(settings)
    if not cluster.is_formatted():
        print(f"no local cluster in {cluster.root} (run `govbus broker start`)")
        return False
    all_up = True
    for st in cluster.status():
        state = "up" if st.listening else ("starting" if st.running else "down")
        all_up &= st.listening
        pid = f" pid {st.pid}" if st.pid else ""
        print(
            f"node {st.node_id}: {state}{pid}  broker 127.0.0.1:{st.port}  "
            f"controller 127.0.0.1:{st.controller_port}"
        )
    print(f"bootstrap servers: {cluster.bootstrap_servers}")
    return all_up


def _broker_start(args: argparse.Namespace, settings: Settings) -> int:
    from govbus.broker.cluster import LocalCluster

    LocalCluster(settings).start(nodes=args.nodes, timeout=args.timeout)
    _print_status(settings)
    return 0


def _broker_stop(args: argparse.Namespace, settings: Settings) -> int:
    from govbus.broker.cluster import LocalCluster

    LocalCluster(settings).stop()
    print("local cluster stopped")
    return 0


def _broker_status(args: argparse.Namespace, settings: Settings) -> int:
    return 0 if _print_status(settings) else 3


def _broker_reset(args: argparse.Namespace, settings: Settings) -> int:
    from govbus.broker.cluster import LocalCluster

    if not args.yes:
        print("refusing to delete the cluster's topics and data without --yes", file=sys.stderr)
        return 2
    LocalCluster(settings).reset()
    print("local cluster stopped and its data deleted")
    return 0


def _postgres(args: argparse.Namespace, settings: Settings) -> int:
    from govbus.local_postgres import LocalPostgres

    pg = LocalPostgres(settings.state_dir, port=args.port)
    if args.action == "start":
        pg.start(tuple(args.database))
        for name in args.database:
            print(pg.dsn(name))
    elif args.action == "stop":
        pg.stop()
        print("local PostgreSQL stopped")
    else:
        print("up" if pg.running() else "down")
        return 0 if pg.running() else 3
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from govbus import demo

    if not settings.bootstrap_servers:
        from govbus.broker.cluster import LocalCluster

        LocalCluster(settings).start()
    demo.run(settings)
    return 0


def _exporter(args: argparse.Namespace, settings: Settings) -> int:
    import contextlib
    import signal
    import threading

    from govbus import metrics

    for collector in metrics.state_collectors(settings):
        metrics.REGISTRY.register(collector)
    # Share requests are database state: the collector queries the catalog at each scrape.
    from govbus.catalog.store import CatalogStore
    from govbus.share.metrics import register_share_collector

    store = CatalogStore(settings.resolved_catalog_dsn)
    store.migrate()
    register_share_collector(store)
    port = settings.metrics_port if args.port is None else args.port
    server, _ = metrics.serve(port, args.addr)
    print(f"serving metrics on http://{args.addr}:{server.server_port}/metrics until interrupted")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends it as SIGTERM does
        stop.wait()
    server.shutdown()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="govbus",
        description="Government data-sharing exchange bus on Apache Kafka.",
    )
    parser.add_argument(
        "--config", help="config file (TOML); default $GOVBUS_CONFIG or ./govbus.toml"
    )
    parser.add_argument("--state-dir", type=Path, help="where local data lives ($GOVBUS_STATE_DIR)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    broker = sub.add_parser(
        "broker", help="install and run a local Kafka cluster (KRaft, SCRAM, ACLs)"
    )
    bsub = broker.add_subparsers(dest="action", metavar="ACTION", required=True)
    bsub.add_parser("install", help="fetch and verify the pinned broker jars").set_defaults(
        handler=_broker_install
    )
    start = bsub.add_parser("start", help="start the local cluster; returns when it answers")
    start.add_argument("--nodes", type=int, choices=(1, 3), help="1 (default) or 3 brokers")
    start.add_argument("--timeout", type=float, default=120.0, help="seconds to wait (120)")
    start.set_defaults(handler=_broker_start)
    bsub.add_parser("stop", help="clean shutdown of every node").set_defaults(handler=_broker_stop)
    bsub.add_parser("status", help="which nodes are up and their ports").set_defaults(
        handler=_broker_status
    )
    reset = bsub.add_parser("reset", help="stop the cluster and delete its data")
    reset.add_argument("--yes", action="store_true", help="really delete")
    reset.set_defaults(handler=_broker_reset)
    bsub.add_parser("lock", help="maintainers: pin a Kafka version's jar digests").set_defaults(
        handler=_broker_lock
    )

    pg = sub.add_parser("postgres", help="a local PostgreSQL on 127.0.0.1 for tests and demos")
    pg.add_argument(
        "action",
        choices=("start", "stop", "status"),
        help="start (initdb on first use, prints one DSN per database), stop, or status",
    )
    pg.add_argument("--port", type=int, default=15432, help="port on 127.0.0.1 (default 15432)")
    pg.add_argument(
        "--database", action="append", default=None, help="database to create (repeatable)"
    )
    pg.set_defaults(handler=_postgres)

    from govbus.catalog.cli import register as register_catalog
    from govbus.disputes.cli import register as register_disputes
    from govbus.reconcile.cli import register as register_reconcile
    from govbus.share.cli import register as register_share
    from govbus.subscribe.cli import register as register_subscribe
    from producers.cli import register as register_publish
    from producers.observe_cli import register as register_observe
    from stream_apps.cli import register as register_stream_apps

    register_catalog(sub)
    register_reconcile(sub)
    register_publish(sub)
    register_subscribe(sub)
    register_share(sub)
    register_disputes(sub)
    register_observe(sub)
    register_stream_apps(sub)

    sub.add_parser("demo", help="live demo of the exchange on the broker").set_defaults(
        handler=_demo
    )
    exporter = sub.add_parser(
        "exporter",
        help="serve the Prometheus metrics, with the reconciler's last drift and apply time",
    )
    exporter.add_argument("--port", type=int, help="port (default: metrics_port, 9464)")
    exporter.add_argument("--addr", default="0.0.0.0", help="address to bind (0.0.0.0)")
    exporter.set_defaults(handler=_exporter)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "database", "unset") is None:
        args.database = ["govbus_test"]
    _configure_logging()
    try:
        settings = load_settings(args.config, overrides={"state_dir": args.state_dir})
        handler: Handler = args.handler
        return handler(args, settings)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `govbus ... | head`: the reader left; not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # one line a user can act on; GOVBUS_DEBUG=1 for the traceback
        import os

        if os.environ.get("GOVBUS_DEBUG"):
            raise
        known = _known_errors()
        if isinstance(exc, known):
            print(f"govbus: error: {exc}", file=sys.stderr)
            return 1
        raise


def _configure_logging() -> None:
    """Warnings and errors to stderr; librdkafka's connection chatter only with GOVBUS_DEBUG=1.

    The client errors that matter (refusals, failed deliveries) reach the user as exceptions;
    librdkafka's own log would repeat each of them once per retry.
    """
    import logging
    import os

    debug = bool(os.environ.get("GOVBUS_DEBUG"))
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING, format="%(name)s: %(message)s"
    )
    if not debug:
        logging.getLogger("govbus.librdkafka").setLevel(logging.CRITICAL)


def _known_errors() -> tuple[type[BaseException], ...]:
    from confluent_kafka import KafkaException

    from govbus.broker.classpath import InstallError
    from govbus.broker.cluster import BrokerError
    from govbus.catalog.rules import CatalogRuleError
    from govbus.catalog.sheets import SheetError
    from govbus.catalog.spec import SpecError
    from govbus.disputes.client import DisputeError
    from govbus.identifiers import IdentifierError
    from govbus.local_postgres import PostgresError
    from govbus.reconcile.desired import DesiredStateError
    from govbus.reconcile.kafka_admin import AdminError
    from govbus.share.requests import ShareError
    from govbus.subscribe.audit import AuditError
    from govbus.subscribe.consumer import SubscribeError
    from producers.publisher import PublishError, RecordsFileError

    return (
        ConfigError,
        InstallError,
        BrokerError,
        PostgresError,
        AdminError,
        KafkaException,
        SpecError,
        CatalogRuleError,
        SheetError,
        IdentifierError,
        FileNotFoundError,
        DesiredStateError,
        SubscribeError,
        AuditError,
        PublishError,
        RecordsFileError,
        ShareError,
        DisputeError,
    )


if __name__ == "__main__":
    sys.exit(main())
