"""Who is logged in, what the request may do, and the login rate limit.

Sessions are Starlette's signed cookies (itsdangerous, HMAC-SHA1 over the session JSON with the
console's secret key, kept under the state directory): ``HttpOnly``, ``SameSite=Lax``, and
``Secure`` unless the console is told it is served over plain HTTP on purpose. The session
holds the account id, its CSRF token and the login time; the account is read again on every
request, so a disabled account is out at once.

CSRF: every form carries the session's token (``csrf_token``), compared in constant time on
every POST; a POST whose ``Origin`` header names another site is refused as well.

Login rate limit: at most ``MAX_FAILURES`` failed logins per user name and per client address
within ``WINDOW`` seconds; further attempts are refused (HTTP 429) until the oldest failure
leaves the window. Kept in the process (one console process per site).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.requests import Request

from govbus.accounts.store import Account, Accounts
from govbus.vocabulary.errors import UserError

__all__ = [
    "MAX_FAILURES",
    "WINDOW",
    "CsrfError",
    "Forbidden",
    "LoginLimiter",
    "LoginRequired",
    "check_csrf",
    "csrf_token",
    "current_account",
    "log_in",
    "log_out",
]

MAX_FAILURES = 5
WINDOW = 300.0  # seconds


class LoginRequired(UserError):
    """No (valid) session: the page sends the browser to the login page."""


class Forbidden(UserError):
    """The account's role or department may not do this; the message says which."""


class CsrfError(UserError):
    """A POST without the session's CSRF token, or from another site."""


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use (the login page has one too)."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, submitted: object) -> None:
    origin = request.headers.get("origin")
    if origin and origin != "null":
        own = f"{request.url.scheme}://{request.url.netloc}"
        if urlsplit(origin)._replace(path="").geturl() != own:
            raise CsrfError(f"来源 {origin} 不是本站（{own}）")
    token = request.session.get("csrf")
    if not isinstance(token, str) or not isinstance(submitted, str):
        raise CsrfError("表单缺少 csrf_token，请刷新页面后重试")
    if not hmac.compare_digest(token.encode(), submitted.encode()):
        raise CsrfError("csrf_token 与会话不符，请刷新页面后重试")


def log_in(request: Request, account: Account) -> None:
    request.session.clear()  # a new session: no fixation of a token made before login
    request.session.update(
        account=account.id, csrf=secrets.token_urlsafe(32), since=int(time.time())
    )


def log_out(request: Request) -> None:
    request.session.clear()


def current_account(request: Request, accounts: Accounts) -> Account:
    """The logged-in account; ``LoginRequired`` without a valid session."""
    account_id = request.session.get("account")
    if not isinstance(account_id, int):
        raise LoginRequired()
    account = accounts.get(account_id)
    if account is None:
        request.session.clear()
        raise LoginRequired()
    return account


class LoginLimiter:
    """Failed logins per key (user name, client address) in a sliding window."""

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures[key]
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def retry_after(self, *keys: str) -> float:
        """Seconds until any of ``keys`` may try again; 0 when all may."""
        now = self.clock()
        with self._lock:
            waits = [
                failures[0] + self.window - now
                for key in keys
                if len(failures := self._recent(key, now)) >= self.max_failures
            ]
        return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)
