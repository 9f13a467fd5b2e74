"""Run a Faust app of stream_apps/ in this test process, on its own thread and event loop.

The test thread stays free for blocking Kafka clients (publishing, consuming) and can reach
what the app shares in-process: its metrics and an injected clock.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import TracebackType

import faust

_START_TIMEOUT = 120.0


class InProcessWorker:
    """``with InProcessWorker(build) as app:`` — ``build()`` runs on the worker's loop."""

    def __init__(self, build: Callable[[], faust.App]) -> None:
        self._build = build
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.app: faust.App | None = None
        self._thread = threading.Thread(target=self._run, name="faust-worker", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self.app = self._build()
            self._loop.run_until_complete(self.app.start())
        except BaseException as exc:
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()

    def __enter__(self) -> faust.App:
        self._thread.start()
        if not self._started.wait(_START_TIMEOUT):
            raise TimeoutError(f"the Faust app did not start within {_START_TIMEOUT} s")
        if self._error is not None:
            raise RuntimeError(f"the Faust app failed to start: {self._error}") from self._error
        assert self.app is not None
        return self.app

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        app = self.app
        if app is not None and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(app.stop(), self._loop).result(_START_TIMEOUT)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_START_TIMEOUT)
        self._loop.close()
