"""Passwords of the SCRAM users the reconciler creates, kept under the state directory.

A password is generated once and reused on every later apply: the reconciler never rotates a
credential implicitly (departments' clients hold it). Files are mode 0600 in 0700 directories:
``<state_dir>/secrets/departments/<id>.password`` and, for platform apps,
``<state_dir>/secrets/apps/<name>.password``.
"""

from __future__ import annotations

from pathlib import Path

from govbus.reconcile.desired import PLATFORM_APPS, PLATFORM_USER_PREFIX
from govbus.secret_files import ensure_secret


def password_for(state_dir: str | Path, dept_id: str, *, kind: str = "departments") -> str:
    """The user's password, generated (token_urlsafe(24)) and stored the first time."""
    return ensure_secret(state_dir, dept_id, kind)


class PasswordStore:
    """``store(user)``: the password of a department's or a platform app's user."""

    def __init__(self, state_dir: str | Path) -> None:
        self.state_dir = Path(state_dir)

    def __call__(self, user: str) -> str:
        platform = user in PLATFORM_APPS or user.startswith(PLATFORM_USER_PREFIX)
        kind = "apps" if platform else "departments"
        return password_for(self.state_dir, user, kind=kind)
