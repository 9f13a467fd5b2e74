"""confluent-kafka client configuration for the admin and for departments' principals.

Every client authenticates with SASL/SCRAM over TLS (SASL_SSL, article 22): it verifies the
broker's certificate against the platform CA (``ssl_ca_location``; by default the local
cluster's ``<state_dir>/tls/ca.pem``) and the broker's host name against the certificate
(``ssl.endpoint.identification.algorithm=https``). Which cluster it talks to comes from Settings
(an existing cluster's bootstrap servers, or the local cluster govbus manages).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient

from govbus.vocabulary.config import ConfigError, Settings
from govbus.vocabulary.naming import ADMIN_PRINCIPAL
from govbus.vocabulary.secrets import read_secret

LIBRDKAFKA_LOG = logging.getLogger("govbus.librdkafka")


@dataclass(frozen=True)
class NodeAddress:
    node_id: int
    port: int
    controller_port: int


def node_addresses(base_port: int, nodes: int) -> list[NodeAddress]:
    """Node i of the local cluster listens on base_port + 100*(i-1); its controller on the
    port after."""
    return [
        NodeAddress(i, base_port + 100 * (i - 1), base_port + 100 * (i - 1) + 1)
        for i in range(1, nodes + 1)
    ]


def bootstrap_servers(base_port: int, nodes: int) -> str:
    return ",".join(f"127.0.0.1:{a.port}" for a in node_addresses(base_port, nodes))


def local_cluster_file(settings: Settings) -> Path:
    """Identity of the local cluster ``govbus broker`` manages (govbus.broker.cluster)."""
    return settings.state_dir / "broker" / "cluster.json"


def local_layout(settings: Settings) -> tuple[int, int]:
    """(base port, node count) of the local cluster: as formatted, else as configured."""
    path = local_cluster_file(settings)
    if path.is_file():
        meta = json.loads(path.read_text(encoding="utf-8"))
        return int(meta["base_port"]), int(meta["nodes"])
    return settings.broker_port, settings.broker_nodes


def local_tls_dir(settings: Settings) -> Path:
    """Where the local cluster's CA and keystore live (govbus.broker.tls)."""
    return settings.state_dir / "tls"


def ca_location_of(settings: Settings) -> str:
    """The CA file every client verifies the brokers with; ConfigError if it is missing."""
    path = Path(settings.ssl_ca_location) if settings.ssl_ca_location else None
    path = path or local_tls_dir(settings) / "ca.pem"
    if not path.is_file():
        raise ConfigError(
            f"no CA certificate at {path}: set ssl_ca_location (GOVBUS_SSL_CA_LOCATION) to the "
            "platform CA file the operator gave you, or start the local broker with "
            "`govbus broker start` (it makes one)"
        )
    return str(path)


def bootstrap_of(settings: Settings) -> str:
    if settings.bootstrap_servers:
        return settings.bootstrap_servers
    return bootstrap_servers(*local_layout(settings))


def admin_password_of(settings: Settings) -> str:
    if settings.admin_password:
        return settings.admin_password
    secret = read_secret(settings.state_dir, "admin")
    if secret is None:
        raise ConfigError(
            "no admin password: set GOVBUS_ADMIN_PASSWORD (or admin_password_file in the config "
            f"file), or start the local broker with `govbus broker start` (state dir "
            f"{settings.state_dir})"
        )
    return secret


def client_config(
    settings: Settings,
    username: str,
    password: str,
    bootstrap: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap or bootstrap_of(settings),
        "security.protocol": settings.security_protocol,
        "ssl.ca.location": ca_location_of(settings),
        "ssl.endpoint.identification.algorithm": "https",
        "sasl.mechanism": settings.sasl_mechanism,
        "sasl.username": username,
        "sasl.password": password,
        # librdkafka's own log lines go to Python logging instead of raw stderr.
        "logger": LIBRDKAFKA_LOG,
        **extra,
    }


def client_properties(settings: Settings, username: str, password: str) -> dict[str, str]:
    """What a department's own (non-govbus) client needs, as librdkafka/kcat ``-X`` settings:
    the bootstrap servers, SASL_SSL with SCRAM, the platform CA and hostname checking."""
    conf = client_config(settings, username, password)
    return {k: str(v) for k, v in conf.items() if k != "logger"}


# librdkafka client settings and the Java client's names for the same thing (a JVM client such
# as MirrorMaker 2 gets its configuration from client_config through java_client_properties).
_JAVA_SAME = ("bootstrap.servers", "security.protocol", "sasl.mechanism")
_SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"


def java_client_properties(conf: dict[str, Any], password_ref: str) -> dict[str, str]:
    """The Java client properties of a ``client_config``: the same servers, protocol and
    mechanism, the SASL user in a JAAS line whose password is ``password_ref`` (e.g. a
    ``${file:...}`` reference, so no secret lands in a properties file), and a PEM trust store
    for ``ssl.ca.location``. Settings only librdkafka has (the logger, callbacks) are left out."""
    props = {k: str(conf[k]) for k in _JAVA_SAME if k in conf}
    if "sasl.username" in conf:
        props["sasl.jaas.config"] = (
            f'{_SCRAM_LOGIN} required username="{conf["sasl.username"]}" password="{password_ref}";'
        )
    if "ssl.ca.location" in conf:
        props["ssl.truststore.type"] = "PEM"
        props["ssl.truststore.location"] = str(conf["ssl.ca.location"])
    return props


