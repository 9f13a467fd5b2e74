"""`govbus web serve` as a user starts it: a process that serves the login page with a
Secure, HttpOnly session cookie, stops on SIGTERM, and refuses a taken port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import REPO

PORTS = range(39000, 39400)


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in 39000..39399")


def test_web_serve_serves_the_login_page_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "GOVBUS_STATE_DIR": str(tmp_path / "state"), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "govbus.cli", "web", "serve", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        response = None
        deadline = time.monotonic() + 120
        while response is None and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/login", timeout=5)
            except httpx.TransportError:
                time.sleep(0.3)
        assert response is not None, "the console never answered"
        assert response.status_code == 200 and "登录" in response.text
        cookie = response.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie
        # A second console on the same port: one line, exit 1.
        taken = subprocess.run(
            [sys.executable, "-m", "govbus.cli", "web", "serve", "--port", str(port)],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert taken.returncode == 1
        assert f"cannot serve the web console on 127.0.0.1:{port}" in taken.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _err = proc.communicate(timeout=60)
    # uvicorn shuts down gracefully, then re-raises the signal it caught (-15 for SIGTERM).
    assert proc.returncode in (0, -signal.SIGTERM), proc.returncode
    assert f"http://127.0.0.1:{port}/" in out
