"""How every govbus stream app connects: a Faust app on the broker as its own SCRAM user.

Faust (faust-streaming) talks to Kafka through aiokafka. The apps never create topics
themselves (``topic_allow_declare=False``): the reconciler creates their inputs, outputs and
internal topics (``govbus.reconcile.desired.StreamApp``) and grants the app's user exactly what
it needs, so an app that asks for more is refused by the broker instead of widening its rights.

Tables are kept in memory and rebuilt from their changelog topics when a worker starts
(Faust's recovery); the changelog, not a local RocksDB file, is the state that survives.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TransportT

from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.config import ConfigError, Settings
from govbus.vocabulary.topology import StreamApp

__all__ = ["FETCH_MAX_WAIT", "GovbusApp", "broker_urls", "make_app"]

# How long a fetch request waits at the broker for data (aiokafka's fetch_max_wait_ms). Faust's
# driver hard-codes 1.5 s (faust/transport/drivers/aiokafka.py), and aiokafka leaves a partition
# out of the next fetch while its buffered records are not yet drained (fetcher.py), so a record
# arriving on that partition waits for the fetch in flight: up to 1.5 s on an idle worker
# (measured: produce -> detect p99 0.8-1.2 s). 50 ms bounds that wait; an idle worker then sends
# ~20 small fetch requests a second per broker.
FETCH_MAX_WAIT = 0.05


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Read when the consumer starts and builds its fetcher; no public setting for it.
        wait = getattr(self.app, "fetch_max_wait", FETCH_MAX_WAIT)
        consumer._fetch_max_wait_ms = int(wait * 1000)
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class GovbusApp(faust.App):
    """A Faust app whose Kafka consumer waits at most ``fetch_max_wait`` s per fetch."""

    fetch_max_wait: float = FETCH_MAX_WAIT

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)


def broker_urls(settings: Settings) -> list[str]:
    servers = kafka_clients.client_config(settings, "-", "-")["bootstrap.servers"]
    return [f"kafka://{server.strip()}" for server in str(servers).split(",") if server.strip()]


def _datadir(settings: Settings, app: StreamApp) -> Path:
    """Where Faust keeps the app's table metadata (it creates only the last directory)."""
    path = settings.state_dir / "stream-apps" / app.app_id
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def make_app(
    app: StreamApp,
    settings: Settings,
    password: str,
    *,
    partitions: int = 3,
    fetch_max_wait: float = FETCH_MAX_WAIT,
    **conf: Any,
) -> faust.App:
    """A Faust app named ``app.app_id`` authenticated as ``app.user``.

    ``partitions`` must match the partitions of the topics the reconciler created (tables are
    co-partitioned with their source topics). ``fetch_max_wait`` (s) bounds how long a fetch
    waits at the broker (``FETCH_MAX_WAIT``). ``conf`` overrides Faust settings.
    """
    if settings.sasl_mechanism not in ("SCRAM-SHA-512", "SCRAM-SHA-256"):
        raise ConfigError(
            f"stream app {app.app_id}: sasl_mechanism {settings.sasl_mechanism!r} is not "
            "supported; govbus clusters use SCRAM-SHA-512 (or SCRAM-SHA-256)"
        )
    # SASL_SSL needs a TLS context; SASL_PLAINTEXT (the local broker) none.
    tls = ssl.create_default_context() if settings.security_protocol == "SASL_SSL" else None
    options: dict[str, Any] = {
        "broker": broker_urls(settings),
        "broker_credentials": faust.SASLCredentials(
            username=app.user, password=password, mechanism=settings.sasl_mechanism,
            ssl_context=tls,
        ),
        "store": "memory://",
        # Faust keeps its table metadata in "<app id>-data" under the working directory by
        # default; a govbus process keeps its files under the state directory instead.
        "datadir": str(_datadir(settings, app)),
        "topic_partitions": partitions,
        "topic_allow_declare": False,
        "web_enabled": False,
        "processing_guarantee": "at_least_once",
        "producer_acks": -1,
        # A worker that dies without leaving its group (kill -9, a lost host) holds its
        # partitions until the session times out; Faust's 60 s default stalls every restart
        # that long. Batches take well under a second, so heartbeats keep 15 s easily.
        "broker_session_timeout": 15.0,
        "broker_heartbeat_interval": 3.0,
        # Faust's commit timer (2.8 s by default): what an idle app commits at the latest.
        "broker_commit_interval": 1.0,
    }  # fmt: skip
    options.update(conf)
    built = GovbusApp(app.app_id, **options)
    built.fetch_max_wait = float(fetch_max_wait)
    return built
