"""Supervision pages (article 26), on the violation ledger as `govbus violations` uses it.

``/supervision`` lists the ledger's violations (``Ledger.violations``) with filters by
department, kind and state; the operator (``share_coordinator``, 市大数据管理局) sees every
department's, any other account only its own department's. ``/supervision/{id}`` shows one
violation with its evidence and every step (``Ledger.history``) and the forms its viewer may
use: the operator notifies (通知整改, a deadline in working days), closes (what was verified)
and escalates (a notice past its deadline, to the city government); the department
responsible responds (what it did). The rules of who may do what and of each step are the
ledger's (``govbus.supervise.ledger``, ``rules.check_transition``); the page only checks the
console role first so that a refusal is a 403, and every action, done or refused, is audited
with the user and department. The last yearly evaluation's scores are those `govbus evaluate`
recorded for the exporter (``supervise.metrics.read_evaluation_summary``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.datastructures import FormData as StarletteForm
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from govbus.accounts.store import Account
from govbus.supervise.ledger import Ledger, Violation
from govbus.supervise.metrics import read_evaluation_summary
from govbus.supervise.rules import KINDS, STATES
from govbus.vocabulary.clock import china_day, utc
from govbus.vocabulary.errors import Conflict, UserError
from govbus.web.auth import Forbidden
from govbus.web.console import Console, account_of, page, require
from govbus.web.forms import FormData, FormError

__all__ = ["ROUTES", "ledger_of"]

STATE_NAMES = {
    "open": "待通知",
    "notified": "已通知整改",
    "responded": "已答复",
    "escalated": "已上报",
    "closed": "已关闭",
}
ACTION_NAMES = {
    "recorded": "记录",
    "notify": "通知整改",
    "respond": "部门答复",
    "close": "关闭",
    "escalate": "上报市政府",
}


def ledger_of(console: Console) -> Ledger:
    """The ledger as `govbus violations` opens it (cli/supervise.py)."""
    return Ledger(console.store, operator=console.settings.share_coordinator)


def _own_code(console: Console, account: Account) -> str | None:
    """None for the operator (every department); else the account's department code."""
    if account.department == console.settings.share_coordinator and account.may("operate"):
        return None
    dept = console.store.current().department_by_id(account.department)
    return dept.code if dept else ""


def _visible(console: Console, account: Account, vid: int) -> Violation:
    v = ledger_of(console).get(vid)
    own = _own_code(console, account)
    if own is not None and v.department != own:
        raise Forbidden(f"违规记录 {vid} 不属于本部门（{account.department}），无权查看或办理")
    return v


def _names(console: Console) -> dict[str, Any]:
    spec = console.store.current()
    return {
        "names": {d.code: d.name for d in spec.departments},
        "ids": {d.code: d.id for d in spec.departments},
        "kinds": KINDS,
        "states": STATES,
        "state_names": STATE_NAMES,
        "action_names": ACTION_NAMES,
        "today": china_day(utc(None)),
    }


@page()
def _list(request: Request, console: Console, _form: None) -> Response:
    account = account_of(request)
    ledger = ledger_of(console)
    spec = console.store.current()
    query = FormData(request.query_params)
    own = _own_code(console, account)
    chosen: dict[str, Any] = {
        "department": None,
        "kind": query.choice("kind", [k.name for k in KINDS], required=False),
        "state": query.choice("state", STATES, required=False),
    }
    if own is None:
        dept = query.optional("department", max_len=100)
        if dept is not None:
            try:
                chosen["department"] = Ledger.department_code(spec, dept)
            except UserError as exc:
                raise FormError("department", str(exc)) from None
    found = ledger.violations(own if own is not None else chosen["department"],
                              chosen["kind"], chosen["state"])  # fmt: skip
    context = _names(console)
    context.update(
        violations=found,
        chosen=chosen,
        everyone=own is None,
        departments=spec.departments,
        evaluation=read_evaluation_summary(console.settings.state_dir),
        flash=request.session.pop("flash", None),
    )
    return console.render(request, "supervision.html", context)


