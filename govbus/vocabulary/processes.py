"""Stopping child processes: a signal, a grace period, then SIGKILL."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterable
from typing import Any

__all__ = ["stop_process", "stop_processes"]


def stop_processes(
    procs: Iterable[subprocess.Popen[Any]], sig: int = signal.SIGTERM, timeout: float = 30.0
) -> None:
    """Send ``sig`` to every running process, then wait for each; one still running
    ``timeout`` s after its signal is killed. All are signalled before any is waited for, so
    they wind down side by side."""
    running = [p for p in procs if p.poll() is None]
    for proc in running:
        proc.send_signal(sig)
    for proc in running:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stop_process(
    proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 30.0
) -> None:
    """Stop one process with ``sig`` (SIGINT: as Ctrl-C); killed if it has not ended within
    ``timeout`` s."""
    stop_processes([proc], sig, timeout)
