"""What every page of the console shares: the services, the page wrapper, the error pages.

``Console`` holds what every page uses: the settings, the catalog store, the share-request
service, the account service, the templates and the login limiter; ``page`` wraps a page
function with the login check, CSRF and the error pages.

Errors: a page that needs a login sends the browser to ``/login``; a role or department that
may not act gets 403 with the reason; a refused form or action (``UserError``: a form field, a
service's rule) gets 400 with its message beside the form; a service that cannot be reached
(``ServiceUnavailable``, Kafka) gets 503. Anything else is a bug and a 500.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from govbus.accounts.store import Account, Accounts
from govbus.catalog.search import SearchIndex
from govbus.catalog.store import CatalogStore
from govbus.share.requests import ShareRequests
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.config import Settings
from govbus.vocabulary.errors import GovbusError, ServiceUnavailable, UserError
from govbus.web import labels
from govbus.web.auth import (
    CsrfError,
    Forbidden,
    LoginLimiter,
    LoginRequired,
    check_csrf,
    csrf_token,
    current_account,
)
from govbus.web.forms import FormError

__all__ = ["Console", "account_of", "page", "require"]

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "govbus_session"
SESSION_HOURS = 8  # one working day
MAX_FORM_FIELDS = 200
log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class Console:
    """What the pages share. ``grafana_url``: the Grafana the operator's links point at."""

    settings: Settings
    store: CatalogStore
    grafana_url: str = "http://127.0.0.1:3000"
    limiter: LoginLimiter = field(default_factory=LoginLimiter)

    def __post_init__(self) -> None:
        self.share = ShareRequests(self.store, coordinator=self.settings.share_coordinator)
        self.accounts = Accounts(self.store, coordinator=self.settings.share_coordinator)
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["china"] = _china_time
        for name, names in labels.FILTERS.items():
            self.env.filters[name] = functools.partial(_label, names)
        self._index: tuple[int, SearchIndex] | None = None

    def search_index(self) -> SearchIndex:
        """The article 17 index of the current catalog, built once per version."""
        version = self.store.latest_number()
        if self._index is None or self._index[0] != version:
            self._index = (version, SearchIndex.build(self.store.current()))
        return self._index[1]

    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any] | None = None,
        *,
        status: int = 200,
    ) -> HTMLResponse:
        values = {
            "request": request,
            "csrf": csrf_token(request),
            "account": getattr(request.state, "account", None),
            "coordinator": self.settings.share_coordinator,
            "spec_names": getattr(request.state, "names", None),
            **(context or {}),
        }
        body = self.env.get_template(template).render(values)
        return HTMLResponse(body, status_code=status)

    def audit(
        self,
        account: Account,
        action: str,
        target: str,
        outcome: str,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        self.accounts.audit(account, action, target, outcome, detail)


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def account_of(request: Request) -> Account:
    account: Account = request.state.account
    return account


def require(account: Account, right: str, doing: str) -> None:
    if not account.may(right):
        raise Forbidden(f"角色 {account.role} 无权{doing}（需要权限 {right}）")


def page(*, login: bool = True, post: bool = False) -> Callable[[Callable[..., Any]], Handler]:
    """Wrap a page: the login check, CSRF on POST, the error pages, blocking work in a thread.

    The wrapped function is synchronous and takes ``(request, console, form)`` (``form`` is
    ``None`` on GET); it may return a response or raise the errors above.
    """

    def wrap(fn: Callable[..., Response]) -> Handler:
        @functools.wraps(fn)
        async def endpoint(request: Request) -> Response:
            console = console_of(request)
            form = None
            try:
                if post:
                    try:
                        form = await request.form(
                            max_files=0, max_fields=MAX_FORM_FIELDS, max_part_size=64 * 1024
                        )
                    except Exception as exc:  # the multipart parser's own errors
                        raise FormError("form", f"表单无法解析：{exc}") from None
                    check_csrf(request, form.get("csrf_token"))
                if login:
                    request.state.account = await run_in_threadpool(
                        current_account, request, console.accounts
                    )
                return await run_in_threadpool(fn, request, console, form)
            except LoginRequired:
                target = request.url.path if request.method == "GET" else "/"
                return RedirectResponse(f"/login?next={target}", status_code=303)
            except CsrfError as exc:
                return _error(request, console, 403, "请求被拒绝 (CSRF)", str(exc))
            except Forbidden as exc:
                return _error(request, console, 403, "无权操作", str(exc))
            except (ServiceUnavailable, KafkaException) as exc:
                return _error(request, console, 503, "服务暂不可用", _message(exc))
            except (UserError, GovbusError) as exc:
                return _error(request, console, 400, "请求被拒绝", str(exc))

        return endpoint

    return wrap


def _message(exc: Exception) -> str:
    if isinstance(exc, KafkaException) and exc.args:
        err = exc.args[0]
        text = getattr(err, "str", lambda: str(err))()
        return f"Kafka：{text}（消息总线是否在运行？`govbus broker status`）"
    return str(exc)


def _error(request: Request, console: Console, status: int, title: str, message: str) -> Response:
    return console.render(
        request, "error.html", {"title": title, "message": message}, status=status
    )


def _label(names: Mapping[str, str], value: object) -> str:
    return names.get(str(value), str(value))


def _china_time(value: dt.datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")
