"""A grant: an approved share request, as every part of govbus speaks of it (articles 16-17).

The share-request workflow (govbus.share) makes them; the reconciler turns valid ones into
ACLs; the consumer SDK and the dispute rules check them.

A grant covers the info items the provider approved (``items``; empty: the whole resource) for
the purpose stated in the request (``purpose``). The broker enforces the items: a grant for a
strict subset of a resource's items opens only the item-set projection topic that carries
exactly those items (``Naming.grant_view_topic``, kept by the projector app), never the full
resource topic; grants for the same item set share one projection (``granted_items`` is the
canonical set, in catalog order).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from govbus.vocabulary.spec import Resource


@dataclass(frozen=True)
class Grant:
    """``department_code`` may read ``resource_code`` until expiry.

    ``items``: the approved info-item codes (empty: every item); ``purpose``: the purpose the
    grant was given for (article 18: the data is used for it only; None for grants made
    before purposes were bound, which no conditional read accepts); ``grant_id``: the share
    grant's id in the platform database (None for grants made by hand in tests).
    """

    department_code: str  # 统一社会信用代码 of the consumer department
    resource_code: str
    expires_at: dt.datetime | None = None  # None: no expiry
    items: tuple[str, ...] = ()
    purpose: str | None = None
    grant_id: int | None = None

    def valid_at(self, now: dt.datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


def granted_items(grant: Grant, resource: Resource) -> tuple[str, ...] | None:
    """The grant's item set in the resource's catalog order; None: the whole resource.

    None when the grant names no items or names every item of the current catalog version;
    items the catalog no longer has are dropped, and a grant none of whose items remain gives
    the empty tuple (nothing to read).
    """
    if not grant.items:
        return None
    wanted = set(grant.items)
    present = tuple(item.code for item in resource.items if item.code in wanted)
    if len(present) == len(resource.items):
        return None
    return present
