"""A Kafka MirrorMaker 2 process in dedicated mode, on its pinned classpath.

The same way the broker runs (govbus.broker.cluster): the jars of ``kafka-mirror-<version>.lock``
fetched once by Maven and checked digest by digest, the Java that ``scripts/setup.sh`` installs,
log4j2 writing to a file. What to mirror is the caller's business (govbus.federation renders
the properties file); this module only starts, watches and stops the JVM. A fatal error in MM2
exits the JVM, so whoever starts it watches ``running`` and starts it again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from govbus.broker.classpath import MIRROR, Classpath, install, java_major_version
from govbus.broker.properties import log4j2_config

MAIN_CLASS = "org.apache.kafka.connect.mirror.MirrorMaker"


def install_mirror(version: str, cache_dir: Path, repo_url: str = "") -> Classpath:
    """Fetch (once) and verify MirrorMaker 2's pinned classpath."""
    java_major_version()
    return install(version, cache_dir, repo_url, MIRROR)


class MirrorProcess:
    """One MirrorMaker JVM whose files live in ``directory`` (mm2.log, stdout.log)."""

    def __init__(self, directory: Path, classpath: Classpath, heap: str = "256m") -> None:
        self.directory = directory
        self.classpath = classpath
        self.heap = heap
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.directory / "mm2.log"

    def start(self, properties: Path, target_alias: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "log4j2.properties"
        config.write_text(log4j2_config(self.log, size="20MB", keep=2), encoding="utf-8")
        cmd = [
            "java",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={config}",
            "-cp",
            self.classpath.java_classpath,
            MAIN_CLASS,
            str(properties),
            "--clusters",
            target_alias,
        ]
        with (self.directory / "stdout.log").open("ab") as out:
            self._proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.directory,
            )
        (self.directory / "pid").write_text(f"{self._proc.pid}\n", encoding="ascii")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def exit_code(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def stop(self, timeout: float = 45.0) -> None:
        """SIGTERM (MM2 stops its tasks and commits their offsets), SIGKILL after ``timeout``."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        (self.directory / "pid").unlink(missing_ok=True)

    def log_tail(self, lines: int = 15) -> str:
        for path in (self.log, self.directory / "stdout.log"):
            if path.is_file():
                text = path.read_text(encoding="utf-8", errors="replace")
                return "\n".join(text.splitlines()[-lines:])
        return "(no log yet)"
