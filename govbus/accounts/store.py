"""Accounts of the web console: create, authenticate, and the audit log of every action.

Roles (one per account), from least to most:

- ``viewer``: reads the catalog, its department's share requests and the disputes it may read;
- ``steward`` (数据专员): also applies for resources, files doubts, acknowledges and resolves
  its department's disputes, takes part in negotiation and escalation (article 17, 19);
- ``approver`` (审批人): also approves, denies and revokes its department's grants as provider;
- ``operator``: the platform operator (市大数据管理局, the ``share_coordinator``): every right of
  an approver for its own department, coordination steps, the overview and the audit log.

An account acts only for its own department: the department is never taken from a form, and
the services (``ShareRequests``, ``DisputeClient``) check it again as the actor.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's second recommended
profile); a hash made with weaker parameters is replaced at the next successful login. An
unknown user name costs the same hash verification as a wrong password.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from govbus.accounts.model import AccountRow, AuditRow
from govbus.catalog.store import CatalogStore
from govbus.vocabulary.clock import utc
from govbus.vocabulary.errors import Conflict, UserError

__all__ = [
    "MIN_PASSWORD_CHARS",
    "RIGHTS",
    "ROLES",
    "Account",
    "AccountError",
    "Accounts",
    "AuditEntry",
]

ROLES: tuple[str, ...] = ("viewer", "steward", "approver", "operator")
MIN_PASSWORD_CHARS = 10
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")

# What each role may do; the web console checks these before calling a service.
RIGHTS: Mapping[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "steward": frozenset({"read", "apply", "dispute", "negotiate"}),
    "approver": frozenset({"read", "answer", "negotiate"}),
    "operator": frozenset({"read", "apply", "dispute", "answer", "negotiate", "operate"}),
}

_HASHER = PasswordHasher()
# Verified when the user name is unknown, so both failures take the same time.
_DUMMY_HASH = _HASHER.hash("govbus-no-such-account")


class AccountError(UserError):
    """An account cannot be made or used as asked; the message names the field and the rule."""


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    department: str  # the department's id on the bus
    role: str
    display_name: str

    def may(self, right: str) -> bool:
        return right in RIGHTS.get(self.role, frozenset())


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: dt.datetime
    username: str
    department: str
    role: str
    action: str
    target: str
    outcome: str
    detail: dict[str, Any] = field(default_factory=dict)


class Accounts:
    """The account service over a migrated ``CatalogStore``."""

    def __init__(self, store: CatalogStore, *, coordinator: str) -> None:
        """``coordinator``: the operator's department id; only its accounts may be operators."""
        self.store = store
        self.coordinator = coordinator

    def create(
        self,
        username: str,
        password: str,
        department: str,
        role: str,
        display_name: str = "",
        *,
        now: dt.datetime | None = None,
    ) -> Account:
        """A new account; the department must be in the current catalog."""
        problem = check_username(username) or check_password(password)
        if problem:
            raise AccountError(problem)
        if role not in ROLES:
            raise AccountError(f"role {role!r} is not one of {', '.join(ROLES)}")
        spec = self.store.current()
        dept = spec.department_by_id(department)
        if dept is None:
            raise AccountError(
                f"department {department!r} is not in the catalog: give its id on the bus, "
                "as `govbus catalog show` lists the departments"
            )
        if role == "operator" and department != self.coordinator:
            raise AccountError(
                f"role operator is for the platform operator's department ({self.coordinator}), "
                f"not {department}"
            )
        with self.store.connect() as conn, conn.begin():
            taken = conn.execute(
                sa.select(AccountRow.id).where(AccountRow.username == username)
            ).first()
            if taken is not None:
                raise Conflict(f"user name {username!r} is taken; choose another")
            key = conn.execute(
                sa.insert(AccountRow),
                {
                    "username": username,
                    "password_hash": _HASHER.hash(password),
                    "department": dept.id,
                    "role": role,
                    "display_name": display_name or username,
                    "created_at": utc(now),
                },
            ).inserted_primary_key
        assert key is not None
        return Account(int(key[0]), username, dept.id, role, display_name or username)

    def set_password(self, username: str, password: str) -> None:
        problem = check_password(password)
        if problem:
            raise AccountError(problem)
        with self.store.connect() as conn, conn.begin():
            done = conn.execute(
                sa.update(AccountRow)
                .where(AccountRow.username == username)
                .values(password_hash=_HASHER.hash(password))
            )
            if done.rowcount != 1:
                raise AccountError(f"no account {username!r}")

    def authenticate(self, username: str, password: str) -> Account | None:
        """The account if the password is right and the account enabled; else None."""
        with self.store.connect() as conn:
            row = conn.execute(sa.select(AccountRow).where(AccountRow.username == username)).first()
        stored = row.password_hash if row is not None else _DUMMY_HASH
        try:
            _HASHER.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None or row.disabled_at is not None:
            return None
        if _HASHER.check_needs_rehash(stored):
            with self.store.connect() as conn, conn.begin():
                conn.execute(
                    sa.update(AccountRow)
                    .where(AccountRow.id == row.id)
                    .values(password_hash=_HASHER.hash(password))
                )
        return _account(row)

    def get(self, account_id: int) -> Account | None:
        """An enabled account by id (a session names it), else None."""
        with self.store.connect() as conn:
            row = conn.execute(
                sa.select(AccountRow).where(
                    AccountRow.id == account_id, AccountRow.disabled_at.is_(None)
                )
            ).first()
        return _account(row) if row is not None else None

    def all_accounts(self) -> list[Account]:
        with self.store.connect() as conn:
            rows = conn.execute(sa.select(AccountRow).order_by(AccountRow.username)).all()
        return [_account(r) for r in rows]

    # --- the audit log -----------------------------------------------------------------------

    def audit(
        self,
        who: Account | str,
        action: str,
        target: str,
        outcome: str,
        detail: Mapping[str, Any] | None = None,
        *,
        now: dt.datetime | None = None,
    ) -> None:
        """Record one action; ``who`` is an account, or the user name tried (a failed login)."""
        if isinstance(who, Account):
            username, department, role = who.username, who.department, who.role
        else:
            username, department, role = who[:64], "", ""
        with self.store.connect() as conn, conn.begin():
            conn.execute(
                sa.insert(AuditRow),
                {
                    "at": utc(now),
                    "username": username,
                    "department": department,
                    "role": role,
                    "action": action,
                    "target": target,
                    "outcome": outcome,
                    "detail": dict(detail or {}),
                },
            )

    def audit_log(
        self, *, department: str | None = None, username: str | None = None, limit: int = 200
    ) -> list[AuditEntry]:
        """The newest entries first."""
        query = sa.select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if department is not None:
            query = query.where(AuditRow.department == department)
        if username is not None:
            query = query.where(AuditRow.username == username)
        with self.store.connect() as conn:
            rows = conn.execute(query).all()
        return [_entry(r) for r in rows]


def check_username(username: str) -> str | None:
    if not _USERNAME.fullmatch(username):
        return (
            f"user name {username!r}: 2 to 64 lower-case letters, digits, dot, underscore or "
            "hyphen, starting with a letter or digit"
        )
    return None


def check_password(password: str) -> str | None:
    if len(password) < MIN_PASSWORD_CHARS:
        return f"password: at least {MIN_PASSWORD_CHARS} characters"
    if len(password) > 1024:
        return "password: at most 1024 characters"
    return None


def _entry(r: Any) -> AuditEntry:
    detail = dict(r.detail or {})
    return AuditEntry(
        r.id, utc(r.at), r.username, r.department, r.role, r.action, r.target, r.outcome, detail
    )


def _account(row: Any) -> Account:
    return Account(row.id, row.username, row.department, row.role, row.display_name)


def roles_table(rows: Sequence[str] = ROLES) -> list[tuple[str, str]]:
    """(role, rights) for documentation and the CLI's help."""
    return [(role, ", ".join(sorted(RIGHTS[role]))) for role in rows]
