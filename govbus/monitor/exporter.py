"""``govbus exporter``: one process that serves what other processes recorded.

Publishers, consumers and stream apps serve their own counters (``--metrics-port``); state that
lives elsewhere is served here, read at each scrape: the reconciler's last drift counts and
apply time (``<state_dir>/reconciler/status.json``) and the share-request figures (queried
from the catalog database).
"""

from __future__ import annotations

import contextlib
import signal
import threading

from prometheus_client.registry import Collector

from govbus.catalog.store import CatalogStore
from govbus.reconcile.status import StatusCollector
from govbus.share.metrics import register_share_collector
from govbus.vocabulary import metrics
from govbus.vocabulary.config import Settings


def state_collectors(settings: Settings) -> list[Collector]:
    """Collectors of state other processes recorded: the reconciler's drift and apply time."""
    return [StatusCollector(settings.state_dir)]


def serve_until_stopped(settings: Settings, port: int, addr: str) -> None:
    """Serve every collector on ``addr:port`` until SIGTERM or Ctrl-C."""
    for collector in state_collectors(settings):
        metrics.REGISTRY.register(collector)
    store = CatalogStore.for_settings(settings)  # kept open: queried at every scrape
    register_share_collector(store)
    server, _ = metrics.serve(port, addr)
    print(f"serving metrics on http://{addr}:{server.server_port}/metrics until interrupted")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends it as SIGTERM does
        stop.wait()
    server.shutdown()
