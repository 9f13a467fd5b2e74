"""Dispute pages (article 19), on the stewards' ``DisputeClient`` as `govbus disputes` uses it.

The list shows the disputes the account's department may read (the client's rules: the
resource's provider and holders, and the data stewards all), with filters, and stays live: the
page opens ``/disputes/events`` (server-sent events), fed by ``DisputeClient.watch`` on the
dispute topics, and each new version replaces its row (a row only ever moves to a higher
version, so the replay from the topics' beginning that closes the gap between the page's
rendering and the stream's start changes nothing). A consumer files a doubt; the provider
acknowledges and resolves; "核实中" is the record's under-verification flag, raised while the
dispute is live (``rules.LIVE``). Every action, done or refused, is audited.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData as StarletteForm
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from govbus.accounts.store import Account
from govbus.share.sessions import session_from_store
from govbus.vocabulary.errors import UserError
from govbus.web.auth import Forbidden, LoginRequired, current_account
from govbus.web.console import Console, account_of, console_of, page, require
from govbus.web.forms import FormData, FormError
from stream_apps.disputes import rules as dr
from stream_apps.disputes.client import DisputeClient

__all__ = ["ROUTES", "dispute_client"]

STATES = ("open", "acknowledged", "resolved", "settled")
KEEPALIVE = 15.0  # seconds between SSE comments on a quiet stream


def dispute_client(console: Console, dept_id: str) -> DisputeClient:
    """The department's dispute client, as `govbus disputes` makes it (cli/session.py): the
    current catalog, the department's stored password, every valid grant."""
    settings = console.settings
    session = session_from_store(settings, console.store, dept_id, grants="all")
    return DisputeClient(session, operator=settings.share_coordinator)


def _filters(request: Request, client: DisputeClient) -> dict[str, Any]:
    query = FormData(request.query_params)
    return {
        "state": query.choice("state", STATES, required=False),
        "resource": query.choice("resource", [r.code for r in client.readable()], required=False),
        "overdue": query.flag("overdue"),
    }


def _matches(d: Mapping[str, Any], chosen: Mapping[str, Any]) -> bool:
    return (
        (chosen["state"] is None or d["state"] == chosen["state"])
        and (chosen["resource"] is None or d["resource_code"] == chosen["resource"])
        and (not chosen["overdue"] or bool(d["overdue"]))
    )


def _context(console: Console, client: DisputeClient) -> dict[str, Any]:
    spec = client.spec
    return {
        "names": {d.code: d.name for d in spec.departments},
        "ids": {d.id: d.name for d in spec.departments},
        "resources": {r.code: r.name for r in spec.resources},
        "live": dr.LIVE,
        "me": client.department_id,
        "my_code": (d.code if (d := spec.department_by_id(client.department_id)) else ""),
    }


@page()
def _list(request: Request, console: Console, _form: None) -> Response:
    account = account_of(request)
    client = dispute_client(console, account.department)
    chosen = _filters(request, client)
    found = sorted(
        (d for d in client.disputes().values() if _matches(d, chosen)),
        key=lambda d: d["opened_at"],
        reverse=True,
    )
    context = _context(console, client)
    context.update(
        disputes=found,
        chosen=chosen,
        states=STATES,
        readable=client.readable(),
        query=request.url.query,
        flash=request.session.pop("flash", None),
    )
    return console.render(request, "disputes.html", context)


async def _events(request: Request) -> Response:
    """Server-sent events: one ``dispute`` event per new version, its row as HTML."""
    console = console_of(request)
    try:
        account = await run_in_threadpool(current_account, request, console.accounts)
    except LoginRequired:
        return Response("login required", status_code=401)
    try:
        client = await run_in_threadpool(dispute_client, console, account.department)
        chosen = _filters(request, client)
    except UserError as exc:
        return Response(str(exc), status_code=400)
    context = _context(console, client)
    template = console.env.get_template("dispute_row.html")
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any] | BaseException] = asyncio.Queue()
    stopped = threading.Event()

    def watch() -> None:
        try:
            for d in client.watch(chosen["resource"], from_beginning=True, stop=stopped.is_set):
                if _matches(d, chosen):
                    loop.call_soon_threadsafe(queue.put_nowait, d)
        except BaseException as exc:  # handed to the stream, which ends with it
            loop.call_soon_threadsafe(queue.put_nowait, exc)

    thread = threading.Thread(target=watch, name="disputes-sse", daemon=True)
    thread.start()

    async def stream() -> AsyncIterator[str]:
        try:
            yield "retry: 2000\n\n"
            while not await request.is_disconnected():
                try:
                    item = await asyncio.wait_for(queue.get(), KEEPALIVE)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if isinstance(item, BaseException):
                    yield f"event: failure\ndata: {json.dumps(str(item), ensure_ascii=False)}\n\n"
                    return
                row = template.render(d=item, **context)
                data = "".join(f"data: {line}\n" for line in row.splitlines())
                yield f"event: dispute\nid: {item['dispute_id']}.{item['version']}\n{data}\n"
        finally:
            stopped.set()

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@page()
def _new(request: Request, console: Console, _form: None) -> Response:
    account = account_of(request)
    require(account, "dispute", "提出数据异议")
    query = FormData(request.query_params)
    values = {
        "resource": query.optional("resource", max_len=60) or "",
        "key": query.optional("key", max_len=200) or "",
    }
    return console.render(request, "dispute_new.html", _new_context(console, values))


