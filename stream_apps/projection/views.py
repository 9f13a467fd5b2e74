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
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from govbus.vocabulary.errors import UserError
from govbus.vocabulary.spec import CatalogSpec, InfoItem, Resource
from govbus.vocabulary.wire import SchemaCatalog, fingerprint

__all__ = [
    "VIEW_NAME_SUFFIX",
    "ViewError",
    "has_public_view",
    "key_is_public",
    "public_view_resource",
    "view_schema_catalog",
]

VIEW_NAME_SUFFIX = "（公开视图）"


class ViewError(UserError):
    """The resource has no public view; the message says why."""


def has_public_view(resource: Resource) -> bool:
    """A conditional resource with at least one item shareable with everyone (article 10)."""
    return resource.share_type == "conditional" and any(i.shareable_to_all for i in resource.items)


def key_is_public(resource: Resource) -> bool:
    """Whether the record key may appear in the view as is: every key item shown unmasked."""
    for code in resource.key.items:
        item = resource.item(code)
        if item is None or not item.shareable_to_all or item.mask != "none":
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


def view_schema_catalog(spec: CatalogSpec, history: Iterable[CatalogSpec] = ()) -> SchemaCatalog:
    """Writer schemas of the public views of the current and earlier catalog versions."""
    out = SchemaCatalog()
    for version in (spec, *history):
        for resource in version.resources:
            if has_public_view(resource):
                view = public_view_resource(resource)
                out.by_fingerprint.setdefault(fingerprint(view), view)
    return out
