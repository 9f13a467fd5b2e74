"""Share-request pages (articles 16-17), on ``ShareRequests`` as `govbus request|approve|deny|
negotiate|escalate|revoke` use it.

A department's requests and its provider inbox, each pending request with its working days
left to the 10-day deadline (``ShareRequests.deadlines``); applying; approving, denying with a
reason (boilerplate refused by ``share.reasons``, as in the CLI); negotiation, settling and
escalation; grants and their expiry, revocation. The acting department is always the account's
own: the console checks that it is a party (and the role's right) before calling the service,
and the service checks the actor again. Every action, done or refused, is audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.datastructures import FormData as StarletteForm
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from govbus.accounts.store import Account
from govbus.share.reasons import reason_problem
from govbus.share.requests import ShareRequest
from govbus.subscribe.consumer import PURPOSES
from govbus.vocabulary.clock import china_day
from govbus.vocabulary.errors import UserError
from govbus.vocabulary.spec import CatalogSpec, Department
from govbus.web.auth import Forbidden
from govbus.web.console import Console, account_of, page, require
from govbus.web.forms import FormData, FormError

__all__ = ["ROUTES"]

T = TypeVar("T")
_ALL_PENDING = 10**6  # working days: every pending request is "within" this


def own_department(spec: CatalogSpec, account: Account) -> Department:
    dept = spec.department_by_id(account.department)
    if dept is None:
        raise Forbidden(f"账号所属部门 {account.department} 不在当前目录中，无法办理共享申请")
    return dept


def _is_operator(console: Console, account: Account) -> bool:
    return account.may("operate") and account.department == console.settings.share_coordinator


def _party(console: Console, account: Account, request: ShareRequest) -> str:
    """The account's side of ``request``: consumer, provider or operator; else Forbidden."""
    dept = own_department(console.store.current(), account)
    if request.department == dept.code:
        return "consumer"
    if request.provider == dept.code:
        return "provider"
    if _is_operator(console, account):
        return "operator"
    raise Forbidden(f"共享申请 {request.id} 与 {dept.name}（{dept.id}）无关：只能办理本部门的申请")


def _countdown(console: Console) -> dict[int, int]:
    """Working days left (negative: past due) of every pending request."""
    return {r.id: left for r, left in console.share.deadlines(within=_ALL_PENDING)}


@page()
def _list(request: Request, console: Console, _form: None) -> Response:
    account = account_of(request)
    spec = console.store.current()
    dept = own_department(spec, account)
    svc = console.share
    mine = svc.list_requests(department=dept.code)
    inbox = svc.list_requests(provider=dept.code)
    others = (
        [r for r in svc.list_requests() if dept.code not in (r.department, r.provider)]
        if _is_operator(console, account)
        else []
    )
    grants = {
        r.id: g
        for r in [*mine, *inbox, *others]
        if r.state in ("approved", "revoked", "expired") and (g := svc.grant_of(r.id))
    }
    return console.render(
        request,
        "requests.html",
        {
            "mine": mine,
            "inbox": inbox,
            "others": others,
            "left": _countdown(console),
            "grants": grants,
            "names": {d.code: d.name for d in spec.departments},
            "resources": {r.code: r.name for r in spec.resources},
            "today": china_day(dt.datetime.now(dt.UTC)),
            "now": dt.datetime.now(dt.UTC),
            "dept": dept,
        },
    )


def _new_context(console: Console, code: str | None) -> dict[str, Any]:
    spec = console.store.current()
    resource = spec.resource(code) if code else None
    return {
        "resource": resource,
        "code": code or "",
        "purposes": (resource.purposes if resource and resource.purposes else PURPOSES),
        "names": {d.code: d.name for d in spec.departments},
        "values": {},
    }


@page()
def _new(request: Request, console: Console, _form: None) -> Response:
    require(account_of(request), "apply", "提出共享申请")
    code = FormData(request.query_params).optional("resource", max_len=60)
    return console.render(request, "request_new.html", _new_context(console, code))