def _new_context(console: Console, values: Mapping[str, Any]) -> dict[str, Any]:
    spec = console.store.current()
    disputable = [r for r in spec.resources if r.share_type != "none"]
    return {"values": dict(values), "resources": disputable}


@page(post=True)
def _file(request: Request, console: Console, raw: StarletteForm) -> Response:
    account = account_of(request)
    require(account, "dispute", "提出数据异议")
    form = FormData(raw)
    target = "-"
    try:
        resource = form.text("resource", max_len=60)
        key = form.text("key", max_len=200)
        target = f"{resource} key {key}"
        reason = form.text("reason", max_len=2000)
        item = form.optional("item", max_len=100)
        evidence = form.optional("evidence", max_len=500)
        client = dispute_client(console, account.department)
        dispute_id = client.file(resource, key, reason, item=item, evidence=evidence)
    except UserError as exc:
        console.audit(account, "dispute.file", target, "refused", {"error": str(exc)})
        context = _new_context(console, dict(raw))
        context.update(error=str(exc), field=getattr(exc, "field", None))
        return console.render(request, "dispute_new.html", context, status=400)
    console.audit(account, "dispute.file", f"dispute {dispute_id}", "ok", {"record": target})
    request.session["flash"] = f"已提出异议 {dispute_id}（{target}），待提供部门核实"
    return RedirectResponse("/disputes", status_code=303)


def _show_context(console: Console, account: Account, dispute_id: str) -> dict[str, Any]:
    client = dispute_client(console, account.department)
    context = _context(console, client)
    context.update(d=client.get(dispute_id), outcomes=dr.OUTCOMES)
    return context


@page()
def _show(request: Request, console: Console, _form: None) -> Response:
    account = account_of(request)
    context = _show_context(console, account, request.path_params["id"])
    context["flash"] = request.session.pop("flash", None)
    return console.render(request, "dispute.html", context)


def _act(request: Request, console: Console, raw: StarletteForm, action: str) -> Response:
    account = account_of(request)
    dispute_id = request.path_params["id"]
    target = f"dispute {dispute_id}"
    form = FormData(raw)
    try:
        require(account, "dispute", "核实数据异议")
        client = dispute_client(console, account.department)
        if action == "dispute.ack":
            client.ack(dispute_id)
            message = f"已确认收到异议 {dispute_id}，开始核实"
        else:
            outcome = form.choice("outcome", dr.OUTCOMES)
            note = form.text("note", max_len=2000)
            corrected = _corrected(console, client, dispute_id, form)
            assert outcome is not None
            client.resolve(dispute_id, outcome, note, corrected_record=corrected)
            message = f"异议 {dispute_id} 已处理：{outcome}"
    except Forbidden as exc:
        console.audit(account, action, target, "refused", {"error": str(exc)})
        raise
    except UserError as exc:
        console.audit(account, action, target, "refused", {"error": str(exc)})
        try:
            context = _show_context(console, account, dispute_id)
        except UserError:
            raise exc from None
        context.update(error=str(exc), field=getattr(exc, "field", None))
        return console.render(request, "dispute.html", context, status=400)
    console.audit(account, action, target, "ok")
    request.session["flash"] = message
    return RedirectResponse(f"/disputes/{dispute_id}", status_code=303)


def _corrected(
    console: Console, client: DisputeClient, dispute_id: str, form: FormData
) -> dict[str, Any] | None:
    """Where the corrected record is (``PARTITION:OFFSET``), as `disputes resolve` takes it."""
    where = form.optional("corrected_offset", max_len=40)
    if where is None:
        return None
    partition, _, offset = where.partition(":")
    if not (partition.isdigit() and offset.isdigit()):
        raise FormError("corrected_offset", f"{where!r} 应为 分区:位移，例如 0:1234")
    current = client.get(dispute_id)
    return {
        "topic": console.settings.naming.resource_topic(current["resource_code"]),
        "partition": int(partition),
        "offset": int(offset),
        "trace_id": form.optional("corrected_trace_id", max_len=200),
    }


@page(post=True)
def _ack(request: Request, console: Console, raw: StarletteForm) -> Response:
    return _act(request, console, raw, "dispute.ack")


@page(post=True)
def _resolve(request: Request, console: Console, raw: StarletteForm) -> Response:
    return _act(request, console, raw, "dispute.resolve")


ROUTES: list[BaseRoute] = [
    Route("/disputes", _list, methods=["GET"]),
    Route("/disputes", _file, methods=["POST"]),
    Route("/disputes/events", _events, methods=["GET"]),
    Route("/disputes/new", _new, methods=["GET"]),
    Route("/disputes/{id:str}", _show, methods=["GET"]),
    Route("/disputes/{id:str}/ack", _ack, methods=["POST"]),
    Route("/disputes/{id:str}/resolve", _resolve, methods=["POST"]),
]
