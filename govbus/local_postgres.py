"""A throwaway PostgreSQL on 127.0.0.1 for tests and demos, from Debian's server binaries.

Used only when no PostgreSQL DSN is configured. PostgreSQL refuses to run as root, so when we
are root the cluster is owned by, and run as, the ``postgres`` system user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

from govbus.vocabulary.errors import ServiceUnavailable

DEFAULT_PORT = 15432


class PostgresError(ServiceUnavailable):
    """The local PostgreSQL could not be set up; the message says why and what next."""


def _bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if not candidates:
        raise PostgresError(
            "PostgreSQL server binaries not found (Debian: apt-get install postgresql); "
            "or point GOVBUS_TEST_PG_DSN at an existing server"
        )
    return Path(candidates[0]).parent


def _as_owner(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def _owner_ids() -> tuple[int, int]:
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _run(cmd: list[str], what: str) -> str:
    proc = subprocess.run(_as_owner(cmd), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise PostgresError(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


class LocalPostgres:
    def __init__(self, state_dir: Path, port: int = DEFAULT_PORT) -> None:
        # Kept outside the state dir when that sits under a home the postgres user cannot enter.
        self.data = state_dir / "postgres" / "data"
        self.log = state_dir / "postgres" / "server.log"
        self.port = port

    def dsn(self, database: str) -> str:
        return f"postgresql+psycopg://govbus:govbus@127.0.0.1:{self.port}/{database}"

    def start(self, databases: tuple[str, ...] = ("govbus_test",)) -> None:
        bin_dir = _bin_dir()
        root = self.data.parent
        if not (self.data / "PG_VERSION").is_file():
            shutil.rmtree(self.data, ignore_errors=True)
            self.data.mkdir(parents=True, exist_ok=True)
            uid, gid = _owner_ids()
            for path in (root, self.data):
                os.chown(path, uid, gid)
            self._check_reachable_by_owner(root)
            pwfile = root / "pw"
            pwfile.write_text("govbus\n", encoding="utf-8")
            os.chown(pwfile, uid, gid)
            _run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "govbus",
                    f"--pwfile={pwfile}",
                    "-A",
                    "scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ],
                "initdb",
            )
            pwfile.unlink()
        if not self.running():
            if _port_open(self.port):
                raise PostgresError(f"port {self.port} is taken by another process")
            opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {root}"
            _run(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-o",
                    opts,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
                "pg_ctl start",
            )
        for name in databases:
            self.create_database(name)

    def _check_reachable_by_owner(self, root: Path) -> None:
        if os.geteuid() != 0:
            return
        probe = subprocess.run(
            _as_owner(["test", "-w", str(root)]), capture_output=True, check=False
        )
        if probe.returncode != 0:
            raise PostgresError(
                f"the postgres user cannot reach {root}; set GOVBUS_STATE_DIR to a directory "
                "every user can traverse (e.g. under /var/tmp)"
            )

    def running(self) -> bool:
        return (self.data / "postmaster.pid").is_file() and _port_open(self.port)

    def create_database(self, name: str) -> None:
        # Deferred: psycopg costs 0.2 s of start-up, and only `postgres start` needs it here.
        import psycopg

        url = f"postgresql://govbus:govbus@127.0.0.1:{self.port}/postgres"
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    exists = conn.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
                    ).fetchone()
                    if not exists:
                        conn.execute(f'CREATE DATABASE "{name}"')
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").is_file():
            _run(
                [str(_bin_dir() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                "pg_ctl stop",
            )
