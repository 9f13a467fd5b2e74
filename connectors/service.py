"""What makes an agent a long-running service: its health, its HTTP endpoint, crash points.

``Health`` is what the agent's loop reports after each round (a poll of the source, a batch of
the sink) and what ``GET /health`` answers: 200 and ``{"status": "ok", ...}`` while the last
round succeeded within ``stale_after`` seconds (None: at all), else 503 with the last error.
``GET /metrics`` is the Prometheus registry (govbus/vocabulary/metrics.py: rows read,
published, dead-lettered, written, lag in seconds). ``serve`` runs both on one port from a
daemon thread.

``crash_point(name)`` is for the kill tests (tests/integration/test_agent_kill.py): with
``GOVBUS_AGENT_CRASH=<name>[:<n>]`` in the environment the process kills itself (SIGKILL, no
clean-up, like a power cut) the n-th time (default the first) it reaches that point. The
points are ``source-after-publish`` (the broker acknowledged a batch, its watermark is not
stored) and ``sink-after-db-commit`` (rows committed, their offsets not).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.errors import UserError
from govbus.vocabulary.metrics import REGISTRY

__all__ = ["CRASH_ENV", "Health", "crash_point", "serve"]

CRASH_ENV = "GOVBUS_AGENT_CRASH"
_reached: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Kill this process here if ``GOVBUS_AGENT_CRASH`` names this point (module doc)."""
    wanted = os.environ.get(CRASH_ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


class Health:
    """The last round of an agent's loop: when it succeeded, or the error that ended it."""

    def __init__(self, agent: str, stale_after: float | None) -> None:
        self.agent = agent
        self.stale_after = stale_after
        self._lock = threading.Lock()
        self._ok_at: float | None = None
        self._ok_time: dt.datetime | None = None
        self._error: str | None = None
        self.rounds = 0

    def ok(self) -> None:
        with self._lock:
            self._ok_at, self._ok_time = time.monotonic(), dt.datetime.now(CHINA_TZ)
            self._error = None
            self.rounds += 1

    def failed(self, error: str) -> None:
        with self._lock:
            self._error = error

    def state(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            fresh = self._ok_at is not None and (
                self.stale_after is None or time.monotonic() - self._ok_at <= self.stale_after
            )
            healthy = fresh and self._error is None
            body = {
                "agent": self.agent,
                "status": "ok" if healthy else "failing",
                "last_success": self._ok_time.isoformat() if self._ok_time else None,
                "rounds": self.rounds,
                "error": self._error,
            }
        return healthy, body


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


def serve(health: Health, port: int, addr: str = "0.0.0.0") -> WSGIServer:
    """``/health`` and ``/metrics`` on ``addr:port`` from a daemon thread (port 0: any free
    port, see ``server.server_port``); ``server.shutdown()`` stops it."""
    metrics_app = make_wsgi_app(REGISTRY)

    def app(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/health":
            healthy, body = health.state()
            status = "200 OK" if healthy else "503 Service Unavailable"
            start(status, [("Content-Type", "application/json; charset=utf-8")])
            return [json.dumps(body, ensure_ascii=False).encode()]
        return metrics_app(environ, start)  # type: ignore[no-any-return]

    try:
        server = make_server(addr, port, app, handler_class=_Quiet)
    except OSError as exc:
        raise UserError(
            f"cannot serve the agent's health and metrics on {addr}:{port}: "
            f"{exc.strerror or exc}; choose another port (--port)"
        ) from None
    threading.Thread(target=server.serve_forever, name="agent-http", daemon=True).start()
    return server
