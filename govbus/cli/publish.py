"""`govbus publish`: a providing department publishes a records file of one resource.

Exit status: 0 all records delivered, 2 some records dead-lettered (the rest delivered),
1 publishing refused or a delivery failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from govbus.cli.options import add_encoding_option, add_port_option, serve_option
from govbus.cli.session import department_session
from govbus.vocabulary.config import Settings
from producers.publisher import Publisher, PublishError, read_records

if TYPE_CHECKING:  # the CLI imports Kafka clients only when a command runs
    from producers.publisher import Publisher

__all__ = ["register"]


def send_file(
    sender: Publisher,
    resource_code: str,
    path: Path,
    send_name: str,
    heading: str,
    encoding: str | None = None,
) -> int:
    """Send a records file with ``sender.<send_name>`` (publish, observe) and print the report.

    Shared by `govbus publish` and `govbus observe`; returns the exit status. ``encoding``
    None detects UTF-8 or GB18030/GBK (govbus/vocabulary/textfiles.py).
    """

    resource = sender.resource(resource_code)  # refuses a wrong department before reading
    # Checks the whole file (exists, is text in its encoding) before anything is produced.
    records = (record for _, record in read_records(path, resource, encoding=encoding))
    send = getattr(sender, send_name)
    try:
        report = send(resource.code, records, source=f"file:{path.name}")
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


def _publish(args: argparse.Namespace, settings: Settings) -> int:
    session = department_session(settings, args.department, args.password_file)
    serve_option(args.metrics_port)
    with Publisher(session) as publisher:
        return send_file(
            publisher,
            args.resource,
            args.file,
            "publish",
            f"(catalog version {session.catalog_version})",
            args.encoding,
        )


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
    p.add_argument(
        "--password-file",
        type=Path,
        help="the department's password (default <state_dir>/secrets/departments/<id>.password)",
    )
    add_port_option(p)
    p.set_defaults(handler=_publish)
