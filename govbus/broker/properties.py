"""server.properties for a node of the local cluster: the security settings in one place.

The docker-compose file and its test compare against ``SECURITY_SETTINGS`` so both ways of
running the broker enforce the same rules.

Departure from the researched notes: the controller listener is not PLAINTEXT. A PLAINTEXT
controller connection is the principal ``User:ANONYMOUS``, and StandardAuthorizer refuses it
CLUSTER_ACTION, so brokers cannot register. Instead of making ANONYMOUS a super user (anyone who
reaches the port would be), the controller listener uses SASL/PLAIN with a dedicated
``controller`` principal whose secret only the nodes know. (SCRAM cannot be used there: its
credentials live in the metadata log the controllers serve.)

TLS on every listener (article 22; issue 11): the client listener ``BROKER`` is SASL_SSL
(SCRAM), the controller listener SASL_SSL (PLAIN); PLAINTEXT and SASL_PLAINTEXT are not offered
at all. Both present the brokers' certificate from one PEM keystore (govbus/broker/tls.py) and
trust the platform CA; the brokers, as clients of each other and of the controllers, check the
host name (Kafka's default ``https`` identification). The keystore is set per listener
(``listener.name.<listener>.ssl.keystore.location``) so a running broker reloads its client
listener's certificate when that key is set again (``LocalCluster.reload_tls``).
"""

from __future__ import annotations

from pathlib import Path

from govbus.vocabulary.kafka import NodeAddress
from govbus.vocabulary.naming import ADMIN_PRINCIPAL, CONTROLLER_PRINCIPAL

BROKER_LISTENER = "BROKER"
BROKER_PROTOCOL = "SASL_SSL"
CONTROLLER_PROTOCOL = "SASL_SSL"
CONTROLLER_LISTENER = "CONTROLLER"
SCRAM_MECHANISM = "SCRAM-SHA-512"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"

# Settings that make the broker a secure exchange; shared by every way govbus runs a broker.
SECURITY_SETTINGS: dict[str, str] = {
    "sasl.enabled.mechanisms": SCRAM_MECHANISM,
    "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
    "authorizer.class.name": AUTHORIZER,
    "allow.everyone.if.no.acl.found": "false",
    "auto.create.topics.enable": "false",  # topics come from the catalog, never from a typo
}

# Work-around for a Kafka bug (present in 4.1.2 and 4.4.0): ScramDelta.apply() drops every SCRAM
# credential of a mechanism when, replaying onto an image without credentials, it meets a
# removed user first (it removes the emptied per-mechanism map, then keeps adding to the
# detached one). A restart replays the whole metadata log as one such delta unless a snapshot
# exists, so after any department was deleted the admin could no longer log in. A metadata
# snapshot holding the admin's credential makes every later replay start from a non-empty image:
# snapshot every few seconds of metadata activity, keep them for an hour, and have start() wait
# for the first one.
METADATA_SNAPSHOT_SETTINGS: dict[str, str] = {
    "metadata.log.max.snapshot.interval.ms": "5000",
    "metadata.max.retention.ms": "3600000",
}


def _jaas(module: str, username: str, password: str, extra: str = "") -> str:
    return f'{module} required username="{username}" password="{password}"{extra};'


def tls_settings(tls_dir: Path) -> dict[str, str]:
    """The TLS keys of both listeners: the PEM keystore and truststore in ``tls_dir``."""
    keystore, truststore = str(tls_dir / "broker.pem"), str(tls_dir / "ca.pem")
    out = {"ssl.truststore.type": "PEM", "ssl.truststore.location": truststore}
    for listener in (BROKER_LISTENER, CONTROLLER_LISTENER):
        prefix = f"listener.name.{listener.lower()}."
        out[prefix + "ssl.keystore.type"] = "PEM"
        out[prefix + "ssl.keystore.location"] = keystore
        out[prefix + "ssl.truststore.type"] = "PEM"
        out[prefix + "ssl.truststore.location"] = truststore
    return out


def keystore_key(listener: str = BROKER_LISTENER) -> str:
    """The listener-prefixed keystore setting; setting it again reloads the certificate."""
    return f"listener.name.{listener.lower()}.ssl.keystore.location"


