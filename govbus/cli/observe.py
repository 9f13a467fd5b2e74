"""`govbus observe`: a holding department sends its copies of a resource's items for verification.

Exit status: 0 all delivered, 2 some observations dead-lettered (the rest delivered),
1 refused (not a holder) or a delivery failed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from govbus.cli.options import add_encoding_option
from govbus.cli.publish import send_file
from govbus.cli.session import department_session
from govbus.vocabulary.config import Settings
from producers.observe import Observer

__all__ = ["register"]


def _observe(args: argparse.Namespace, settings: Settings) -> int:
    session = department_session(settings, args.department, args.password_file)
    with Observer(session) as obs:
        return send_file(
            obs,
            args.resource,
            args.file,
            "observe",
            f"copies held by {args.department}",
            args.encoding,
        )


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
    p.add_argument(
        "--password-file",
        type=Path,
        help="the department's password (default <state_dir>/secrets/departments/<id>.password)",
    )
    p.set_defaults(handler=_observe)
