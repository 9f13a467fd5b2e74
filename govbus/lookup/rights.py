"""Which items of a resource a department sees in a lookup or download (articles 10, 11, 16).

- the provider, and everyone for a 无条件共享 resource: every item, as it is (``full``);
- a 有条件共享 resource with a valid grant for the stated purpose: the granted items as they are
  (all items if the grant names none), and the other items shareable with everyone masked
  (``granted``);
- a 有条件共享 resource without one: its article 10 public view, the items shareable with
  everyone, masked by the catalog's rule (``public``; ``stream_apps.projection.masking``, the
  same functions the projection app writes ``gov.<code>.public`` with);
- otherwise (不予共享, or conditional without a public view): refused, ``no-rights``.

The lookup service is a trusted platform component: it reads the full resource topics as its
own user and filters here, from the catalog's grants (govbus.share). The broker enforces the
same scope for departments' own clients (ACLs on ``gov.<code>`` and ``gov.<code>.public``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from govbus.lookup.errors import LookupRefused
from govbus.share.requests import ShareGrant
from govbus.vocabulary.spec import Department, Mask, Resource
from stream_apps.projection.masking import mask_value
from stream_apps.projection.views import has_public_view

ViewKind = Literal["full", "granted", "public"]


@dataclass(frozen=True)
class View:
    """What one department sees of one resource: items in clear and items masked."""

    kind: ViewKind
    clear: tuple[str, ...]
    masked: Mapping[str, Mask] = field(default_factory=dict)
    grant: ShareGrant | None = None

    @property
    def items(self) -> tuple[str, ...]:
        """Every item shown, in the catalog's order of ``clear`` then ``masked``."""
        return (*self.clear, *self.masked)

    def shape(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The payload with only the visible items, masked ones masked."""
        out = {code: payload.get(code) for code in self.clear}
        for code, mask in self.masked.items():
            out[code] = mask_value(mask, payload.get(code))
        return out


def _public(resource: Resource, shown: Iterable[str] = ()) -> dict[str, Mask]:
    skip = set(shown)
    return {i.code: i.mask for i in resource.items if i.shareable_to_all and i.code not in skip}


def view_for(
    dept: Department,
    resource: Resource,
    purpose: str,
    grants: Iterable[ShareGrant],
    now: dt.datetime | None = None,
) -> View:
    """The department's view of the resource for ``purpose``, or ``no-rights``."""
    all_items = tuple(i.code for i in resource.items)
    if resource.provider == dept.code or resource.share_type == "unconditional":
        return View("full", all_items)
    what = f"resource {resource.code} {resource.name}"
    if resource.share_type == "none":
        basis = resource.legal_basis or "not recorded in the catalog"
        raise LookupRefused(
            "no-rights",
            f"{what} is not shared (不予共享; legal basis: {basis}); only its provider reads it",
        )
    now = now or dt.datetime.now(dt.UTC)
    mine = [
        g
        for g in grants
        if g.department == dept.code and g.resource == resource.code and g.valid_at(now)
    ]
    fitting = [g for g in mine if g.purpose == purpose]
    if fitting:
        grant = max(fitting, key=lambda g: g.expires_at)
        granted = set(grant.items) if grant.items else set(all_items)
        clear = tuple(code for code in all_items if code in granted)
        return View("granted", clear, _public(resource, clear), grant)
    if has_public_view(resource):
        return View("public", (), _public(resource))
    held = ", ".join(sorted({g.purpose for g in mine}))
    also = f"; its grants are for purpose(s) {held}" if held else ""
    raise LookupRefused(
        "no-rights",
        f"{what} is shared on conditions (有条件共享) and has no public view; department "
        f"{dept.id} holds no valid grant for purpose {purpose!r}{also}: apply with `govbus "
        f"request {resource.code} --department {dept.id} --purpose {purpose} ...`",
    )
