"""`govbus lookup serve` (联机查询) and `govbus download` (部门批量下载), article 16.

`lookup serve` loads aiohttp (about 0.5 s of imports, ``python -X importtime``), which no other
command needs: the service's modules are imported when the command runs, not when the command
line starts (docs/architecture.md, "Imports deferred on purpose").
"""

from __future__ import annotations

import argparse
import importlib
import socket
import sys
from pathlib import Path

from govbus.catalog.store import CatalogStore
from govbus.cli.options import add_password_file_option
from govbus.cli.session import department_session
from govbus.lookup.download import ENCODINGS, FORMATS, download
from govbus.lookup.request import PURPOSES
from govbus.share.requests import ShareRequests
from govbus.vocabulary.config import Settings
from govbus.vocabulary.errors import UserError
from govbus.vocabulary.spec import CatalogSpec

DEFAULT_PORT = 8480


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    if args.rate <= 0 or args.burst < 1:
        raise UserError("--rate must be above 0 and --burst at least 1")
    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port}: not a TCP port (1-65535)")
    advertised = (
        args.advertise or f"{args.addr if args.addr != '0.0.0.0' else socket.getfqdn()}:{args.port}"
    )
    name = args.instance or advertised
    # aiohttp only for this command (see the module docstring).
    runner = importlib.import_module("govbus.lookup.runner")
    service = importlib.import_module("govbus.lookup.service")
    try:
        runner.serve(
            settings,
            args.addr,
            args.port,
            name=name,
            advertised=advertised,
            limits=service.Limits(rate=args.rate, burst=args.burst),
        )
    except OSError as exc:  # the port is taken or not ours to bind
        raise UserError(f"cannot serve on {args.addr}:{args.port}: {exc.strerror or exc}") from None
    return 0


def _download(args: argparse.Namespace, settings: Settings) -> int:
    history: list[CatalogSpec] = []
    session = department_session(settings, args.department, args.password_file, history=history)
    dept = session.spec.department_by_id(args.department)
    grants = []
    if dept is not None:
        with CatalogStore.opened(settings) as store:
            share = ShareRequests(store, coordinator=settings.share_coordinator)
            grants = share.valid_grants(department=dept.code)
    suffix = "csv" if args.format == "csv" else args.format
    output = args.output or Path(f"{args.resource.replace('/', '_')}.{suffix}")
    manifest = download(
        session,
        args.resource,
        args.purpose,
        grants,
        output,
        fmt=args.format,
        encoding=args.encoding,
        history=history,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
        workers=args.workers,
    )
    offsets = ", ".join(f"{p}:{a}-{b}" for p, (a, b) in manifest.offsets.items())
    print(
        f"{manifest.row_count} row(s) of {manifest.resource} ({manifest.view} view, "
        f"{len(manifest.items)} item(s)) as of offsets {offsets} written to {output} "
        f"(sha256 {manifest.sha256}); manifest {output}.manifest.json; audit event "
        f"{manifest.audit_event_hash[:12]}…"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    lookup = sub.add_parser("lookup", help="online lookup by key (联机查询, article 16)")
    lsub = lookup.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = lsub.add_parser("serve", help="serve lookups over HTTP (one instance; run several)")
    p.add_argument("--addr", default="127.0.0.1", help="address to bind (127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port ({DEFAULT_PORT})")
    p.add_argument(
        "--advertise", help="host:port the other instances forward to (default: addr:port)"
    )
    p.add_argument("--instance", help="this instance's name in the audit chains (default: addr)")
    p.add_argument("--rate", type=float, default=200.0, help="lookups/s per department (200)")
    p.add_argument("--burst", type=float, default=400.0, help="burst per department (400)")
    p.set_defaults(handler=_serve)

    p = sub.add_parser(
        "download", help="a resource's current state as a file (部门批量下载, article 16)"
    )
    p.add_argument("resource", help="政务信息资源代码")
    p.add_argument("--department", required=True, help="the downloading department's id")
    p.add_argument("--purpose", required=True, choices=PURPOSES, help="stated purpose of use")
    p.add_argument("--format", default="csv", choices=FORMATS, help="csv (default), xlsx, parquet")
    p.add_argument(
        "--encoding",
        default="utf-8-sig",
        choices=ENCODINGS,
        help="CSV encoding: utf-8-sig (UTF-8 with BOM, default) or gb18030; Excel on a Chinese "
        "Windows opens both",
    )
    p.add_argument("--output", type=Path, help="file to write (default: <resource>.<format>)")
    p.add_argument(
        "--workers",
        type=int,
        help="processes decoding the records of a large snapshot (default: one per core, up "
        "to 4; 1: decode in this process)",
    )
    add_password_file_option(p)
    p.set_defaults(handler=_download)