@page(post=True)
def _apply(request: Request, console: Console, raw: StarletteForm) -> Response:
    account = account_of(request)
    require(account, "apply", "提出共享申请")
    form = FormData(raw)
    code: str | None = None
    try:
        code = form.text("resource", max_len=60)
        purpose = form.choice("purpose", PURPOSES)
        duty = form.text("duty", max_len=2000)
        until = form.date("until")
        items = form.codes("items")
        assert purpose is not None and until is not None  # required fields
        made = console.share.submit(
            account.department, code, purpose, duty, until, items, actor=account.department
        )
    except UserError as exc:
        console.audit(account, "share.apply", code or "-", "refused", {"error": str(exc)})
        context = _new_context(console, code)
        context.update(error=str(exc), field=getattr(exc, "field", None), values=dict(raw))
        return console.render(request, "request_new.html", context, status=400)
    console.audit(account, "share.apply", f"request {made.id}", "ok", {"resource": code})
    request.session["flash"] = f"已提交共享申请 {made.id}，提供部门应在 {made.due} 前答复"
    return RedirectResponse(f"/requests/{made.id}", status_code=303)


def _detail(console: Console, account: Account, request_id: int) -> dict[str, Any]:
    svc = console.share
    shown = svc.request(request_id)
    side = _party(console, account, shown)
    spec = console.store.current()
    return {
        "r": shown,
        "side": side,
        "grant": svc.grant_of(shown.id),
        "steps": svc.steps(shown.id),
        "history": svc.history(shown.id),
        "left": _countdown(console).get(shown.id),
        "names": {d.code: d.name for d in spec.departments},
        "ids": {d.id: d.name for d in spec.departments},
        "resource": spec.resource(shown.resource),
        "now": dt.datetime.now(dt.UTC),
        "today": china_day(dt.datetime.now(dt.UTC)),
    }


@page()
def _show(request: Request, console: Console, _form: None) -> Response:
    account = account_of(request)
    context = _detail(console, account, request.path_params["id"])
    context["flash"] = request.session.pop("flash", None)
    return console.render(request, "request.html", context)


def _act(
    request: Request,
    console: Console,
    action: str,
    request_id: int,
    right: str,
    sides: tuple[str, ...],
    work: Callable[[Account], str],
) -> Response:
    """Check the right and the side, run ``work`` (its message is flashed), audit either way."""
    account = account_of(request)
    target = f"request {request_id}"
    try:
        require(account, right, "办理此操作")
        side = _party(console, account, console.share.request(request_id))
        if side not in sides:
            raise Forbidden(f"共享申请 {request_id}：本部门是{_SIDES[side]}，不能{_VERBS[action]}")
        message = work(account)
    except Forbidden as exc:
        console.audit(account, action, target, "refused", {"error": str(exc)})
        raise
    except UserError as exc:
        console.audit(account, action, target, "refused", {"error": str(exc)})
        context = _detail(console, account, request_id)
        context.update(error=str(exc), field=getattr(exc, "field", None), action=action)
        return console.render(request, "request.html", context, status=400)
    console.audit(account, action, target, "ok", {"message": message})
    request.session["flash"] = message
    return RedirectResponse(f"/requests/{request_id}", status_code=303)


_SIDES = {"consumer": "申请方", "provider": "提供方", "operator": "平台运营方"}
_VERBS = {
    "share.approve": "同意",
    "share.deny": "拒绝",
    "share.negotiate": "发起协商",
    "share.settle": "结束协商",
    "share.escalate": "提请协调",
}


@page(post=True)
def _approve(request: Request, console: Console, raw: StarletteForm) -> Response:
    form = FormData(raw)
    request_id = request.path_params["id"]

    def work(account: Account) -> str:
        until = form.date("until", required=False)
        items = form.codes("items") or None
        grant = console.share.approve(request_id, account.department, until, items)
        return f"已同意，授权 {grant.id} 有效至 {grant.expires_at:%Y-%m-%d %H:%M} UTC"

    return _act(request, console, "share.approve", request_id, "answer", ("provider",), work)


