"""`govbus agent source|sink|check`: the front-end agent of a department's database (article 16).

``source`` publishes changed rows of the mapped tables of the department's front-end database
(前置库) as its resources; ``sink`` keeps the resources it may read in tables there; ``check``
checks the mapping against the catalog and the database and publishes nothing. Both agents
run until stopped (SIGTERM or Ctrl-C finish the current batch), with ``/health`` and
``/metrics`` on ``--port``; ``--once`` (source) and ``--timeout`` (sink) end them when there
is nothing more to do. The mapping file format is docs/agent.md.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from connectors.database import open_database
from connectors.mapping import MappingError, MappingFile, check_sinks, load_mapping
from connectors.service import Health, serve
from connectors.sink import SinkAgent
from connectors.source import SourceAgent, prepare_sources
from govbus.catalog.store import CatalogStore
from govbus.cli.options import add_encoding_option, add_password_file_option
from govbus.cli.session import department_session
from govbus.vocabulary.config import Settings
from govbus.vocabulary.errors import UserError
from govbus.vocabulary.session import DepartmentSession
from govbus.vocabulary.spec import CatalogSpec


def _mapping(args: argparse.Namespace) -> MappingFile:
    mapping = load_mapping(args.mapping, encoding=args.encoding)
    if mapping.department and mapping.department != args.department:
        raise MappingError(
            mapping.where,
            f"the mapping is department {mapping.department}'s, not {args.department}'s",
        )
    return mapping


def _provider_code(session: DepartmentSession) -> str:
    return session.department(UserError, "running a front-end agent").code


def _source(args: argparse.Namespace, settings: Settings) -> int:
    mapping = _mapping(args)
    session = department_session(settings, args.department, args.password_file)
    engine = open_database(args.database or mapping.database, f"mapping {mapping.path}")
    try:
        prepared = prepare_sources(engine, mapping, session.spec, _provider_code(session))
        health = Health("source", 3 * mapping.poll_interval + 30)
        agent = SourceAgent(
            session, engine, mapping, prepared, full_resync=args.full_resync, health=health
        )
        if args.port is not None:
            serve(health, args.port)
        signal.signal(signal.SIGTERM, lambda *_: agent.stopping.set())
        try:
            total = agent.run(once=args.once)
        finally:
            agent.close()
    finally:
        engine.dispose()
    print(
        f"source {args.department}: {total.read} row(s) read, {total.published} published, "
        f"{total.deleted} deleted, {total.dead_lettered} dead-lettered",
        file=sys.stderr,
    )
    for letter in total.letters[:10]:
        print(f"  dead-lettered: {letter.message}", file=sys.stderr)
    return 2 if total.dead_lettered else 0


def _sink(args: argparse.Namespace, settings: Settings) -> int:
    mapping = _mapping(args)
    history: list[CatalogSpec] = []
    session = department_session(
        settings, args.department, args.password_file, grants="own", history=history
    )
    engine = open_database(args.database or mapping.database, f"mapping {mapping.path}")
    try:
        health = Health("sink", None)
        agent = SinkAgent(session, engine, mapping, history=history, health=health)
        for table, added in agent.added.items():
            if added:
                print(f"sink table {table}: added column(s) {', '.join(added)}", file=sys.stderr)
        if args.port is not None:
            serve(health, args.port)
        signal.signal(signal.SIGTERM, lambda *_: agent.stop())
        written = agent.run(timeout=args.timeout)
    finally:
        engine.dispose()
    for table, count in written.items():
        print(f"sink {args.department}: {count} row(s) written to {table}", file=sys.stderr)
    return 0


def _check(args: argparse.Namespace, settings: Settings) -> int:
    mapping = _mapping(args)
    spec, code = department_spec(settings, args.department)
    engine = open_database(args.database or mapping.database, f"mapping {mapping.path}")
    try:
        if mapping.sources:
            prepare_sources(engine, mapping, spec, code)
        if mapping.sinks:
            check_sinks(mapping, spec)
    finally:
        engine.dispose()
    print(
        f"{mapping.path}: {len(mapping.sources)} source table(s) and {len(mapping.sinks)} sink "
        "table(s) fit the catalog and the database"
    )
    return 0


def department_spec(settings: Settings, department_id: str) -> tuple[CatalogSpec, str]:
    """The current catalog and the department's 统一社会信用代码 (no password needed)."""
    with CatalogStore.opened(settings) as store:
        spec = store.current()
    dept = spec.department_by_id(department_id)
    if dept is None:
        raise UserError(
            f"department {department_id!r} is not registered in the catalog; register it "
            "before running a front-end agent"
        )
    return spec, dept.code


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--department", required=True, help="department id (its principal)")
    p.add_argument("--mapping", required=True, type=Path, help="the mapping file (YAML)")
    p.add_argument(
        "--database",
        metavar="URL",
        help="SQLAlchemy URL of the front-end database (default: 'database' in the mapping)",
    )
    add_encoding_option(p)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    agent = sub.add_parser(
        "agent", help="front-end agent (前置机): a department's database to and from the bus"
    )
    asub = agent.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = asub.add_parser("source", help="publish changed rows of front-end tables")
    _common(p)
    add_password_file_option(p)
    p.add_argument("--once", action="store_true", help="stop when no change is left")
    p.add_argument("--full-resync", action="store_true", help="publish every row again, then go on")
    p.add_argument("--port", type=int, help="serve /health and /metrics on this port")
    p.set_defaults(handler=_source)

    p = asub.add_parser("sink", help="keep the resources the department reads in its tables")
    _common(p)
    add_password_file_option(p)
    p.add_argument("--timeout", type=float, help="stop after this many seconds without a record")
    p.add_argument("--port", type=int, help="serve /health and /metrics on this port")
    p.set_defaults(handler=_sink)

    p = asub.add_parser("check", help="check a mapping against the catalog and the database")
    _common(p)
    p.set_defaults(handler=_check)
