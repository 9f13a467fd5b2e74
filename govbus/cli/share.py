"""`govbus request | requests | approve | deny | revoke | negotiate | escalate`.

Actors are department ids (``--actor``); the coordinator is the ``share_coordinator`` setting.
Approvals and revocations reach the broker with the next `govbus apply`.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence

from govbus.catalog.outbox import OutboxRelay
from govbus.catalog.store import CatalogStore
from govbus.share.requests import (
    STATES,
    ShareError,
    ShareEvent,
    ShareGrant,
    ShareRequest,
    ShareRequests,
    ShareStep,
    level_name,
)
from govbus.subscribe.consumer import PURPOSES
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.clock import CHINA_TZ, china_day
from govbus.vocabulary.config import Settings


def service(settings: Settings) -> ShareRequests:
    return ShareRequests(
        CatalogStore.for_settings(settings), coordinator=settings.share_coordinator
    )


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-12-31") from None


def _items(values: Sequence[str] | None) -> list[str]:
    """``--item a --item b`` or ``--item a,b``."""
    return [code.strip() for value in values or () for code in value.split(",") if code.strip()]


class _Names:
    """Department ids and resource names of the current catalog, for output."""

    def __init__(self, svc: ShareRequests) -> None:
        spec = svc.store.current()
        self.ids = {d.code: d.id for d in spec.departments}
        self.resources = {r.code: r.name for r in spec.resources}

    def dept(self, code: str) -> str:
        return self.ids.get(code, code)

    def resource(self, code: str) -> str:
        name = self.resources.get(code)
        return f"{code} {name}" if name else code


def _when(at: dt.datetime | None) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ") if at else "-"


def _until(expires_at: dt.datetime) -> str:
    """A grant's end in China time: "the end of 2026-12-31" when it ends at midnight."""
    local = expires_at.astimezone(CHINA_TZ)
    if local.time() == dt.time():
        return f"the end of {local.date() - dt.timedelta(days=1)} (China time)"
    return f"{local:%Y-%m-%d %H:%M} (China time)"


def _due(request: ShareRequest) -> str:
    return f"{request.due}" + ("" if request.due_certain else "?")


def _step(step: ShareStep | None) -> str:
    return f"{step.level}:{step.state}" if step else "-"


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _uncertain_note(requests: Sequence[ShareRequest]) -> None:
    reasons = {r.due_reason for r in requests if not r.due_certain and r.due_reason}
    for reason in sorted(reasons):
        print(f"? uncertain due day: {reason}")


def _event_line(event: ShareEvent) -> str:
    grant = f" grant {event.grant}" if event.grant else ""
    detail = ", ".join(f"{k}={v}" for k, v in event.detail.items() if v not in (None, "", []))
    return f"{_when(event.at)}  {event.kind:<18} by {event.actor}{grant}" + (
        f"  ({detail})" if detail else ""
    )


# --- commands -----------------------------------------------------------------------------


def _request(args: argparse.Namespace, settings: Settings) -> int:
    svc = service(settings)
    request = svc.submit(
        args.department,
        args.resource,
        args.purpose,
        args.duty,
        args.until,
        _items(args.item),
        actor=args.department,
    )
    names = _Names(svc)
    what = names.resource(request.resource)
    provider = names.dept(request.provider)
    if request.state == "not-shared":
        step = request.step
        assert step is not None  # a not-shared request opens its negotiation
        print(
            f"request {request.id}: {what} is not shared (不予共享); the request is recorded and "
            f"negotiation step {step.id} is open between {step.owner}"
        )
        return 0
    scope = ", ".join(request.items) if request.items else "all items"
    print(
        f"request {request.id}: {args.department} applies for {what} ({scope}) from {provider}, "
        f"purpose {request.purpose}, until {request.valid_until}"
    )
    print(f"the provider answers by {request.due} (10 working days)")
    _uncertain_note([request])
    return 0


def _requests(args: argparse.Namespace, settings: Settings) -> int:
    svc = service(settings)
    if args.relay:
        return _relay(svc, settings)
    if args.sweep:
        result = svc.sweep()
        overdue = ", ".join(map(str, result.overdue)) or "none"
        expired = ", ".join(map(str, result.expired)) or "none"
        print(f"sweep: requests newly overdue: {overdue}; grants expired: {expired}")
        return 0
    if args.show is not None:
        return _show(svc, args.show)
    if args.grant is not None:
        return _show_grant(svc, args.grant)
    names = _Names(svc)
    if args.deadlines:
        near = svc.deadlines(within=args.within)
        if not near:
            print(f"no pending request is due within {args.within} working day(s) or overdue")
            return 0
        today = china_day(dt.datetime.now(dt.UTC))
        rows = [["ID", "DEPARTMENT", "PROVIDER", "DUE", "LEFT", "RESOURCE"]]
        for request, left in near:
            if request.overdue_on(today):
                shown = f"OVERDUE {-left} working day(s)" if left < 0 else "OVERDUE"
            else:
                shown = f"{left} working day(s)"
            rows.append(
                [
                    str(request.id),
                    names.dept(request.department),
                    names.dept(request.provider),
                    _due(request),
                    shown,
                    names.resource(request.resource),
                ]
            )
        _table(rows)
        _uncertain_note([r for r, _ in near])
        return 0
    found = svc.list_requests(
        department=args.department,
        provider=args.provider,
        state=args.state,
        due_before=args.due_before,
        overdue=True if args.overdue else None,
    )
    if not found:
        print("no share requests match")
        return 0
    today = china_day(dt.datetime.now(dt.UTC))
    rows = [["ID", "STATE", "DEPARTMENT", "PROVIDER", "DUE", "STEP", "RESOURCE"]]
    for r in found:
        state = "OVERDUE" if r.overdue_on(today) else r.state
        rows.append(
            [
                str(r.id),
                state,
                names.dept(r.department),
                names.dept(r.provider),
                _due(r),
                _step(r.step),
                names.resource(r.resource),
            ]
        )
    _table(rows)
    _uncertain_note(found)
    return 0


