"""`govbus consume` (read a resource as a department) and `govbus audit verify`."""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import signal
import sys
from typing import Any

from govbus.broker.access import AccessLogTail
from govbus.broker.cluster import LocalCluster
from govbus.catalog.store import CatalogStore
from govbus.cli.options import add_password_file_option, add_port_option, serve_option
from govbus.cli.session import department_session
from govbus.subscribe.audit import AuditEvent, read_audit, verify_chain
from govbus.subscribe.consumer import PURPOSES, VIEWS, Record, Subscriber
from govbus.subscribe.evidence import check, ship
from govbus.vocabulary.config import Settings
from govbus.vocabulary.errors import UserError
from govbus.vocabulary.spec import CatalogSpec


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)  # exact: money must not become a float
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot show a {type(value).__name__} as JSON")


def _consume(args: argparse.Namespace, settings: Settings) -> int:
    # Earlier versions' schemas decode records producers wrote before the current one; the
    # department's own grants open the conditional resources it was granted.
    history: list[CatalogSpec] = []
    session = department_session(
        settings, args.department, args.password_file, grants="own", history=history
    )
    subscriber = Subscriber(
        session,
        args.resource,
        args.purpose,
        history=history,
        group_suffix=args.group,
        view=args.view,
        verification_status=args.verification_status,
        case_number=args.case_number,
        end_user=args.end_user,
    )

    def show(record: Record) -> None:
        line = {
            "key": record.key,
            "value": record.value,
            "provider": record.provider,
            "resource_code": record.resource_code,
            "catalog_version": record.catalog_version,
            "event_time": record.event_time,
            "trace_id": record.trace_id,
            "partition": record.partition,
            "offset": record.offset,
            "under_verification": record.under_verification,
        }
        print(json.dumps(line, ensure_ascii=False, default=_json_default), flush=True)

    signal.signal(signal.SIGTERM, lambda *_: subscriber.stop())
    serve_option(args.metrics_port)
    count = subscriber.run(show, max_records=args.max, timeout=args.timeout)
    print(f"{count} record(s) of {args.resource} consumed", file=sys.stderr)
    return 0


def _query_line(offset: int, event: AuditEvent) -> str:
    """One lookup or download as the audit chain holds it (keys only as their HMAC)."""
    q = event.query or {}
    keys = q.get("keys_hmac_sha256") or []
    what = (
        f"{len(keys)} key(s) asked, {q.get('found', event.record_count)} found"
        if q.get("kind") == "lookup"
        else f"{event.record_count} row(s), file sha256 {str(q.get('file_sha256', ''))[:12]}…"
    )
    case = f" case {q['case_number']}" if "case_number" in q else ""
    user = f" end user {q['end_user']}" if "end_user" in q else ""
    return (
        f"  {q.get('kind', 'query')} @{offset} {event.window_end.isoformat()} "
        f"{event.department} {event.resource} purpose {event.purpose}{case}{user}: {what}; "
        f"items {', '.join(q.get('items', []))} ({q.get('view', '?')} view)"
        + (f" [{event.chain}]" if event.chain else "")
    )


def _audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    events = read_audit(settings, args.department, settings.naming)
    problems = verify_chain(events)
    for problem in problems:
        print(problem)
    if problems:
        return 1
    per_dept: dict[str, list[int]] = {}
    queries: dict[str, int] = {}
    for _, event in events:
        per_dept.setdefault(event.department, []).append(event.record_count)
        if event.query is not None:
            queries[event.department] = queries.get(event.department, 0) + 1
    for dept, counts in sorted(per_dept.items()):
        asked = f", {queries[dept]} lookup/download query(ies)" if dept in queries else ""
        print(f"OK {dept}: {len(counts)} audit event(s), {sum(counts)} record(s) used{asked}")
    if args.queries:
        for offset, event in events:
            if event.query is not None:
                print(_query_line(offset, event))
    if not per_dept:
        print("OK: no audit events" + (f" of {args.department}" if args.department else ""))
    return 0


def _access(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "ship":
        tail = AccessLogTail(
            LocalCluster(settings).access_logs(), settings.state_dir / "access-offsets.json"
        )
        print(f"{ship(settings, tail)} access aggregate(s) sent to {settings.naming.access_topic}")
        return 0
    if args.since_minutes is not None and args.since_minutes <= 0:
        raise UserError(f"--since-minutes must be positive, got {args.since_minutes}")
    since = (
        dt.datetime.now(dt.UTC) - dt.timedelta(minutes=args.since_minutes)
        if args.since_minutes
        else None
    )
    with CatalogStore.opened(settings) as store:
        spec = store.current()
    found = check(settings, spec, since=since)
    for event in found:
        print(f"{event['article']} candidate: {event['detail']}")
    print(f"{len(found)} read(s) without a declared purpose (written to "
          f"{settings.naming.violations_topic})")  # fmt: skip
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]

    p = sub.add_parser("consume", help="read a resource as a department (JSON lines)")
    p.add_argument("--department", required=True, help="department id (its principal)")
    p.add_argument("--resource", required=True, help="政务信息资源代码")
    p.add_argument("--purpose", required=True, choices=PURPOSES, help="stated purpose of use")
    p.add_argument("--max", type=int, help="stop after this many records")
    p.add_argument("--timeout", type=float, help="stop after this many seconds without a record")
    p.add_argument("--group", default="default", help="consumer group suffix (default: default)")
    p.add_argument(
        "--view",
        choices=VIEWS,
        help="read the resource's public view (article 10: shareable items, masked; no grant)",
    )
    p.add_argument(
        "--verification-status",
        action="store_true",
        help="mark records with an open dispute (article 19) from gov.<code>.status",
    )
    p.add_argument(
        "--case-number",
        help="办件编号: the case this read serves (required under a grant; in the usage audit)",
    )
    p.add_argument(
        "--end-user",
        help="经办人: who in the department asked for the data (required under a grant; audited)",
    )
    add_password_file_option(p)
    add_port_option(p)
    p.set_defaults(handler=_consume)

    audit = sub.add_parser("audit", help="the usage audit trail (article 18)")
    asub = audit.add_subparsers(dest="action", metavar="ACTION", required=True)
    access = sub.add_parser(
        "access", help="broker-side access evidence against the usage audit (article 26(5))"
    )
    xsub = access.add_subparsers(dest="action", metavar="ACTION", required=True)
    xsub.add_parser(
        "ship", help="send the local nodes' new access-log reads, per minute, to govbus.access"
    ).set_defaults(handler=_access)
    p = xsub.add_parser("check", help="reads no audit declares become 26(5) candidates")
    p.add_argument("--since-minutes", type=int, help="only reads of the last N minutes")
    p.set_defaults(handler=_access)

    p = asub.add_parser("verify", help="check the audit hash chains on govbus.audit")
    p.add_argument("--department", help="only this department's chain")
    p.add_argument(
        "--queries", action="store_true", help="also list every lookup and download query"
    )
    p.set_defaults(handler=_audit_verify)
