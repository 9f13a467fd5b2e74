"""govbus-projector: article 10 public views and grant views of conditional resources.

For every 有条件共享 resource with items marked ``shareable_to_all`` the app reads the full
topic ``gov.<code>`` and writes the public view ``gov.<code>.public`` (compacted, like the
source): each record re-encoded with the view's schema (stream_apps.projection.views) carrying
only the shareable items, masked (stream_apps.projection.masking), in the same envelope
(provider, catalog version, op, event time and trace id of the source record). Deletes
(tombstones) pass through.

Every department may READ a view (``User:*``): that is what "shareable with everyone" means,
so reading one needs no share request. Nobody but this app writes it.

Grant views (articles 16-17: a conditional share covers the items the provider approved): for
every distinct item set of the grants valid when the worker starts (``AppContext.grants``)
that is a strict subset of a resource's items, the app also writes
``gov.<code>.items.<digest>`` (stream_apps.projection.views.grant_view_resource: exactly those
items, in clear). The reconciler gives each grantee READ on its set's topic and no READ on the
full topic, so the broker, not the SDK, keeps the other items from it. A grant for a new item
set takes effect when the worker restarts after ``govbus apply`` (the projection is then
filled from the start of the compacted source).

Keys: a source key is the one-data-one-source key, often a 公民身份号码. Where it would reveal
more than the view shows (``views.key_is_public``), the view's key is HMAC-SHA256 of the
source key under the view key secret (``<state_dir>/secrets/apps/<app_id>-view-key.password``,
generated once; hex text): stable per record, so compaction and deletes work, and not
reversible by guessing ids (a plain hash of an 18-digit id is). Changing the secret re-keys
every record: recreate the view topics then.

A source record that is no usable record (not Avro, another resource's) is set aside on
``govbus.quarantine`` (govbus/vocabulary/quarantine.py) and the app goes on.

The app is stateless (no tables). Delivery is at least once: Faust flushes what the app sent
before it commits the source offsets, and a replayed record yields the same view record.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import faust
from prometheus_client import Counter

from govbus.vocabulary import wire
from govbus.vocabulary.acls import consumer_acls
from govbus.vocabulary.config import Settings
from govbus.vocabulary.grants import Grant
from govbus.vocabulary.metrics import REGISTRY
from govbus.vocabulary.naming import EVERYONE, NAMING, PROJECTOR, Naming
from govbus.vocabulary.quarantine import QuarantineEntry
from govbus.vocabulary.secrets import ensure_secret
from govbus.vocabulary.spec import CatalogSpec, Resource
from govbus.vocabulary.topology import (
    StreamApp,
    TopicSpec,
    quarantine_topic_spec,
    resource_topic_config,
)
from stream_apps.projection.masking import mask_value
from stream_apps.projection.views import (
    grant_item_sets,
    grant_view_resource,
    has_public_view,
    key_is_public,
    public_view_resource,
)
from stream_apps.registry import DEFAULT_CONTEXT, AppContext
from stream_apps.runtime import make_app

__all__ = [
    "HEADER_VIEW",
    "PROJECTED",
    "Projected",
    "Projector",
    "build",
    "needs",
    "view_key",
]

HEADER_VIEW = "govbus-view"  # "public" on view records: the schema header names the resource
log = logging.getLogger(__name__)

PROJECTED = Counter(
    "govbus_projection_records",
    "Records (including deletes) the projector wrote to a public view topic",
    ["resource"],
    registry=REGISTRY,
)


def _viewed(spec: CatalogSpec) -> list[Resource]:
    return [r for r in spec.resources if has_public_view(r)]


def needs(spec: CatalogSpec, context: AppContext = DEFAULT_CONTEXT) -> StreamApp:
    """Reads each viewed resource's topic, writes (and has created) its public view topic; writes
    the grant view of each distinct granted item set (``context.grants``), which the reconciler
    creates with the grants."""
    naming = context.naming
    app_id = naming.app_user(PROJECTOR)
    reads: dict[str, None] = {}
    writes: list[str] = []
    topics, acls = {}, {}
    for resource in _viewed(spec):
        source = naming.resource_topic(resource.code)
        view = naming.public_view_topic(resource.code)
        reads[source] = None
        writes.append(view)
        topics[view] = TopicSpec(
            context.partitions,
            context.replication,
            resource_topic_config(resource),  # compacted by key; tombstones kept as the source's
            f"public view of {resource.name} ({resource.code}): the items shareable with "
            "everyone, masked (article 10)",
        )
        for acl in consumer_acls(EVERYONE, view):
            acls[acl] = f"{resource.name}'s public view is for every department (article 10)"
    for code, (_resource, sets) in grant_item_sets(spec, context.grants).items():
        reads[naming.resource_topic(code)] = None
        for items in sets:
            view = naming.grant_view_topic(code, items)
            writes.append(view)  # the reconciler creates it with the grant (desired.py)
    if reads:
        writes.append(naming.quarantine_topic)
        topics[naming.quarantine_topic] = quarantine_topic_spec(
            context.partitions, context.replication
        )
    return StreamApp(
        app_id=app_id,
        user=app_id,
        purpose="projects conditional resources onto their public views (article 10) and "
        "their granted item sets (articles 16-17)",
        reads=tuple(reads),
        writes=tuple(writes),
        topics=topics,
        acls=acls,
    )


def view_key(
    resource: Resource, key: bytes | None, secret: bytes, items: Iterable[str] | None = None
) -> bytes | None:
    """The view record's key: the source key if it shows nothing hidden, else its HMAC.

    ``items``: a grant view's item set; None: the public view.
    """
    if key is None or key_is_public(resource, items):
        return key
    return hmac.new(secret, key, hashlib.sha256).hexdigest().encode("ascii")


@dataclass(frozen=True)
class Projected:
    """One record for a view topic."""

    resource_code: str
    topic: str
    key: bytes | None
    value: bytes | None  # None: a delete
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True)
class _Route:
    """One view of a source topic."""

    resource: Resource
    view: Resource
    topic: str
    kind: bytes  # the HEADER_VIEW value: b"public" or b"grant"
    items: tuple[str, ...] | None  # a grant view's item set; None: the public view


class Projector:
    """The app's logic without Kafka: source record in, one record per view out."""

    def __init__(
        self,
        spec: CatalogSpec,
        secret: bytes,
        *,
        naming: Naming = NAMING,
        history: Iterable[CatalogSpec] = (),
        grants: Iterable[Grant] = (),
    ) -> None:
        self.secret = secret
        self.schemas = wire.SchemaCatalog.build(spec, history)
        # source topic -> its views
        self.routes: dict[str, list[_Route]] = {}
        for r in _viewed(spec):
            view_topic = naming.public_view_topic(r.code)
            route = _Route(r, public_view_resource(r), view_topic, b"public", None)
            self.routes.setdefault(naming.resource_topic(r.code), []).append(route)
        for code, (r, sets) in grant_item_sets(spec, grants).items():
            for items in sets:
                route = _Route(
                    r, grant_view_resource(r, items), naming.grant_view_topic(code, items),
                    b"grant", items,
                )  # fmt: skip
                self.routes.setdefault(naming.resource_topic(code), []).append(route)

    @property
    def sources(self) -> list[str]:
        return sorted(self.routes)

    @property
    def views(self) -> list[str]:
        return sorted(route.topic for routes in self.routes.values() for route in routes)

    def project(self, topic: str, key: bytes | None, value: bytes | None) -> list[Projected]:
        """The view records of one source record, one per view of its resource.

        Raises KeyError (the fingerprint in hex) for a record written with a schema no known
        catalog version has, ValueError/EOFError for bytes that are no record.
        """
        routes = self.routes[topic]
        resource = routes[0].resource
        if value is None:
            return [
                Projected(
                    resource.code,
                    route.topic,
                    view_key(resource, key, self.secret, route.items),
                    None,
                    [(HEADER_VIEW, route.kind)],
                )
                for route in routes
            ]
        envelope = wire.decode_single_object(value, self.schemas, reader=resource)
        if envelope["resource_code"] != resource.code:
            raise ValueError(
                f"record says it is resource {envelope['resource_code']}, not {resource.code}"
            )
        return [self._one(route, key, envelope) for route in routes]

    def _one(self, route: _Route, key: bytes | None, envelope: dict[str, Any]) -> Projected:
        resource, view = route.resource, route.view
        payload = envelope["payload"]
        out = dict(envelope)
        if payload is not None:
            out["payload"] = {
                item.code: (
                    payload.get(item.code)
                    if route.items is not None
                    else mask_value(resource_item.mask, payload.get(item.code))
                )
                for item in view.items
                if (resource_item := resource.item(item.code)) is not None
            }
        encoded = wire.encode_single_object(view, out)
        headers = [
            (wire.HEADER_SCHEMA, wire.envelope_name(view).encode()),
            (wire.HEADER_CATALOG_VERSION, str(envelope["catalog_version"]).encode()),
            (HEADER_VIEW, route.kind),
        ]
        key_out = view_key(resource, key, self.secret, route.items)
        return Projected(resource.code, route.topic, key_out, encoded, headers)


