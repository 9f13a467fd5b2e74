"""`govbus disputes file|ack|resolve|list|show|watch`: article 19 disputes in the terminal.

Acting commands speak as ``--department`` (its own action topic); reading commands read as
``--as`` (default: the data stewards' department), which sees the disputes of the resources it
provides or holds, or all of them for the stewards.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from govbus.cli.options import add_password_file_option
from govbus.cli.session import department_session
from govbus.vocabulary.config import Settings
from stream_apps.disputes.client import DisputeClient, DisputeError
from stream_apps.disputes.rules import OUTCOMES
from stream_apps.disputes.topics import OPERATOR

STATES = ("open", "acknowledged", "resolved", "settled")


def _client(settings: Settings, dept_id: str, password_file: Path | None) -> DisputeClient:
    # Every valid grant: a grantee may file a doubt on a conditional resource, and the rules
    # let each resource's grantees read its disputes.
    session = department_session(settings, dept_id, password_file, grants="all")
    return DisputeClient(session, operator=settings.share_coordinator)


def _file(args: argparse.Namespace, settings: Settings) -> int:
    client = _client(settings, args.department, args.password_file)
    dispute_id = client.file(
        args.resource, args.key, args.reason, item=args.item, evidence=args.evidence
    )
    print(f"filed dispute {dispute_id} on {args.resource} key {args.key}")
    return 0


def _ack(args: argparse.Namespace, settings: Settings) -> int:
    client = _client(settings, args.department, args.password_file)
    client.ack(args.id)
    print(f"acknowledged dispute {args.id}")
    return 0


def _resolve(args: argparse.Namespace, settings: Settings) -> int:
    partition, _, offset = (args.corrected_offset or "").partition(":")
    if args.corrected_offset and not (partition.isdigit() and offset.isdigit()):
        raise DisputeError(  # checked before anything is read from the broker
            f"--corrected-offset {args.corrected_offset!r}: give PARTITION:OFFSET of the "
            "corrected record on the resource topic, e.g. 0:1234 (`govbus publish` prints it)"
        )
    client = _client(settings, args.department, args.password_file)
    corrected = None
    if args.corrected_offset:
        current = client.get(args.id)
        corrected = {
            "topic": settings.naming.resource_topic(current["resource_code"]),
            "partition": int(partition),
            "offset": int(offset),
            "trace_id": args.corrected_trace_id,
        }
    client.resolve(args.id, args.outcome, args.note, corrected_record=corrected)
    print(f"resolved dispute {args.id}: {args.outcome}")
    return 0


def _matches(d: Mapping[str, Any], args: argparse.Namespace, codes: dict[str, str]) -> bool:
    if getattr(args, "state", None) and d["state"] != args.state:
        return False
    if getattr(args, "overdue", False) and not d["overdue"]:
        return False
    dept = getattr(args, "department", None)
    if dept:
        involved = {codes.get(d["provider"]), codes.get(d["holder"] or ""), d["filed_by"]}
        if dept not in involved:
            return False
    return True


def _table(disputes: Iterable[Mapping[str, Any]]) -> list[str]:
    header = ("ID", "RESOURCE", "KEY", "ITEM", "ORIGIN", "STATE", "DUE", "OVERDUE", "V")
    rows = [header] + [
        (
            d["dispute_id"],
            d["resource_code"],
            d["key"],
            d["item"] or "-",
            d["origin"],
            d["state"],
            d["due"],
            "yes" if d["overdue"] else "",
            str(d["version"]),
        )
        for d in disputes
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _codes(client: Any) -> dict[str, str]:
    return {d.code: d.id for d in client.spec.departments}


def _list(args: argparse.Namespace, settings: Settings) -> int:
    client = _client(settings, args.as_, args.password_file)
    codes = _codes(client)
    chosen = [
        d
        for d in sorted(client.disputes(args.resource).values(), key=lambda d: d["opened_at"])
        if _matches(d, args, codes)
    ]
    for line in _table(chosen):
        print(line)
    print(f"{len(chosen)} dispute(s)", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace, settings: Settings) -> int:
    client = _client(settings, args.as_, args.password_file)
    print(json.dumps(client.get(args.id), ensure_ascii=False, indent=2))
    return 0


def watch_line(d: Mapping[str, Any]) -> str:
    last = d["history"][-1] if d["history"] else {"action": "?", "actor": "?"}
    overdue = " OVERDUE" if d["overdue"] else ""
    return (
        f"{d['updated_at']}  {d['dispute_id']} v{d['version']} {d['state']}{overdue}  "
        f"{d['resource_code']} key {d['key']}{' item ' + d['item'] if d['item'] else ''}  "
        f"{last['action']} by {last['actor']}  due {d['due']}"
    )


def _watch(args: argparse.Namespace, settings: Settings) -> int:
    client = _client(settings, args.as_, args.password_file)
    codes = _codes(client)
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    print(f"watching disputes as {args.as_} (Ctrl-C to stop)", file=sys.stderr)
    for d in client.watch(args.resource, from_beginning=args.from_beginning, stop=lambda: stopping):
        if _matches(d, args, codes):
            print(watch_line(d), flush=True)
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]

    top = sub.add_parser("disputes", help="doubtful or wrong data (article 19): act and watch")
    dsub = top.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = dsub.add_parser("file", help="a consumer department files a doubt about a record")
    p.add_argument("resource", help="政务信息资源代码")
    p.add_argument("key", help="the record's one-data-one-source key")
    p.add_argument("--department", required=True, help="the filing department's id")
    p.add_argument("--reason", required=True, help="what is doubtful and why")
    p.add_argument("--item", help="the info item in doubt (default: the whole record)")
    p.add_argument("--evidence", help="a reference to the evidence (document number, URL)")
    add_password_file_option(p)
    p.set_defaults(handler=_file)

    p = dsub.add_parser("ack", help="the provider acknowledges a dispute (verification begins)")
    p.add_argument("id", help="dispute id")
    p.add_argument("--department", required=True, help="the provider's id")
    add_password_file_option(p)
    p.set_defaults(handler=_ack)

    p = dsub.add_parser("resolve", help="the provider resolves an acknowledged dispute")
    p.add_argument("id", help="dispute id")
    p.add_argument("--department", required=True, help="the provider's id")
    p.add_argument("--outcome", required=True, choices=OUTCOMES)
    p.add_argument("--note", required=True, help="what was verified and found")
    p.add_argument(
        "--corrected-offset",
        metavar="PART:OFFSET",
        help="for corrected: where the corrected record is on the resource topic",
    )
    p.add_argument("--corrected-trace-id", help="for corrected: the corrected record's trace id")
    add_password_file_option(p)
    p.set_defaults(handler=_resolve)

    def reader(p: argparse.ArgumentParser, *, filters: bool = True) -> None:
        p.add_argument(
            "--as",
            dest="as_",
            default=OPERATOR,
            metavar="ID",
            help=f"read as this department (default the data stewards, {OPERATOR})",
        )
        if filters:
            p.add_argument("--resource", help="only this resource")
            p.add_argument("--department", help="only disputes involving this department id")
            p.add_argument("--state", choices=STATES)
        add_password_file_option(p)

    p = dsub.add_parser("list", help="the disputes you may read, newest state of each")
    reader(p)
    p.add_argument("--overdue", action="store_true", help="only overdue ones")
    p.set_defaults(handler=_list)

    p = dsub.add_parser("show", help="one dispute: every field and its history")
    p.add_argument("id", help="dispute id")
    reader(p, filters=False)
    p.set_defaults(handler=_show)

    p = dsub.add_parser("watch", help="tail disputes live, one line per new version (Ctrl-C)")
    reader(p)
    p.add_argument("--from-beginning", action="store_true", help="show existing versions first")
    p.set_defaults(handler=_watch)
