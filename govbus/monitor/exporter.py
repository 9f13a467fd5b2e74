"""``govbus exporter``: one process that serves what other processes recorded.

Publishers, consumers and stream apps serve their own counters (``--metrics-port``); state that
lives elsewhere is served here, read at each scrape: the reconciler's last drift counts and
apply time (``<state_dir>/reconciler/status.json``), the share-request figures and the
violation ledger's (queried from the catalog database), and whether the broker answers
(``govbus.monitor.broker``) and when the TLS certificates expire (``govbus.monitor.tls``).
``/healthz`` says whether the database answers.
"""

from __future__ import annotations

import contextlib
import signal
import threading

import sqlalchemy as sa
from prometheus_client.registry import Collector

from govbus.catalog.store import CatalogStore
from govbus.monitor.broker import BrokerCollector
from govbus.monitor.tls import TlsCollector
from govbus.reconcile.status import StatusCollector
from govbus.share.metrics import register_share_collector
from govbus.supervise.metrics import EvaluationCollector, register_supervision_collector
from govbus.vocabulary import metrics
from govbus.vocabulary.config import Settings


def state_collectors(settings: Settings) -> list[Collector]:
    """Collectors of state other processes recorded: the reconciler's drift and apply time, the
    certificates ``govbus broker`` made (their expiry)."""
    return [StatusCollector(settings.state_dir), TlsCollector(settings)]


def database_health(store: CatalogStore) -> str | None:
    """None if the catalog database answers a query, else why not (for ``/healthz``)."""
    try:
        with store.connect() as conn:
            conn.execute(sa.select(1))
    except sa.exc.SQLAlchemyError as exc:
        return f"catalog database: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    return None


def serve_until_stopped(settings: Settings, port: int, addr: str) -> None:
    """Serve every collector on ``addr:port`` until SIGTERM or Ctrl-C."""
    extra = [BrokerCollector(settings), EvaluationCollector(settings.state_dir)]
    for collector in [*state_collectors(settings), *extra]:
        metrics.REGISTRY.register(collector)
    store = CatalogStore.for_settings(settings)  # kept open: queried at every scrape
    register_share_collector(store)
    register_supervision_collector(store)
    server, _ = metrics.serve(port, addr, health=lambda: database_health(store))
    print(f"serving metrics on http://{addr}:{server.server_port}/metrics until interrupted")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends it as SIGTERM does
        stop.wait()
    server.shutdown()