def _reason(form: FormData) -> str:
    """The reason field, checked by the service's own rule (``share.reasons``) so that a
    refusal names the field; the service checks it again."""
    reason = form.text("reason", max_len=2000)
    problem = reason_problem(reason)
    if problem:
        raise FormError("reason", problem)
    return reason


@page(post=True)
def _deny(request: Request, console: Console, raw: StarletteForm) -> Response:
    form = FormData(raw)
    request_id = request.path_params["id"]

    def work(account: Account) -> str:
        reason = _reason(form)
        denied = console.share.deny(request_id, account.department, reason)
        return f"已拒绝：{denied.deny_reason}"

    return _act(request, console, "share.deny", request_id, "answer", ("provider",), work)


@page(post=True)
def _negotiate(request: Request, console: Console, raw: StarletteForm) -> Response:
    form = FormData(raw)
    request_id = request.path_params["id"]

    def work(account: Account) -> str:
        note = form.text("note", required=False, max_len=2000)
        step = console.share.negotiate(request_id, actor=account.department, note=note)
        return f"已发起{step.level}（步骤 {step.id}），由 {step.owner} 负责"

    sides = ("consumer", "provider", "operator")
    return _act(request, console, "share.negotiate", request_id, "negotiate", sides, work)


@page(post=True)
def _settle(request: Request, console: Console, raw: StarletteForm) -> Response:
    form = FormData(raw)
    request_id = request.path_params["id"]

    def work(account: Account) -> str:
        outcome = form.text("outcome", max_len=2000)
        agreed = form.flag("agreed")
        step = console.share.settle(request_id, account.department, outcome, agreed=agreed)
        return f"步骤 {step.id} 已结束：{'达成一致' if agreed else '未达成一致'}"

    sides = ("consumer", "provider", "operator")
    return _act(request, console, "share.settle", request_id, "negotiate", sides, work)


@page(post=True)
def _escalate(request: Request, console: Console, raw: StarletteForm) -> Response:
    form = FormData(raw)
    request_id = request.path_params["id"]

    def work(account: Account) -> str:
        note = form.text("note", max_len=2000)
        step = console.share.escalate(request_id, account.department, note)
        return f"已提请上一级（步骤 {step.id}），由 {step.owner} 负责"

    sides = ("consumer", "provider", "operator")
    return _act(request, console, "share.escalate", request_id, "negotiate", sides, work)


@page(post=True)
def _revoke(request: Request, console: Console, raw: StarletteForm) -> Response:
    form = FormData(raw)
    grant = console.share.grant(request.path_params["id"])

    def work(account: Account) -> str:
        reason = _reason(form)
        done = console.share.revoke(grant.id, account.department, reason)
        return f"授权 {done.id} 已撤销：{done.revoke_reason}"

    return _act(
        request, console, "share.revoke", grant.request, "answer", ("provider", "operator"), work
    )


ROUTES: list[BaseRoute] = [
    Route("/requests", _list, methods=["GET"]),
    Route("/requests", _apply, methods=["POST"]),
    Route("/requests/new", _new, methods=["GET"]),
    Route("/requests/{id:int}", _show, methods=["GET"]),
    Route("/requests/{id:int}/approve", _approve, methods=["POST"]),
    Route("/requests/{id:int}/deny", _deny, methods=["POST"]),
    Route("/requests/{id:int}/negotiate", _negotiate, methods=["POST"]),
    Route("/requests/{id:int}/settle", _settle, methods=["POST"]),
    Route("/requests/{id:int}/escalate", _escalate, methods=["POST"]),
    Route("/grants/{id:int}/revoke", _revoke, methods=["POST"]),
]
