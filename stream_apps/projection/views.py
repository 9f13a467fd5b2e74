"""Article 10 public views: the part of a conditional resource everyone may read.

A 有条件共享 resource may mark some info items ``shareable_to_all`` ("only part of it to
everyone"). Its public view (topic ``gov.<code>.public``, stream_apps/projection.py) carries
only those items, masked as the catalog says. The view is described as a derived ``Resource``
(``public_view_resource``) so the existing schema machinery — envelope, Avro single-object
encoding, ``SchemaCatalog`` — applies unchanged:

- items: the shareable ones, in catalog order; a masked item becomes text (data type C, no
  length: a masked value is text whatever the source type) and keeps ``required``;
- same code and provider (the envelope says whose resource the view is of); name suffixed
  公开视图; no holders (they hold the full resource, not the view).

The payload record keeps the resource's Avro name; its fingerprint differs from the full
resource's whenever an item is left out or masked, so a reader never confuses the two.

Message keys: the full topic's key is the one-data-one-source key, often a 公民身份号码 in clear.
The view keeps it only when every key item is shareable and unmasked (it is in the payload
anyway); otherwise the key is a keyed pseudonym (``stream_apps.projection.app.view_key``), stable
per record so compaction and deletes still work.

Grant views (item-set projections, articles 16-17): a grant for part of a conditional
resource's items is read from ``gov.<code>.items.<digest>`` (``Naming.grant_view_topic``),
described by ``grant_view_resource``: exactly the granted items, in catalog order, in clear
(the provider approved them for this consumer; the catalog's masks are for the article 10
public view, which everyone may read), name suffixed 授权视图. Its key follows the same rule as
the public view's (``key_is_public(resource, items)``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from govbus.vocabulary.errors import UserError
from govbus.vocabulary.grants import Grant, granted_items
from govbus.vocabulary.spec import CatalogSpec, InfoItem, Resource
from govbus.vocabulary.wire import SchemaCatalog, fingerprint

__all__ = [
    "GRANT_VIEW_NAME_SUFFIX",
    "VIEW_NAME_SUFFIX",
    "ViewError",
    "grant_item_sets",
    "grant_view_resource",
    "grant_view_schema_catalog",
    "has_public_view",
    "key_is_public",
    "public_view_resource",
    "view_schema_catalog",
]

VIEW_NAME_SUFFIX = "（公开视图）"
GRANT_VIEW_NAME_SUFFIX = "（授权视图）"


class ViewError(UserError):
    """The resource has no public view; the message says why."""


def has_public_view(resource: Resource) -> bool:
    """A conditional resource with at least one item shareable with everyone (article 10)."""
    return resource.share_type == "conditional" and any(i.shareable_to_all for i in resource.items)


def key_is_public(resource: Resource, items: Iterable[str] | None = None) -> bool:
    """Whether the record key may appear in the view as is: every key item shown unmasked.

    ``items``: a grant view's item set (shown in clear); None: the public view.
    """
    shown = None if items is None else set(items)
    for code in resource.key.items:
        item = resource.item(code)
        if item is None:
            return False
        if shown is not None:
            if code not in shown:
                return False
        elif not item.shareable_to_all or item.mask != "none":
            return False
    return True


def _view_item(item: InfoItem) -> InfoItem:
    if item.mask == "none":
        return dataclasses.replace(item, compare="exact", tolerance=None)
    return InfoItem(
        name=item.name,
        code=item.code,
        data_type="C",
        required=item.required,
        sensitivity=item.sensitivity,
        shareable_to_all=True,
    )


def public_view_resource(resource: Resource) -> Resource:
    """The derived resource of the public view; ViewError if the resource has none."""
    if not has_public_view(resource):
        if resource.share_type != "conditional":
            why = (
                f"it is shared {resource.share_type!r}, and only conditional (有条件共享) "
                "resources have public views (article 10)"
            )
        else:
            why = "none of its items is marked shareable_to_all in the catalog"
        raise ViewError(f"resource {resource.code} {resource.name} has no public view: {why}")
    return dataclasses.replace(
        resource,
        name=resource.name + VIEW_NAME_SUFFIX,
        items=tuple(_view_item(i) for i in resource.items if i.shareable_to_all),
        holders=(),
    )


def grant_view_resource(resource: Resource, items: Iterable[str]) -> Resource:
    """The derived resource of a grant view: exactly ``items``, in catalog order, in clear."""
    wanted = set(items)
    unknown = wanted - {i.code for i in resource.items}
    if unknown or not wanted:
        raise ViewError(
            f"resource {resource.code} {resource.name} has no info item(s) "
            f"{', '.join(sorted(unknown)) or '(none named)'} for a grant view"
        )
    return dataclasses.replace(
        resource,
        name=resource.name + GRANT_VIEW_NAME_SUFFIX,
        items=tuple(
            dataclasses.replace(i, compare="exact", tolerance=None)
            for i in resource.items
            if i.code in wanted
        ),
        holders=(),
    )


def grant_view_schema_catalog(
    spec: CatalogSpec, resource_code: str, items: Iterable[str], history: Iterable[CatalogSpec] = ()
) -> SchemaCatalog:
    """Writer schemas of one grant view in the current and earlier catalog versions."""
    wanted = tuple(items)
    out = SchemaCatalog()
    for version in (spec, *history):
        resource = version.resource(resource_code)
        if resource is None:
            continue
        present = [code for code in wanted if resource.item(code) is not None]
        if present:
            view = grant_view_resource(resource, present)
            out.by_fingerprint.setdefault(fingerprint(view), view)
    return out


def view_schema_catalog(spec: CatalogSpec, history: Iterable[CatalogSpec] = ()) -> SchemaCatalog:
    """Writer schemas of the public views of the current and earlier catalog versions."""
    out = SchemaCatalog()
    for version in (spec, *history):
        for resource in version.resources:
            if has_public_view(resource):
                view = public_view_resource(resource)
                out.by_fingerprint.setdefault(fingerprint(view), view)
    return out


def grant_item_sets(
    spec: CatalogSpec, grants: Iterable[Grant]
) -> dict[str, tuple[Resource, list[tuple[str, ...]]]]:
    """Conditional resource code -> (resource, its distinct granted strict item subsets).

    Each set in catalog order, sets sorted; a grant for every item (or none named) reads the
    full topic and needs no projection; an empty set (items the catalog no longer has) none.
    """
    out: dict[str, tuple[Resource, set[tuple[str, ...]]]] = {}
    for grant in grants:
        resource = spec.resource(grant.resource_code)
        if resource is None or resource.share_type != "conditional":
            continue
        items = granted_items(grant, resource)
        if items:
            out.setdefault(resource.code, (resource, set()))[1].add(items)
    return {code: (r, sorted(sets)) for code, (r, sets) in sorted(out.items())}