def build(
    settings: Settings,
    spec: CatalogSpec,
    password: str,
    context: AppContext = DEFAULT_CONTEXT,
    *,
    history: Iterable[CatalogSpec] = (),
    key_secret: str | None = None,
    **faust_conf: Any,
) -> faust.App:
    """The Faust app; ``key_secret`` defaults to the one kept under the state directory."""
    stream_app = needs(spec, context)
    app_id = stream_app.app_id
    secret = key_secret or ensure_secret(settings.state_dir, f"{app_id}-view-key", "apps")
    projector = Projector(
        spec, secret.encode(), naming=context.naming, history=history, grants=context.grants
    )
    app = make_app(stream_app, settings, password, partitions=context.partitions, **faust_conf)
    if not projector.sources:
        log.warning("%s: no public view or grant view to keep", app_id)
        return app
    raw: Mapping[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    source = app.topic(*projector.sources, **raw)
    outputs = {name: app.topic(name, **raw) for name in projector.views}
    quarantine = app.topic(context.naming.quarantine_topic, **raw)

    @app.agent(source, name=f"{app_id}.project")
    async def project(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            msg = event.message
            where = f"{msg.topic} partition {msg.partition} offset {msg.offset}"
            try:
                outs = projector.project(msg.topic, msg.key, msg.value)
            except KeyError as exc:
                # Written with a newer catalog: stop rather than skip, so the record is
                # projected once the worker runs with that catalog version.
                raise RuntimeError(
                    f"{app_id}: {where} was written with schema fingerprint {exc.args[0]}, "
                    "unknown to this catalog; update the catalog and restart the worker"
                ) from None
            except (ValueError, EOFError) as exc:
                resource = projector.routes[msg.topic][0].resource
                entry = QuarantineEntry.of(
                    topic=msg.topic, partition=msg.partition, offset=msg.offset,
                    provider=resource.provider, resource=resource.code, reader=app_id,
                    reason=f"not a valid record: {exc}", key=msg.key, value=msg.value,
                    headers=msg.headers,
                )  # fmt: skip
                # Acknowledged before the source offset is committed (awaited below).
                await (await quarantine.send(key=entry.key, value=entry.to_json()))
                entry.counted()
                log.warning("%s: %s is not a valid record, quarantined: %s", app_id, where, exc)
                continue
            for out in outs:
                await outputs[out.topic].send(key=out.key, value=out.value, headers=out.headers)
                PROJECTED.labels(resource=out.resource_code).inc()

    return app
