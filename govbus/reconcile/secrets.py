"""Passwords of the SCRAM users the reconciler creates, kept under the state directory.

A password is generated once and reused on every later apply: the reconciler never rotates a
credential implicitly (departments' clients hold it). Files are mode 0600 in 0700 directories:
``<state_dir>/secrets/departments/<id>.password`` and, for platform apps,
``<state_dir>/secrets/apps/<name>.password``.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from govbus.reconcile.desired import PLATFORM_APPS

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,248}")


def _private_dir(path: Path) -> Path:
    for directory in (path.parent, path):
        if not directory.exists():
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o700)  # mkdir's mode is subject to the umask
    return path


def password_for(state_dir: str | Path, dept_id: str, *, kind: str = "departments") -> str:
    """The user's password, generated (token_urlsafe(24)) and stored the first time."""
    if not _NAME.fullmatch(dept_id) or ".." in dept_id:
        raise ValueError(f"cannot store a password for user {dept_id!r}: not a valid user name")
    path = _private_dir(Path(state_dir) / "secrets" / kind) / f"{dept_id}.password"
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    secret = secrets.token_urlsafe(24)
    try:
        # O_EXCL: of two concurrent applies one writes, the other reads the winner's secret.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secret + "\n")
    return secret


class PasswordStore:
    """``store(user)``: the password of a department's or a platform app's user."""

    def __init__(self, state_dir: str | Path) -> None:
        self.state_dir = Path(state_dir)

    def __call__(self, user: str) -> str:
        kind = "apps" if user in PLATFORM_APPS else "departments"
        return password_for(self.state_dir, user, kind=kind)