def render(
    node: NodeAddress,
    cluster: list[NodeAddress],
    data_dir: Path,
    admin_password: str,
    controller_password: str,
    tls_dir: Path,
    bench_plaintext_port: int | None = None,
) -> dict[str, str]:
    """The full server.properties of one combined broker+controller node (TLS from
    ``tls_dir``: govbus/broker/tls.py's ``ca.pem`` and ``broker.pem``)."""
    n = len(cluster)
    replication = "3" if n >= 3 else "1"
    min_isr = "2" if n >= 3 else "1"
    voters = ",".join(f"{a.node_id}@127.0.0.1:{a.controller_port}" for a in cluster)
    props: dict[str, str] = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        # Static quorum: the same voter set for one or three nodes, no dynamic membership.
        "controller.quorum.voters": voters,
        "listeners": (
            f"{BROKER_LISTENER}://127.0.0.1:{node.port},"
            f"{CONTROLLER_LISTENER}://127.0.0.1:{node.controller_port}"
        ),
        "advertised.listeners": f"{BROKER_LISTENER}://127.0.0.1:{node.port}",
        "controller.listener.names": CONTROLLER_LISTENER,
        "inter.broker.listener.name": BROKER_LISTENER,
        "listener.security.protocol.map": (
            f"{CONTROLLER_LISTENER}:{CONTROLLER_PROTOCOL},{BROKER_LISTENER}:{BROKER_PROTOCOL}"
        ),
        **SECURITY_SETTINGS,
        **tls_settings(tls_dir),
        "listener.name.broker.sasl.enabled.mechanisms": SCRAM_MECHANISM,
        "listener.name.broker.scram-sha-512.sasl.jaas.config": _jaas(
            "org.apache.kafka.common.security.scram.ScramLoginModule",
            ADMIN_PRINCIPAL,
            admin_password,
        ),
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": _jaas(
            "org.apache.kafka.common.security.plain.PlainLoginModule",
            CONTROLLER_PRINCIPAL,
            controller_password,
            f' user_{CONTROLLER_PRINCIPAL}="{controller_password}"',
        ),
        "super.users": f"User:{ADMIN_PRINCIPAL};User:{CONTROLLER_PRINCIPAL}",
        "log.dirs": str(data_dir),
        "num.partitions": "3",
        "default.replication.factor": replication,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": replication,
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": replication,
        "share.coordinator.state.topic.min.isr": min_isr,
        # A single consumer should not wait 3 s for company before it is assigned partitions.
        "group.initial.rebalance.delay.ms": "0",
        **METADATA_SNAPSHOT_SETTINGS,
    }
    if bench_plaintext_port is not None:
        _bench_listener(props, bench_plaintext_port, admin_password)
    return props


BENCH_LISTENER = "BENCH"


def _bench_listener(props: dict[str, str], port: int, admin_password: str) -> None:
    """benchmarks/tls_bench.py only (never the CLI): one extra SASL_PLAINTEXT listener, so TLS
    and no TLS are measured on the same broker in the same run."""
    props["listeners"] += f",{BENCH_LISTENER}://127.0.0.1:{port}"
    props["advertised.listeners"] += f",{BENCH_LISTENER}://127.0.0.1:{port}"
    props["listener.security.protocol.map"] += f",{BENCH_LISTENER}:SASL_PLAINTEXT"
    props["listener.name.bench.sasl.enabled.mechanisms"] = SCRAM_MECHANISM
    props["listener.name.bench.scram-sha-512.sasl.jaas.config"] = _jaas(
        "org.apache.kafka.common.security.scram.ScramLoginModule", ADMIN_PRINCIPAL, admin_password
    )


def to_text(props: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in props.items())


def _rolling_file(name: str, ref: str, path: Path, size: str, keep: int, pattern: str) -> str:
    """One log4j2 RollingFile appender: ``path`` rolled at ``size``, ``keep`` old files."""
    a = f"appender.{name}"
    return (
        f"{a}.type = RollingFile\n{a}.name = {ref}\n{a}.fileName = {path}\n"
        f"{a}.filePattern = {path}.%i\n{a}.layout.type = PatternLayout\n"
        f"{a}.layout.pattern = {pattern}\n{a}.policies.type = Policies\n"
        f"{a}.policies.size.type = SizeBasedTriggeringPolicy\n{a}.policies.size.size = {size}\n"
        f"{a}.strategy.type = DefaultRolloverStrategy\n{a}.strategy.max = {keep}\n"
    )


def log4j2_config(
    log: Path, *, size: str = "50MB", keep: int = 3, access: Path | None = None
) -> str:
    """The log4j2 properties of a govbus JVM (broker or MirrorMaker): INFO and up to ``log``;
    with ``access``, the broker's access evidence too (``ACCESS_REGEX``, below)."""
    text = "status = warn\n" + _rolling_file("file", "FILE", log, size, keep, "[%d] %p %m (%c)%n")
    text += "rootLogger.level = INFO\nrootLogger.appenderRef.file.ref = FILE\n"
    if access is None:
        return text
    text += _rolling_file(
        "access", "ACCESS", access, size, 5, "%d{yyyy-MM-dd'T'HH:mm:ss.SSSXXX} %m%n"
    )
    return text + (
        f"appender.access.filter.reads.type = RegexFilter\n"
        f"appender.access.filter.reads.regex = {ACCESS_REGEX}\n"
        "appender.access.filter.reads.onMatch = ACCEPT\n"
        "appender.access.filter.reads.onMismatch = DENY\n"
        "logger.authorizer.name = kafka.authorizer.logger\n"
        "logger.authorizer.level = DEBUG\n"
        "logger.authorizer.additivity = false\n"
        "logger.authorizer.appenderRef.file.ref = FILE\n"
        "logger.authorizer.appenderRef.file.level = INFO\n"
        "logger.authorizer.appenderRef.access.ref = ACCESS\n"
    )


ACCESS_REGEX = ".*is Allowed operation = READ .* on resource = Topic:.* for request = Fetch .*"

# Broker-side access evidence (issue 11): the authorizer logs every allowed READ at DEBUG (a
# Fetch authorizes READ on each topic it reads); the ACCESS appender keeps only allowed Fetch
# READs on topics, in access.log beside server.log, with an ISO-8601 time. Denials stay in
# server.log at INFO as before. govbus.broker.access reads access.log.
ACCESS_LOG = "access.log"
