"""A department's session built from the catalog store: the current catalog, the department's
stored password and the grants it needs. The CLI's department commands and the web console's
dispute pages act as a department this way."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from govbus.catalog.store import CatalogStore
from govbus.share.requests import ShareRequests
from govbus.vocabulary.config import Settings
from govbus.vocabulary.grants import Grant
from govbus.vocabulary.secrets import department_password
from govbus.vocabulary.session import DepartmentSession
from govbus.vocabulary.spec import CatalogSpec

# "own": the department's valid grants (a conditional read needs one); "all": every valid
# grant (the dispute rules decide who may read a dispute from the resource's grantees).
Grants = Literal["none", "own", "all"]


def session_from_store(
    settings: Settings,
    store: CatalogStore,
    department_id: str,
    password_file: Path | None = None,
    *,
    grants: Grants = "none",
    history: list[CatalogSpec] | None = None,
) -> DepartmentSession:
    """The session of ``department_id`` on ``store``'s current catalog. ``history``, if given,
    is filled with the earlier catalog versions (their schemas decode older records)."""
    spec, version = store.current(), store.latest_number()
    if history is not None:
        history.extend(store.version(v.number) for v in store.history())
    valid: tuple[Grant, ...] = ()
    if grants != "none":
        share = ShareRequests(store, coordinator=settings.share_coordinator)
        dept = spec.department_by_id(department_id)
        if grants == "all":
            valid = tuple(share.grants())
        elif dept is not None:
            valid = tuple(share.grants(department=dept.code))
    return DepartmentSession(
        settings,
        department_id,
        department_password(settings.state_dir, department_id, password_file),
        spec,
        catalog_version=version,
        grants=valid,
        naming=settings.naming,
    )
