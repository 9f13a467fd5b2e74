"""`govbus publish` and `govbus observe`: a department sends a records file of one resource.

`publish`: the providing department publishes the resource's records. `observe`: a holding
department sends its copies of some of the resource's items for verification.

Exit status: 0 all records delivered, 2 some records dead-lettered (the rest delivered),
1 refused (not the provider, not a holder) or a delivery failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from govbus.cli.options import (
    add_encoding_option,
    add_password_file_option,
    add_port_option,
    serve_option,
)
from govbus.cli.session import department_session
from govbus.vocabulary.config import Settings
from producers.observe import Observer
from producers.publisher import Publisher, PublishError, read_records

__all__ = ["register"]


def send_file(
    sender: Publisher,
    resource_code: str,
    path: Path,
    send_name: str,
    heading: str,
    encoding: str | None = None,
    workers: int = 1,
) -> int:
    """Send a records file with ``sender.<send_name>`` (publish, observe) and print the report.

    Shared by `govbus publish` and `govbus observe`; returns the exit status. ``encoding``
    None detects UTF-8 or GB18030/GBK (govbus/vocabulary/textfiles.py).
    """

    resource = sender.resource(resource_code)  # refuses a wrong department before reading
    # Checks the whole file (exists, is text in its encoding) before anything is produced.
    records = (record for _, record in read_records(path, resource, encoding=encoding))
    send = getattr(sender, send_name)
    extra = {"workers": workers} if workers > 1 else {}
    try:
        report = send(resource.code, records, source=f"file:{path.name}", **extra)
    except PublishError as exc:
        if exc.report is not None:
            for failure in exc.report.failed:
                where = f"record {failure.position}" if failure.position else "record"
                print(f"{where}: not delivered to {failure.topic}: {failure.reason}")
        print(f"govbus: error: {exc}", file=sys.stderr)
        return 1
    print(f"resource {resource.code} {resource.name} {heading}")
    print(f"delivered {report.delivered}")
    print(f"dead-lettered {report.dead_lettered_records} (to topic {sender.dlq})")
    for error in report.dead_lettered:
        print(f"  {error.message}")
    return 2 if report.dead_lettered else 0


def _send(args: argparse.Namespace, settings: Settings) -> int:
    """`publish` as the provider, or `observe` as a holder (``args.kind``)."""
    session = department_session(settings, args.department, args.password_file)
    serve_option(args.metrics_port)
    if args.kind == "publish":
        sender, heading = Publisher(session), f"(catalog version {session.catalog_version})"
    else:
        sender, heading = Observer(session), f"copies held by {args.department}"
    with sender:
        return send_file(
            sender,
            args.resource,
            args.file,
            args.kind,
            heading,
            args.encoding,
            getattr(args, "workers", 1),
        )


def _workers(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1, got {text!r}")
    return n


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "publish",
        help="publish a resource's records as its providing department",
        description=(
            "Validate each record against the catalog and publish it to the resource's topic; "
            "invalid records go to the department's dead-letter topic. Exit status 0: all "
            "delivered, 2: some dead-lettered, 1: refused or a delivery failed."
        ),
    )
    p.add_argument("--department", required=True, help="department id (its principal)")
    p.add_argument("--resource", required=True, help="政务信息资源代码")
    p.add_argument(
        "file",
        type=Path,
        metavar="FILE",
        help="records: .jsonl (one JSON object per line) or .csv (header of item codes)",
    )
    add_encoding_option(p)
    add_password_file_option(p)
    add_port_option(p)
    p.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="validate and encode in N processes (records of one key stay in one, in order); "
        "default 1",
    )
    p.set_defaults(handler=_send, kind="publish")

    p = sub.add_parser(
        "observe",
        help="send a holder department's copies of a resource's items for verification",
        description=(
            "Validate each copy (only the items the catalog says the department holds, plus the "
            "key items) and send it to the resource's observation topic, where the verification "
            "app compares it with the provider's record. Exit status 0: all delivered, 2: some "
            "dead-lettered, 1: refused or a delivery failed."
        ),
    )
    p.add_argument("resource", metavar="RESOURCE", help="政务信息资源代码")
    p.add_argument(
        "file",
        type=Path,
        metavar="FILE",
        help="copies: .jsonl (one JSON object per line) or .csv (header of item codes)",
    )
    add_encoding_option(p)
    p.add_argument("--department", required=True, help="the holding department's id")
    add_password_file_option(p)
    add_port_option(p)
    p.set_defaults(handler=_send, kind="observe")
