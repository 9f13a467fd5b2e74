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
from typing import Any

import faust

from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.config import ConfigError, Settings
from govbus.vocabulary.topology import StreamApp

__all__ = ["broker_urls", "make_app"]


def broker_urls(settings: Settings) -> list[str]:
    servers = kafka_clients.client_config(settings, "-", "-")["bootstrap.servers"]
    return [f"kafka://{server.strip()}" for server in str(servers).split(",") if server.strip()]


def make_app(
    app: StreamApp, settings: Settings, password: str, *, partitions: int = 3, **conf: Any
) -> faust.App:
    """A Faust app named ``app.app_id`` authenticated as ``app.user``.

    ``partitions`` must match the partitions of the topics the reconciler created (tables are
    co-partitioned with their source topics). ``conf`` overrides Faust settings.
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
    }  # fmt: skip
    options.update(conf)
    return faust.App(app.app_id, **options)
