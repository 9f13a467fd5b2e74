"""Secrets govbus generates and keeps under the state directory, one file each.

``<state_dir>/secrets/<name>.password`` for the local cluster's own principals (admin,
controller) and ``<state_dir>/secrets/<kind>/<name>.password`` for departments' and platform
apps' users. Files are mode 0600 in 0700 directories; a secret is generated once and reused,
never rotated implicitly (clients hold it).
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from govbus.vocabulary.config import ConfigError
from govbus.vocabulary.errors import UserError
from govbus.vocabulary.naming import NAMING, Naming

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,248}")


def secret_path(state_dir: str | Path, name: str, kind: str | None = None) -> Path:
    if not _NAME.fullmatch(name) or ".." in name:
        raise UserError(
            f"no password can be kept for user {name!r}: not a valid user name (letters, digits, "
            "dot, underscore and hyphen; the department id of the catalog)"
        )
    directory = Path(state_dir) / "secrets"
    return (directory / kind if kind else directory) / f"{name}.password"


def read_secret(state_dir: str | Path, name: str, kind: str | None = None) -> str | None:
    """The stored secret, or None when there is none (or the file is empty)."""
    try:
        value = secret_path(state_dir, name, kind).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return value or None


def ensure_secret(state_dir: str | Path, name: str, kind: str | None = None) -> str:
    """The stored secret; generated (token_urlsafe(24)) and stored the first time."""
    existing = read_secret(state_dir, name, kind)
    if existing:
        return existing
    path = secret_path(state_dir, name, kind)
    for directory in (path.parent.parent, path.parent) if kind else (path.parent,):
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)  # mkdir's mode is subject to the umask
    value = secrets.token_urlsafe(24)
    # O_EXCL: of two concurrent writers one creates the file, the other reads the winner's
    # secret. An empty file (a crash mid-write) is replaced.
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if path.exists() else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        winner = read_secret(state_dir, name, kind)
        if winner:
            return winner
        raise
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    return value


def password_for(state_dir: str | Path, dept_id: str, *, kind: str = "departments") -> str:
    """A SCRAM user's password, generated (token_urlsafe(24)) and stored the first time."""
    return ensure_secret(state_dir, dept_id, kind)


class PasswordStore:
    """``store(user)``: the password of a department's or a platform app's user, as the
    reconciler creates them: ``secrets/departments/<id>.password`` or
    ``secrets/apps/<name>.password``."""

    def __init__(self, state_dir: str | Path, naming: Naming = NAMING) -> None:
        self.state_dir = Path(state_dir)
        self.naming = naming

    def __call__(self, user: str) -> str:
        platform = user.startswith(self.naming.platform_user_prefix)
        return password_for(self.state_dir, user, kind="apps" if platform else "departments")


def department_password(state_dir: str | Path, department_id: str, path: Path | None) -> str:
    """A department's SCRAM password: ``path`` (``--password-file``), else the reconciler's."""
    path = path or secret_path(state_dir, department_id, "departments")
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(
            f"no password for department {department_id!r}: {path} does not exist (give "
            "--password-file, or let the reconciler create the department's user)"
        ) from None
