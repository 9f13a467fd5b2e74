"""A department's session for the commands that act as one (publish, observe, consume,
disputes): the current catalog, its password, and the grants the command needs."""

from __future__ import annotations

from pathlib import Path

from govbus.catalog.store import CatalogStore
from govbus.share.sessions import Grants, session_from_store
from govbus.vocabulary.config import Settings
from govbus.vocabulary.session import DepartmentSession
from govbus.vocabulary.spec import CatalogSpec

__all__ = ["Grants", "department_session"]


def department_session(
    settings: Settings,
    department_id: str,
    password_file: Path | None,
    *,
    grants: Grants = "none",
    history: list[CatalogSpec] | None = None,
) -> DepartmentSession:
    """The session of ``department_id`` on the current catalog (govbus.share.sessions)."""
    with CatalogStore.opened(settings) as store:
        return session_from_store(
            settings, store, department_id, password_file, grants=grants, history=history
        )
