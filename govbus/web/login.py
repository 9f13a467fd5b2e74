"""Logging in and out; the login is rate-limited per user name and per client address and
every attempt is audited (article 22)."""

from __future__ import annotations

import math
from urllib.parse import urlsplit

from starlette.datastructures import FormData as StarletteForm
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from govbus.web.auth import log_in, log_out
from govbus.web.console import Console, account_of, page
from govbus.web.forms import FormData, FormError

__all__ = ["ROUTES"]


def _next(value: str | None) -> str:
    """Only a path of this site: no open redirect."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/catalog"
    parts = urlsplit(value)
    return "/catalog" if parts.scheme or parts.netloc else value


@page(login=False)
def _login_form(request: Request, console: Console, _form: None) -> Response:
    return console.render(request, "login.html", {"next": _next(request.query_params.get("next"))})


@page(login=False, post=True)
def _login(request: Request, console: Console, raw: StarletteForm) -> Response:
    form = FormData(raw)
    target = _next(form.optional("next", max_len=500))
    values = {"next": target, "username": ""}
    try:
        username = form.text("username", max_len=64)
        values["username"] = username
        password = form.text("password", max_len=1024)
    except FormError as exc:
        return console.render(
            request, "login.html", {**values, "error": str(exc), "field": exc.field}, status=400
        )
    client = request.client.host if request.client else "?"
    keys = (f"user:{username}", f"addr:{client}")
    wait = console.limiter.retry_after(*keys)
    if wait > 0:
        console.accounts.audit(username, "login", username, "refused", {"rate_limited": True})
        message = f"登录失败次数过多，请 {math.ceil(wait)} 秒后再试"
        response = console.render(request, "login.html", {**values, "error": message}, status=429)
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    account = console.accounts.authenticate(username, password)
    if account is None:
        console.limiter.failed(*keys)
        console.accounts.audit(username, "login", username, "refused", {"client": client})
        return console.render(
            request, "login.html", {**values, "error": "用户名或密码错误"}, status=401
        )
    console.limiter.succeeded(keys[0])
    log_in(request, account)
    console.audit(account, "login", username, "ok", {"client": client})
    return RedirectResponse(target, status_code=303)


@page(post=True)
def _logout(request: Request, console: Console, _form: StarletteForm) -> Response:
    account = account_of(request)
    console.audit(account, "logout", account.username, "ok")
    log_out(request)
    return RedirectResponse("/login", status_code=303)


ROUTES: list[BaseRoute] = [
    Route("/login", _login_form, methods=["GET"]),
    Route("/login", _login, methods=["POST"]),
    Route("/logout", _logout, methods=["POST"]),
]
