"""Stopping child processes: the signal first, SIGKILL after the grace period."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from govbus.vocabulary.processes import stop_process, stop_processes

IGNORES_TERM = (
    "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(60)"
)
# Sets SIGINT's default action itself: a child of a shell's background job (`bash .ci/run &`)
# inherits SIGINT ignored, and would then wait out the grace period and be killed.
WAITS = (
    "import signal, sys, time; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "print('ready', flush=True); time.sleep(60)"
)


def _started(code: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return proc


def test_a_process_that_ends_on_the_signal_is_not_killed() -> None:
    proc = _started(WAITS)
    stop_process(proc, signal.SIGINT, timeout=10)
    assert proc.returncode == -signal.SIGINT  # ended by the signal, not by SIGKILL


def test_a_process_ignoring_the_signal_is_killed_after_the_grace_period() -> None:
    deaf, willing = _started(IGNORES_TERM), _started(WAITS)
    started = time.monotonic()
    stop_processes([deaf, willing], timeout=1.0)
    assert willing.returncode == -signal.SIGTERM
    assert deaf.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 10


def test_an_ended_process_is_left_alone() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    stop_process(proc)
    assert proc.returncode == 0
