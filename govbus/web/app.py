"""The console's ASGI app: every part's routes, static files and signed-cookie sessions."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from govbus.catalog.store import CatalogStore
from govbus.vocabulary.config import Settings
from govbus.vocabulary.secrets import ensure_secret
from govbus.web import catalog, disputes, login, operator, share, supervision
from govbus.web.auth import LoginLimiter
from govbus.web.console import HERE, SESSION_COOKIE, SESSION_HOURS, Console

__all__ = ["build_app", "session_key"]


def _home(_request: Request) -> Response:
    return RedirectResponse("/catalog", status_code=303)


ROUTES: list[BaseRoute] = [
    Route("/", _home),
    *login.ROUTES,
    *catalog.ROUTES,
    *share.ROUTES,
    *disputes.ROUTES,
    *operator.ROUTES,
    *supervision.ROUTES,
    Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
]


def session_key(settings: Settings) -> str:
    """The console's cookie-signing key, generated once and kept under the state directory."""
    return ensure_secret(settings.state_dir, "web-session-key")


def build_app(
    settings: Settings,
    *,
    store: CatalogStore | None = None,
    secure_cookies: bool = True,
    grafana_url: str = "http://127.0.0.1:3000",
    limiter: LoginLimiter | None = None,
) -> Starlette:
    """The console for ``settings``. ``secure_cookies=False`` only for plain HTTP on purpose."""
    console = Console(
        settings,
        store or CatalogStore.for_settings(settings),
        grafana_url=grafana_url,
        limiter=limiter or LoginLimiter(),
    )
    middleware = [
        Middleware(
            SessionMiddleware,
            secret_key=session_key(settings),
            session_cookie=SESSION_COOKIE,
            max_age=SESSION_HOURS * 3600,
            same_site="lax",
            https_only=secure_cookies,
        )
    ]
    app = Starlette(routes=ROUTES, middleware=middleware)
    app.state.console = console
    return app
