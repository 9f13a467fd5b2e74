"""The `govbus` command: one entry point, a subcommand per job, errors without tracebacks."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from confluent_kafka import KafkaError, KafkaException

from govbus import demo
from govbus.broker.classpath import write_lock
from govbus.broker.cluster import LocalCluster
from govbus.cli.agent import register as register_agent
from govbus.cli.catalog import register as register_catalog
from govbus.cli.disputes import register as register_disputes
from govbus.cli.publish import register as register_publish
from govbus.cli.reconcile import register as register_reconcile
from govbus.cli.share import register as register_share
from govbus.cli.stream_apps import register as register_stream_apps
from govbus.cli.subscribe import register as register_subscribe
from govbus.cli.supervise import register as register_supervise
from govbus.cli.web import register as register_web
from govbus.local_postgres import LocalPostgres
from govbus.monitor.exporter import serve_until_stopped
from govbus.vocabulary.config import Settings, load_settings
from govbus.vocabulary.errors import GovbusError, UserError

Handler = Callable[[argparse.Namespace, Settings], int]


def _broker_install(args: argparse.Namespace, settings: Settings) -> int:
    cp = LocalCluster(settings).install()
    print(f"Kafka {cp.version} broker classpath verified in {cp.libs}")
    return 0


def _broker_lock(args: argparse.Namespace, settings: Settings) -> int:
    version = args.kafka_version or settings.kafka_version
    path = write_lock(version, settings.cache_dir, settings.maven_repo)
    print(f"wrote {path}: review it, then commit it")
    return 0


def _print_status(settings: Settings) -> bool:
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
    LocalCluster(settings).start(nodes=args.nodes, timeout=args.timeout)
    _print_status(settings)
    return 0


def _broker_stop(args: argparse.Namespace, settings: Settings) -> int:
    LocalCluster(settings).stop()
    print("local cluster stopped")
    return 0


def _broker_status(args: argparse.Namespace, settings: Settings) -> int:
    return 0 if _print_status(settings) else 3


def _broker_reset(args: argparse.Namespace, settings: Settings) -> int:
    if not args.yes:
        raise UserError(
            "refusing to delete the local cluster's topics and data without --yes "
            "(`govbus broker reset --yes` deletes them)"
        )
    LocalCluster(settings).reset()
    print("local cluster stopped and its data deleted")
    return 0


def _postgres(args: argparse.Namespace, settings: Settings) -> int:
    pg = LocalPostgres(settings.state_dir, port=args.port)
    if args.action == "start":
        databases = args.database or ["govbus_test"]  # append's default cannot be a list
        pg.start(tuple(databases))
        for name in databases:
            print(pg.dsn(name))
    elif args.action == "stop":
        pg.stop()
        print("local PostgreSQL stopped")
    else:
        print("up" if pg.running() else "down")
        return 0 if pg.running() else 3
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.bootstrap_servers:
        LocalCluster(settings).start()
    demo.run(settings)
    return 0


def _exporter(args: argparse.Namespace, settings: Settings) -> int:
    port = settings.metrics_port if args.port is None else args.port
    try:
        serve_until_stopped(settings, port, args.addr)
    except OSError as exc:  # the port is taken or not ours to bind; the message says which
        raise UserError(str(exc)) from None
    return 0


class UsageError(UserError):
    """A command line argparse refuses (unknown flag, missing argument, invalid choice)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 1 like every other error (2 is
    `govbus publish`'s "some records dead-lettered"); ``--help`` shows the usage."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.partition(" ")[2]  # "govbus catalog export" -> "catalog export"
        where = f"{command}: " if command else ""
        raise UsageError(f"{where}{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    lock = bsub.add_parser("lock", help="maintainers: pin a Kafka version's jar digests")
    lock.add_argument("--kafka-version", help="the version to pin (default: kafka_version)")
    lock.set_defaults(handler=_broker_lock)

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

    register_catalog(sub)
    register_reconcile(sub)
    register_publish(sub)
    register_subscribe(sub)
    register_share(sub)
    register_disputes(sub)
    register_stream_apps(sub)
    register_supervise(sub)
    register_web(sub)
    register_agent(sub)

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
    """Run a command; an error a user can cause is one line on stderr and exit status 1.

    ``GovbusError`` (govbus/vocabulary/errors.py) is that kind of error, and so are a file the
    user named that cannot be opened and a Kafka client error; anything else is a bug and keeps
    its traceback. ``GOVBUS_DEBUG=1`` shows the traceback of every error. Ctrl-C exits 130.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"govbus: error: {exc}", file=sys.stderr)
        return 1
    _configure_logging()
    try:
        settings = load_settings(args.config, overrides={"state_dir": args.state_dir})
        handler: Handler = args.handler
        return handler(args, settings)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `govbus ... | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        message = _error_message(exc)
        if message is None or os.environ.get("GOVBUS_DEBUG"):
            raise
        print(f"govbus: error: {message}", file=sys.stderr)
        return 1


# OSErrors about a path: a file the user named (records, catalog, --password-file, output).
_PATH_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


def _error_message(exc: Exception) -> str | None:
    """The line to print for an error a user can cause; None for a bug (keep the traceback)."""
    if isinstance(exc, GovbusError):
        return str(exc) or type(exc).__name__
    if isinstance(exc, _PATH_ERRORS) and exc.filename is not None:
        names = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        return f"{names}: {exc.strerror or exc}"

    if isinstance(exc, KafkaException):  # a client call no govbus code turned into a sentence
        err = exc.args[0] if exc.args else None
        text = f"{err.name()}: {err.str()}" if isinstance(err, KafkaError) else str(exc)
        hint = "is the broker up and bootstrap_servers right? `govbus broker status`"
        return f"Kafka: {text} ({hint})"
    return None


def _configure_logging() -> None:
    """Warnings and errors to stderr; librdkafka's connection chatter only with GOVBUS_DEBUG=1.

    The client errors that matter (refusals, failed deliveries) reach the user as exceptions;
    librdkafka's own log would repeat each of them once per retry.
    """

    debug = bool(os.environ.get("GOVBUS_DEBUG"))
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING, format="%(name)s: %(message)s"
    )
    if not debug:
        logging.getLogger("govbus.librdkafka").setLevel(logging.CRITICAL)


if __name__ == "__main__":
    sys.exit(main())