def _detail(console: Console, account: Account, vid: int) -> dict[str, Any]:
    v = _visible(console, account, vid)
    context = _names(console)
    own = _own_code(console, account)
    context.update(
        v=v,
        history=ledger_of(console).history(vid),
        operator=own is None,
        responsible=own == v.department and account.may("negotiate"),
    )
    return context


@page()
def _show(request: Request, console: Console, _form: None) -> Response:
    context = _detail(console, account_of(request), request.path_params["id"])
    context["flash"] = request.session.pop("flash", None)
    return console.render(request, "violation.html", context)


def _act(
    request: Request,
    console: Console,
    action: str,
    operator_only: bool,
    work: Callable[[Account, Ledger], str],
) -> Response:
    """Check the role and the department, run ``work`` (its message is flashed), audit."""
    account = account_of(request)
    vid: int = request.path_params["id"]
    target = f"violation {vid}"
    try:
        if operator_only:
            require(account, "operate", "办理违规整改")
            if _own_code(console, account) is not None:
                raise Forbidden(f"只有平台运营方（{console.settings.share_coordinator}）可以办理")
        else:
            require(account, "negotiate", "答复整改通知")
            v = _visible(console, account, vid)
            if _own_code(console, account) != v.department:
                raise Forbidden(f"违规记录 {vid} 由责任部门答复，本部门不能答复")
        message = work(account, ledger_of(console))
    except Forbidden as exc:
        console.audit(account, action, target, "refused", {"error": str(exc)})
        raise
    except (UserError, Conflict) as exc:  # a form field, or the ledger's rule (a transition)
        console.audit(account, action, target, "refused", {"error": str(exc)})
        context = _detail(console, account, vid)
        context.update(error=str(exc), field=getattr(exc, "field", None), action=action)
        return console.render(request, "violation.html", context, status=400)
    console.audit(account, action, target, "ok", {"message": message})
    request.session["flash"] = message
    return RedirectResponse(f"/supervision/{vid}", status_code=303)


def _workdays(form: FormData) -> int:
    text = form.text("workdays", max_len=3)
    if not text.isdigit() or not 1 <= int(text) <= 60:
        raise FormError("workdays", f"{text!r} 应为 1 到 60 之间的工作日数")
    return int(text)


@page(post=True)
def _notify(request: Request, console: Console, raw: StarletteForm) -> Response:
    form = FormData(raw)

    def work(account: Account, ledger: Ledger) -> str:
        workdays = _workdays(form)
        note = form.text("note", max_len=2000)
        v = ledger.notify(request.path_params["id"], account.department, workdays, note)
        return f"已通知整改，期限 {v.due.isoformat() if v.due else '?'}"

    return _act(request, console, "supervise.notify", True, work)


@page(post=True)
def _respond(request: Request, console: Console, raw: StarletteForm) -> Response:
    form = FormData(raw)

    def work(account: Account, ledger: Ledger) -> str:
        text = form.text("response", max_len=2000)
        ledger.respond(request.path_params["id"], account.department, text, ledger.store.current())
        return "已答复，待平台运营方核实后关闭"

    return _act(request, console, "supervise.respond", False, work)


@page(post=True)
def _close(request: Request, console: Console, raw: StarletteForm) -> Response:
    form = FormData(raw)

    def work(account: Account, ledger: Ledger) -> str:
        reason = form.text("reason", max_len=2000)
        ledger.close(request.path_params["id"], account.department, reason)
        return "已关闭"

    return _act(request, console, "supervise.close", True, work)


@page(post=True)
def _escalate(request: Request, console: Console, _raw: StarletteForm) -> Response:
    def work(account: Account, ledger: Ledger) -> str:
        ledger.escalate(request.path_params["id"], account.department)
        return "已上报市人民政府（列入年度报告）"

    return _act(request, console, "supervise.escalate", True, work)


ROUTES: list[BaseRoute] = [
    Route("/supervision", _list, methods=["GET"]),
    Route("/supervision/{id:int}", _show, methods=["GET"]),
    Route("/supervision/{id:int}/notify", _notify, methods=["POST"]),
    Route("/supervision/{id:int}/respond", _respond, methods=["POST"]),
    Route("/supervision/{id:int}/close", _close, methods=["POST"]),
    Route("/supervision/{id:int}/escalate", _escalate, methods=["POST"]),
]
