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

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,248}")


def secret_path(state_dir: str | Path, name: str, kind: str | None = None) -> Path:
    if not _NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"cannot store a password for user {name!r}: not a valid user name")
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
