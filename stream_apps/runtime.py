"""How every govbus stream app connects: a Faust app on the broker as its own SCRAM user.

Faust (faust-streaming) talks to Kafka through aiokafka. The apps never create topics
themselves (``topic_allow_declare=False``): the reconciler creates their inputs, outputs and
internal topics (``govbus.reconcile.desired.StreamApp``) and grants the app's user exactly what
it needs, so an app that asks for more is refused by the broker instead of widening its rights.

Tables are kept in memory and rebuilt from their changelog topics when a worker starts
(Faust's recovery); the changelog, not a local RocksDB file, is the state that survives.

Every worker sets the consumer lag (``govbus_consumer_lag{group,topic,partition}``,
govbus/vocabulary/metrics.py) of the input partitions assigned to it, every ``lag_interval`` s
(a Faust timer): the partition's high watermark (from the last fetch response) minus the app
group's committed offset (Faust commits what its agents processed every second; before the
group's first commit, the partition's start).
"""

from __future__ import annotations

import logging
import ssl
import time
from pathlib import Path
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, TransportT

from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary import metrics
from govbus.vocabulary.config import ConfigError, Settings
from govbus.vocabulary.topology import StreamApp
from stream_apps.consumer import FETCH_MAX_WAIT, SafeConsumer, StallWatch

__all__ = ["FETCH_MAX_WAIT", "LAG_INTERVAL", "GovbusApp", "broker_urls", "make_app", "record_lag"]

LOG = logging.getLogger("govbus.stream_apps")

# How often a worker sets its consumer lag gauges (s); a Prometheus scrape is every 15 s.
LAG_INTERVAL = 5.0


async def record_lag(
    app: faust.App,
    group: str,
    topics: frozenset[str],
    shown: set[TP],
    watch: StallWatch | None = None,
) -> None:
    """Set the lag gauge of each of ``topics``' partitions assigned to ``app``'s worker and
    drop those of partitions it no longer holds (``shown``: the ones it set before). With a
    ``watch``, a partition whose commits stalled with records waiting is sought back to its
    committed offset (stream_apps/consumer.py, change 3)."""
    consumer = app.consumer
    assigned = {tp for tp in consumer.assignment() if tp.topic in topics}
    for tp in shown - assigned:
        metrics.CONSUMER_LAG.remove(group, tp.topic, str(tp.partition))
    shown.intersection_update(assigned)
    if not assigned:
        return
    ends = {tp: consumer.highwater(tp) for tp in assigned}
    unknown = [tp for tp, end in ends.items() if end is None]
    if unknown:  # not fetched yet: ask the broker
        ends.update(await consumer.highwaters(*unknown))
    committed: dict[TP, int | None] = {
        tp: consumer.committed_offset(tp) if isinstance(consumer, SafeConsumer) else None
        for tp in assigned
    }
    uncommitted = [tp for tp, offset in committed.items() if offset is None]
    if uncommitted:  # nothing committed (or 0): the group starts at the partition's start
        committed.update(await consumer.earliest_offsets(*uncommitted))
    for tp in assigned:
        end, position = ends.get(tp), committed.get(tp)
        if end is None or position is None:
            continue
        metrics.CONSUMER_LAG.labels(group, tp.topic, str(tp.partition)).set(max(0, end - position))
        shown.add(tp)
        if watch is None or not isinstance(consumer, SafeConsumer) or app.rebalancing:
            continue
        if watch.stalled(tp, position, end, time.monotonic()):
            LOG.warning(
                "%s: %s partition %d kept %d records waiting past committed offset %d for %.0f s;"
                " fetching them again from there", group, tp.topic, tp.partition, end - position,
                position, watch.after,
            )  # fmt: skip
            labels = (group, tp.topic, str(tp.partition))
            metrics.STREAM_RESEEKS.labels(*labels).inc()
            metrics.STREAM_REPROCESSED.labels(*labels).inc(await consumer.reseek(tp, position))
    if watch is not None:
        watch.forget(assigned)


class _Transport(faust_aiokafka.Transport):
    Consumer = SafeConsumer


class GovbusApp(faust.App):
    """A Faust app whose Kafka consumer waits at most ``fetch_max_wait`` s per fetch."""

    fetch_max_wait: float = FETCH_MAX_WAIT

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)


def broker_urls(settings: Settings) -> list[str]:
    servers = kafka_clients.bootstrap_of(settings)
    return [f"kafka://{server.strip()}" for server in str(servers).split(",") if server.strip()]


def make_app(
    app: StreamApp,
    settings: Settings,
    password: str,
    *,
    partitions: int = 3,
    fetch_max_wait: float = FETCH_MAX_WAIT,
    lag_interval: float = LAG_INTERVAL,
    **conf: Any,
) -> faust.App:
    """A Faust app named ``app.app_id`` authenticated as ``app.user``.

    ``partitions`` must match the partitions of the topics the reconciler created (tables are
    co-partitioned with their source topics). ``fetch_max_wait`` (s) bounds how long a fetch
    waits at the broker (``FETCH_MAX_WAIT``); ``lag_interval`` (s) how often the worker sets
    the consumer lag of ``app.reads`` (``LAG_INTERVAL``). ``conf`` overrides Faust settings.
    """
    if settings.sasl_mechanism not in ("SCRAM-SHA-512", "SCRAM-SHA-256"):
        raise ConfigError(
            f"stream app {app.app_id}: sasl_mechanism {settings.sasl_mechanism!r} is not "
            "supported; govbus clusters use SCRAM-SHA-512 (or SCRAM-SHA-256)"
        )
    # SASL_SSL only: the platform CA, and the host name checked (create_default_context's
    # check_hostname and CERT_REQUIRED), as every other govbus client does.
    tls = ssl.create_default_context(cafile=kafka_clients.ca_location_of(settings))
    options: dict[str, Any] = {
        "broker": broker_urls(settings),
        "broker_credentials": faust.SASLCredentials(
            username=app.user, password=password, mechanism=settings.sasl_mechanism,
            ssl_context=tls,
        ),
        "store": "memory://",
        # Faust keeps its table metadata in "<app id>-data" under the working directory by
        # default; a govbus process keeps its files under the state directory instead.
        "datadir": str(settings.state_dir / "stream-apps" / app.app_id),
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
    # Faust makes the data directory when the app starts, but not its parents: a fresh state
    # directory has no stream-apps/ yet.
    Path(options["datadir"]).parent.mkdir(parents=True, exist_ok=True)
    built = GovbusApp(app.app_id, **options)
    built.fetch_max_wait = float(fetch_max_wait)
    reads, shown, watch = frozenset(app.reads), set[TP](), StallWatch()

    async def consumer_lag() -> None:
        try:
            await record_lag(built, app.app_id, reads, shown, watch)
        except Exception as exc:  # not started, rebalancing, a broker away: the next tick retries
            LOG.debug("consumer lag of %s not set: %r", app.app_id, exc)

    # Registered by a call, not as a decorator: Faust's decorators are untyped.
    built.timer(float(lag_interval), name=f"{app.app_id}.consumer-lag")(consumer_lag)
    return built
