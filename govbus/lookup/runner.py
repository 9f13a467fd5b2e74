"""``govbus lookup serve``: one instance of the lookup service, built from the settings.

The instance authenticates to Kafka as the service's platform user (``govbus-lookup``; its
password is the one ``govbus apply`` stored in ``secrets/apps/``), joins the group of that
name, loads its partitions, and serves HTTP on ``addr:port``. Instances find each other
through the group: each advertises ``advertised`` (default ``addr:port``) as the address the
others forward to. Instances of one service share the state directory's ``secrets/apps/``
(the forwarding token and the HMAC key of audited keys) and ``lookup/api-keys.json``.
The catalog (resources, departments) is read at start: restart after a catalog change.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Callable, Iterator, Sequence

import uvloop
from aiohttp import web
from confluent_kafka.admin import AdminClient

from govbus.catalog.store import CatalogStore
from govbus.lookup.apikeys import KeyRegistry, platform_secret
from govbus.lookup.audit import QueryAuditor
from govbus.lookup.loader import Loader
from govbus.lookup.service import DEFAULT_LIMITS, Limits, LookupService
from govbus.share.requests import ShareGrant, ShareRequests
from govbus.subscribe.audit import HEAD_READER_CONFIG
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.config import ConfigError, Settings
from govbus.vocabulary.naming import LOOKUP
from govbus.vocabulary.secrets import read_secret
from govbus.vocabulary.spec import CatalogSpec


def settle_collector() -> None:
    """Take what is alive once the store is loaded (the store above all) out of the cyclic
    garbage collector's generations: a full collection otherwise walks every record of the
    store again (1,000,000 keys: 39-62 ms a full collection, a stall of every lookup in
    flight; after this, see docs/lookup.md). Reference counting still frees a revoked
    partition's records; what is frozen is only never searched for cycles, which the store's
    dicts of bytes do not make."""
    gc.collect()
    gc.freeze()


def _grants(settings: Settings) -> list[ShareGrant]:
    with CatalogStore.opened(settings) as store:
        return ShareRequests(store, coordinator=settings.share_coordinator).valid_grants()


@contextlib.contextmanager
def instance(
    settings: Settings,
    *,
    name: str,
    advertised: str,
    limits: Limits = DEFAULT_LIMITS,
    spec: CatalogSpec | None = None,
    history: tuple[CatalogSpec, ...] = (),
    grants: Callable[[], Sequence[ShareGrant]] | None = None,
) -> Iterator[LookupService]:
    """A started loader and auditor with the service over them; stopped on leaving.

    ``spec`` (with ``history``) and ``grants`` replace the catalog's current version and its
    valid grants (tests and benchmarks without a catalog database)."""
    naming = settings.naming
    user = naming.app_user(LOOKUP)
    password = read_secret(settings.state_dir, user, "apps")
    if password is None:
        raise ConfigError(
            f"no password for the lookup service's user {user} in "
            f"{settings.state_dir}/secrets/apps/: run `govbus apply` (it creates the user)"
        )
    if spec is None:
        with CatalogStore.opened(settings) as store:
            spec = store.current()
            history = tuple(store.version(v.number) for v in store.history())
    consumer = kafka_clients.consumer(
        settings,
        user,
        password,
        user,
        **{
            "client.id": f"{user}@{advertised}",
            "partition.assignment.strategy": "range",
            "enable.partition.eof": True,
            **kafka_clients.WHOLE_TOPIC_FETCHES,  # it loads its partitions whole
        },
    )
    admin = AdminClient(kafka_clients.client_config(settings, user, password))
    loader = Loader(
        consumer, admin, spec, history, naming, user, advertised, on_loaded=settle_collector
    )
    head_reader = kafka_clients.consumer(settings, user, password, user, **HEAD_READER_CONFIG)
    auditor = QueryAuditor(
        kafka_clients.producer(settings, user, password, **{"linger.ms": 2}),
        head_reader,
        naming.audit_topic,
        name,
        platform_secret(settings.state_dir, f"{user}-audit-hmac"),
    )
    service = LookupService(
        spec,
        loader,
        auditor,
        KeyRegistry(settings.state_dir),
        grants or (lambda: _grants(settings)),
        platform_secret(settings.state_dir, f"{user}-forward"),
        instance=name,
        limits=limits,
    )
    loader.start()
    try:
        yield service
    finally:
        loader.stop()
        auditor.close()


def serve(
    settings: Settings, addr: str, port: int, *, name: str, advertised: str, limits: Limits
) -> None:
    """Serve until SIGINT/SIGTERM."""
    with instance(settings, name=name, advertised=advertised, limits=limits) as service:
        serve_until_stopped(
            service, addr, port,
            banner=f"lookup instance {name} serving on http://{addr}:{port} (advertised as "
            f"{advertised})",
        )  # fmt: skip


def serve_until_stopped(service: LookupService, addr: str, port: int, *, banner: str) -> None:
    """Run ``service``'s HTTP app on ``addr:port`` until SIGINT/SIGTERM, on uvloop's event
    loop, which does the loop's own work (transports, callbacks, the audit acknowledgements'
    wake-ups) in C: measured in ``benchmarks.lookup_bench`` on an idle machine, max single
    lookups 1,689/s on asyncio's loop, 2,386/s on uvloop (docs/lookup.md)."""

    async def main() -> None:
        runner = web.AppRunner(service.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, addr, port)
        await site.start()
        print(banner, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()

    uvloop.run(main())