def _relay(svc: ShareRequests, settings: Settings) -> int:
    share_topic = settings.naming.share_topic
    topics = kafka_clients.admin_client(settings).list_topics(timeout=30).topics
    if share_topic not in topics:
        raise ShareError(
            f"topic {share_topic} does not exist: run `govbus apply` (the reconciler creates it)"
        )
    relay = OutboxRelay.for_settings(svc.store, settings, topic=share_topic)
    try:
        sent = relay.run_all()
    finally:
        relay.close()
    print(f"relayed {sent} share-request event(s) to {share_topic}")
    return 0


def _show(svc: ShareRequests, request_id: int) -> int:
    names = _Names(svc)
    r = svc.request(request_id)
    print(f"request {r.id}: {r.state}")
    print(f"  department  {names.dept(r.department)} ({r.department})")
    print(f"  resource    {names.resource(r.resource)}")
    print(f"  provider    {names.dept(r.provider)} ({r.provider})")
    print(f"  items       {', '.join(r.items) if r.items else 'all'}")
    print(f"  purpose     {r.purpose}")
    print(f"  duty        {r.duty}")
    print(f"  until       {r.valid_until}")
    print(f"  submitted   {_when(r.submitted_at)} by {r.submitted_by}")
    print(f"  due         {_due(r)}" + ("" if r.due_certain else f"  ({r.due_reason})"))
    if r.answered_at:
        print(
            f"  answered    {_when(r.answered_at)} by {r.answered_by}, after "
            f"{r.answer_workdays} working day(s)"
        )
    if r.deny_reason:
        print(f"  reason      {r.deny_reason}")
    grant = svc.grant_of(r.id)
    if grant is not None:
        print(f"  grant       {_grant_line(grant)}")
    for step in svc.steps(r.id):
        closed = f", closed {_when(step.closed_at)} by {step.closed_by}" if step.closed_at else ""
        outcome = f": {step.outcome}" if step.outcome else ""
        print(
            f"  step {step.id}  {level_name(step.level)} {step.state}, led by {step.owner}, "
            f"opened {_when(step.opened_at)}{closed}{outcome}"
        )
    print("history:")
    for event in svc.history(r.id):
        print(f"  {_event_line(event)}")
    return 0


def _grant_line(grant: ShareGrant) -> str:
    now = dt.datetime.now(dt.UTC)
    if grant.revoked_at:
        status = f"revoked {_when(grant.revoked_at)} by {grant.revoked_by}: {grant.revoke_reason}"
    elif grant.expires_at <= now:
        status = "expired"
    else:
        status = "valid"
    items = ", ".join(grant.items) if grant.items else "all items"
    return f"{grant.id} ({items}) until {_until(grant.expires_at)}, {status}"


def _show_grant(svc: ShareRequests, grant_id: int) -> int:
    grant = svc.grant(grant_id)
    print(f"grant {_grant_line(grant)}; request {grant.request}")
    for event in svc.grant_history(grant_id):
        print(f"  {_event_line(event)}")
    return 0


def _approve(args: argparse.Namespace, settings: Settings) -> int:
    svc = service(settings)
    items = _items(args.item) or None
    grant = svc.approve(args.request, args.actor, args.until, items)
    names = _Names(svc)
    print(
        f"grant {grant.id}: {names.dept(grant.department)} may read "
        f"{names.resource(grant.resource)} until {_until(grant.expires_at)} "
        f"(request {grant.request} approved)"
    )
    print("run `govbus apply` to give the department the broker's READ ACL")
    return 0


def _deny(args: argparse.Namespace, settings: Settings) -> int:
    request = service(settings).deny(args.request, args.actor, args.reason)
    print(f"request {request.id} denied by {args.actor}: {request.deny_reason}")
    print(f"the department may ask for negotiation: `govbus negotiate {request.id} --actor ...`")
    return 0


def _revoke(args: argparse.Namespace, settings: Settings) -> int:
    grant = service(settings).revoke(args.grant, args.actor, args.reason)
    print(f"grant {grant.id} revoked by {grant.revoked_by}: {grant.revoke_reason}")
    print("run `govbus apply` to remove the broker's READ ACL")
    return 0


