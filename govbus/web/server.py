"""Serving the console with uvicorn until Ctrl-C or SIGTERM (`govbus web serve`)."""

from __future__ import annotations

import socket

import uvicorn

from govbus.vocabulary.config import Settings
from govbus.vocabulary.errors import UserError
from govbus.web.app import build_app

__all__ = ["serve"]


def serve(
    settings: Settings,
    host: str,
    port: int,
    *,
    secure_cookies: bool = True,
    grafana_url: str = "http://127.0.0.1:3000",
) -> None:
    """Serve on ``host:port``; a taken port or an address not ours is a ``UserError``."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise UserError(f"cannot serve the web console on {host}:{port}: {exc.strerror}") from None
    app = build_app(settings, secure_cookies=secure_cookies, grafana_url=grafana_url)
    print(f"govbus web console on http://{host}:{port}/ (Ctrl-C stops it)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False)