def admin_config(settings: Settings, bootstrap: str | None = None) -> dict[str, Any]:
    return client_config(
        settings,
        settings.admin_username or ADMIN_PRINCIPAL,
        admin_password_of(settings),
        bootstrap,
    )


def admin_client(settings: Settings, bootstrap: str | None = None) -> AdminClient:
    return AdminClient(admin_config(settings, bootstrap))


# Consumer settings for reading topics whole (a download's snapshot, the lookup service's load
# at start and after a rebalance): fetches of up to 10 MB a partition instead of librdkafka's
# 1 MB. Measured with 1,000,000 records: a download's read 7.0 -> 5.9 s (uncompressed), the
# lookup service's start + load 8.2 -> 3.3 s (lz4; docs/lookup.md).
WHOLE_TOPIC_FETCHES: dict[str, Any] = {
    "max.partition.fetch.bytes": 10 * 2**20,
    "fetch.max.bytes": 100 * 2**20,
}


def producer(settings: Settings, username: str, password: str, **extra: Any) -> Producer:
    """An idempotent, acks=all producer: nothing acknowledged is lost or duplicated.

    Keys are partitioned with murmur2 like the Java client and Faust (aiokafka), not
    librdkafka's default CRC32: a resource's records and the observations of them (same key)
    then land in the same partition number, which the verification app relies on.

    Batches are lz4-compressed: a reader with large fetches (a download) read 1,000,000 records
    of ~130 bytes in 1.8-2.5 s instead of 3.6-3.7 s uncompressed, and one with librdkafka's
    default fetches was as fast either way; produced as fast, less to store and to send through
    TLS (docs/lookup.md, eighth session). Faust's client reads lz4 with cramjam
    (``aiokafka[lz4]``).
    """
    conf = client_config(
        settings,
        username,
        password,
        **{
            "enable.idempotence": True,
            "acks": "all",
            "partitioner": "murmur2_random",
            "compression.type": "lz4",
            **extra,
        },
    )
    return Producer(conf)


def consumer(
    settings: Settings, username: str, password: str, group_id: str, **extra: Any
) -> Consumer:
    """Offsets are committed by the caller after processing, never automatically."""
    conf = client_config(
        settings,
        username,
        password,
        **{
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **extra,
        },
    )
    return Consumer(conf)


@dataclass
class Probe:
    """What a client saw when it asked the cluster for metadata."""

    brokers: int
    errors: list[KafkaError] = field(default_factory=list)

    def has(self, code: int) -> bool:
        return any(e.code() == code for e in self.errors)

    @property
    def authentication_failed(self) -> bool:
        return self.has(KafkaError._AUTHENTICATION)


def arrived(consumer: Consumer, most: int, wait: float) -> list[Message]:
    """What has arrived, at most ``most`` messages, waiting up to ``wait`` s only for the first.

    A batch at a time (one call per message costs more than decoding it), but never waiting
    for a batch to fill: ``Consumer.consume(n, timeout)`` returns only once it has ``n``
    messages or the timeout passed, so a lone record, or the last few of a topic read to its
    end, would wait the whole timeout (seen: a download of 200,000 rows waited 10 s for its
    last batch). Instead: take what is already in the local queue; if nothing is, wait for one
    message with ``poll`` (which returns as soon as one arrives) and take what came with it.
    """
    batch = consumer.consume(most, 0)
    if batch:
        return batch
    first = consumer.poll(wait)
    if first is None:
        return []
    return [first, *consumer.consume(most - 1, 0)] if most > 1 else [first]


def probe(conf: dict[str, Any], timeout: float = 8.0) -> Probe:
    """Connect with `conf` and ask for metadata, collecting the errors the client reports.

    librdkafka reports authentication failures only through error_cb (the metadata call itself
    fails with a generic transport error), and serves that callback from poll().
    """
    errors: list[KafkaError] = []
    with_callback: dict[str, Any] = {**conf, "error_cb": errors.append}
    client = AdminClient(with_callback)
    try:
        brokers = len(client.list_topics(timeout=timeout).brokers)
    except KafkaException as exc:
        errors.append(exc.args[0])
        brokers = 0
    client.poll(1.0)
    return Probe(brokers, errors)


def produce_and_wait(
    producer: Producer,
    topic: str,
    key: bytes,
    value: bytes,
    timeout: float = 30.0,
    **placed: Any,
) -> str | None:
    """Produce one record and wait for its acknowledgement: None, or why it failed.
    ``placed``: ``partition`` and ``headers``, when the caller places the record itself."""
    errors: list[KafkaError] = []
    producer.produce(
        topic,
        key=key,
        value=value,
        on_delivery=lambda err, _msg: errors.append(err) if err else None,
        **placed,
    )
    if producer.flush(timeout) or errors:
        return errors[0].str() if errors else f"not acknowledged within {timeout:.0f} s"
    return None