def _negotiate(args: argparse.Namespace, settings: Settings) -> int:
    svc = service(settings)
    if args.settle is not None:
        if args.request is None:
            raise ShareError("name the request whose open step is settled (its id)")
        step = svc.settle(args.request, args.actor, args.settle, agreed=args.agreed)
        result = "settled (agreed)" if step.state == "settled" else "failed (no agreement)"
        print(f"request {step.request}: {level_name(step.level)} step {step.id} {result}")
        if step.state == "settled":
            print(f"the provider may now approve it: `govbus approve {step.request} --actor ...`")
        else:
            print(f"escalate it: `govbus escalate {step.request} --actor ... --note ...`")
        return 0
    if args.request is None and not (args.resource and args.department):
        raise ShareError("name the request: its id, or --resource and --department")
    step = svc.negotiate(
        args.request,
        resource_code=args.resource,
        department=args.department,
        actor=args.actor,
        note=args.note or "",
    )
    print(
        f"request {step.request}: {level_name(step.level)} step {step.id} opened between "
        f"{step.owner}"
    )
    return 0


def _escalate(args: argparse.Namespace, settings: Settings) -> int:
    step = service(settings).escalate(args.request, args.actor, args.note)
    print(
        f"request {step.request}: escalated to {level_name(step.level)} step {step.id}, "
        f"led by {step.owner}"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]

    p = sub.add_parser("request", help="apply for a conditionally shared resource (article 17)")
    p.add_argument("resource", help="政务信息资源代码")
    p.add_argument("--department", required=True, help="the applying department's id")
    p.add_argument("--purpose", required=True, choices=PURPOSES, help="use the catalog allows")
    p.add_argument("--duty", required=True, help="the duty (履行职责) the data is needed for")
    p.add_argument("--until", required=True, type=_date, help="validity needed, e.g. 2026-12-31")
    p.add_argument("--item", action="append", help="only these info items (repeat, or a,b)")
    p.set_defaults(handler=_request)

    p = sub.add_parser("requests", help="list share requests; the operator's deadline view")
    p.add_argument("--department", help="requests of this department (id or code)")
    p.add_argument("--provider", help="requests to this provider (id or code)")
    p.add_argument("--state", choices=STATES)
    p.add_argument("--due-before", type=_date, help="due strictly before this day")
    p.add_argument("--overdue", action="store_true", help="only unanswered past their due day")
    p.add_argument(
        "--deadlines", action="store_true", help="pending requests near or past their due day"
    )
    p.add_argument("--within", type=int, default=3, help="with --deadlines: working days ahead (3)")
    p.add_argument("--show", type=int, metavar="ID", help="one request in full, with history")
    p.add_argument("--grant", type=int, metavar="ID", help="one grant with its full history")
    p.add_argument(
        "--sweep", action="store_true", help="record overdue requests and expired grants"
    )
    p.add_argument(
        "--relay", action="store_true", help="publish pending share-request events to Kafka"
    )
    p.set_defaults(handler=_requests)

    p = sub.add_parser("approve", help="the provider grants a share request")
    p.add_argument("request", type=int)
    p.add_argument("--actor", required=True, help="the provider's department id")
    p.add_argument("--until", type=_date, help="grant until this day (default: as requested)")
    p.add_argument("--item", action="append", help="grant only these info items")
    p.set_defaults(handler=_approve)

    p = sub.add_parser("deny", help="the provider denies a share request, with its reasons")
    p.add_argument("request", type=int)
    p.add_argument("--actor", required=True, help="the provider's department id")
    p.add_argument("--reason", required=True, help="why (article 17: reasons are mandatory)")
    p.set_defaults(handler=_deny)

    p = sub.add_parser("revoke", help="end a grant early (provider or operator)")
    p.add_argument("grant", type=int)
    p.add_argument("--actor", required=True, help="the provider's or the operator's id")
    p.add_argument("--reason", required=True)
    p.set_defaults(handler=_revoke)

    p = sub.add_parser(
        "negotiate", help="open a negotiation (协商) of a refusal, or settle the open step"
    )
    p.add_argument("request", type=int, nargs="?", help="the request id")
    p.add_argument("--resource", help="instead of the id: the resource code ...")
    p.add_argument("--department", help="... and the applying department")
    p.add_argument("--actor", required=True, help="department id of who acts")
    p.add_argument("--note", help="a note for the record")
    p.add_argument("--settle", metavar="OUTCOME", help="close the open step with this outcome")
    p.add_argument(
        "--agreed", action="store_true", help="with --settle: the parties agreed (else: failed)"
    )
    p.set_defaults(handler=_negotiate)

    p = sub.add_parser(
        "escalate", help="to coordination (协调), then the steering group (领导小组)"
    )
    p.add_argument("request", type=int)
    p.add_argument("--actor", required=True, help="department id of who escalates")
    p.add_argument("--note", required=True, help="why the current step failed")
    p.set_defaults(handler=_escalate)
