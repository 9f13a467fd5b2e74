"""Options several commands share."""

from __future__ import annotations

import argparse
from pathlib import Path

from govbus.vocabulary.errors import UserError
from govbus.vocabulary.metrics import serve


def add_encoding_option(parser: argparse.ArgumentParser) -> None:
    """``--encoding`` of a command that reads a text file the user gives (records, CSV)."""
    parser.add_argument(
        "--encoding",
        metavar="NAME",
        help="the file's text encoding, e.g. gb18030 or big5 (default: detect UTF-8, with or "
        "without BOM, or GB18030/GBK as Excel saves CSV on a Chinese Windows)",
    )


def add_port_option(parser: argparse.ArgumentParser) -> None:
    """``--metrics-port`` of a long-running command (see ``serve_option``)."""
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics on this port while running (default: off)",
    )


def serve_option(port: int | None) -> None:
    """Serve the metrics registry if ``--metrics-port`` was given; the daemon thread ends with
    the process."""
    if port is not None:
        try:
            serve(port)
        except OSError as exc:  # the port is taken or not ours to bind; the message says which
            raise UserError(str(exc)) from None


def add_password_file_option(parser: argparse.ArgumentParser) -> None:
    """``--password-file`` of a command that acts as a department."""
    parser.add_argument(
        "--password-file",
        type=Path,
        help="the department's password (default <state_dir>/secrets/departments/<id>.password)",
    )
