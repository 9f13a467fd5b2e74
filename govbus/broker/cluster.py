"""Format, start, stop and inspect the local KRaft cluster under the state directory.

Layout under ``<state_dir>/broker``::

    cluster.json            identity: cluster id, node count, base port, Kafka version
    node-<id>/server.properties, log4j2.properties, data/, server.log, gc.log (the JVM's
                            collector pauses), stdout.log, pid

Secrets (admin SCRAM password, controller PLAIN password) live in ``<state_dir>/secrets`` with
mode 0600; they are generated when the cluster is formatted. TLS material (the platform CA and
the brokers' keystore, govbus/broker/tls.py) lives in ``<state_dir>/tls``, made on first start.

Every start writes each node's server.properties again, so a cluster formatted by an earlier
version (SASL_PLAINTEXT) comes back on TLS with its data.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from govbus.broker import properties
from govbus.broker.classpath import Classpath, install, java_major_version
from govbus.broker.tls import CertInfo, TlsFiles, ensure_tls, existing, rotate_leaf
from govbus.vocabulary.config import Settings
from govbus.vocabulary.errors import ServiceUnavailable
from govbus.vocabulary.kafka import (
    NodeAddress,
    admin_client,
    admin_config,
    bootstrap_servers,
    local_cluster_file,
    local_tls_dir,
    node_addresses,
    probe,
)
from govbus.vocabulary.naming import ADMIN_PRINCIPAL
from govbus.vocabulary.secrets import ensure_secret


class BrokerError(ServiceUnavailable):
    """The local broker could not be started or stopped; the message says why and what next."""


@dataclass(frozen=True)
class NodeStatus:
    node_id: int
    port: int
    controller_port: int
    pid: int | None
    running: bool
    listening: bool


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return True


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class LocalCluster:
    def __init__(self, settings: Settings, *, bench_plaintext_port: int | None = None) -> None:
        """``bench_plaintext_port``: benchmarks/tls_bench.py's extra SASL_PLAINTEXT listener
        (never set by the CLI: govbus offers TLS only)."""
        self.settings = settings
        self.bench_plaintext_port = bench_plaintext_port
        self.root = settings.state_dir / "broker"
        self.meta_path = local_cluster_file(settings)

    # -- identity ---------------------------------------------------------------------------
    def _meta(self) -> dict[str, object] | None:
        if not self.meta_path.is_file():
            return None
        data: dict[str, object] = json.loads(self.meta_path.read_text(encoding="utf-8"))
        return data

    @property
    def nodes(self) -> int:
        meta = self._meta()
        return int(str(meta["nodes"])) if meta else self.settings.broker_nodes

    @property
    def base_port(self) -> int:
        meta = self._meta()
        return int(str(meta["base_port"])) if meta else self.settings.broker_port

    def addresses(self) -> list[NodeAddress]:
        return node_addresses(self.base_port, self.nodes)

    @property
    def bootstrap_servers(self) -> str:
        return bootstrap_servers(self.base_port, self.nodes)

    def node_dir(self, node_id: int) -> Path:
        return self.root / f"node-{node_id}"

    # -- lifecycle --------------------------------------------------------------------------
    def install(self) -> Classpath:
        java_major_version()
        return install(
            self.settings.kafka_version, self.settings.cache_dir, self.settings.maven_repo
        )

    def _java(self, classpath: Classpath, node_id: int, *args: str) -> list[str]:
        node = self.node_dir(node_id)
        return [
            "java",
            f"-Xmx{self.settings.broker_heap}",
            f"-Xms{self.settings.broker_heap}",
            # Kafka's own launcher's (kafka-run-class.sh) collector settings: without a pause
            # target G1 aims at 200 ms pauses, and every produce waits out a pause.
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent",
            f"-Xlog:gc*:file={node / 'gc.log'}:time,tags:filecount=4,filesize=20M",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={node / 'log4j2.properties'}",
            "-cp",
            classpath.java_classpath,
            *args,
        ]

    @property
    def tls(self) -> TlsFiles:
        """The platform CA and the brokers' keystore, made on first use."""
        return ensure_tls(local_tls_dir(self.settings))

    def _write_config(self, cluster: list[NodeAddress]) -> None:
        """Each node's server.properties (0600: it holds the JAAS secrets) and log config."""
        state = self.settings.state_dir
        admin_password = self.settings.admin_password or ensure_secret(state, "admin")
        controller_password = ensure_secret(state, "controller")
        tls = self.tls
        for addr in cluster:
            node = self.node_dir(addr.node_id)
            node.mkdir(parents=True, exist_ok=True)
            props = properties.render(
                addr, cluster, node / "data", admin_password, controller_password, tls.directory,
                self.bench_plaintext_port,
            )  # fmt: skip
            (node / "server.properties").write_text(properties.to_text(props), encoding="utf-8")
            os.chmod(node / "server.properties", 0o600)
            (node / "log4j2.properties").write_text(
                properties.log4j2_config(node / "server.log", access=node / properties.ACCESS_LOG),
                encoding="utf-8",
            )

    def _format(self, classpath: Classpath, nodes: int) -> None:
        """Write each node's config and format its storage with the admin SCRAM credential."""
        state = self.settings.state_dir
        admin_password = self.settings.admin_password or ensure_secret(state, "admin")
        cluster_id = subprocess.run(
            ["java", "-cp", classpath.java_classpath, "kafka.tools.StorageTool", "random-uuid"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        cluster = node_addresses(self.settings.broker_port, nodes)
        self._write_config(cluster)
        for addr in cluster:
            node = self.node_dir(addr.node_id)
            scram = f"{properties.SCRAM_MECHANISM}=[name={ADMIN_PRINCIPAL},"
            scram += f"password={admin_password}]"
            cmd = self._java(
                classpath,
                addr.node_id,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(node / "server.properties"),
                "--add-scram",
                scram,
            )
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise BrokerError(
                    f"formatting node {addr.node_id} failed: {(proc.stdout + proc.stderr).strip()}"
                )
        meta = {
            "cluster_id": cluster_id,
            "nodes": nodes,
            "base_port": self.settings.broker_port,
            "kafka_version": classpath.version,
        }
        self.meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    def start(self, nodes: int | None = None, timeout: float = 120.0) -> list[NodeStatus]:
        """Start every node (formatting on first use) and return once all brokers answer."""
        classpath = self.install()
        wanted = nodes or self.settings.broker_nodes
        meta = self._meta()
        if meta is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self._format(classpath, wanted)
        elif nodes is not None and int(str(meta["nodes"])) != nodes:
            raise BrokerError(
                f"the cluster in {self.root} was formatted with {meta['nodes']} node(s); "
                f"`govbus broker reset` first to start a {nodes}-node cluster"
            )
        if not any(st.running for st in self.status()):
            self._write_config(self.addresses())  # the current settings (TLS) on every start
        started = [addr for addr in self.addresses() if self._start_node(classpath, addr)]
        try:
            self._wait_ready(timeout)
            self._wait_for_metadata_snapshot(timeout)
        except BrokerError:
            # Leave nothing half-started behind: it would hold the ports on the next try.
            for addr in started:
                self.stop_node(addr.node_id, timeout=30)
            raise
        return self.status()

    def _wait_for_metadata_snapshot(self, timeout: float) -> None:
        """Return once every node holds a metadata snapshot (see METADATA_SNAPSHOT_SETTINGS)."""
        deadline = time.monotonic() + timeout
        for addr in self.addresses():
            metadata_dir = self.node_dir(addr.node_id) / "data" / "__cluster_metadata-0"
            while not any(metadata_dir.glob("*.checkpoint")):
                if time.monotonic() > deadline:
                    raise BrokerError(
                        f"node {addr.node_id} wrote no metadata snapshot within {timeout:.0f}s; "
                        f"see {self.node_dir(addr.node_id) / 'server.log'}"
                    )
                time.sleep(0.5)

    def _start_node(self, classpath: Classpath, addr: NodeAddress) -> bool:
        """Start one node; False if it was already running (start is idempotent)."""
        node = self.node_dir(addr.node_id)
        pid = self._pid(addr.node_id)
        if pid is not None and _pid_alive(pid):
            return False
        for port in (addr.port, addr.controller_port):
            if _port_open(port):
                raise BrokerError(
                    f"port {port} on 127.0.0.1 is taken by another process; stop it or set "
                    "GOVBUS_BROKER_PORT to a free base port"
                )
        cmd = self._java(classpath, addr.node_id, "kafka.Kafka", str(node / "server.properties"))
        with (node / "stdout.log").open("ab") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=node,
                start_new_session=True,  # survives the CLI that started it
            )
        (node / "pid").write_text(f"{proc.pid}\n", encoding="ascii")
        return True

    def _wait_ready(self, timeout: float) -> None:
        # deferred: keeps `broker --help` fast
        deadline = time.monotonic() + timeout
        expected = len(self.addresses())
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            for st in self.status():
                if not st.running:
                    raise BrokerError(
                        f"node {st.node_id} exited during start-up; last log lines:\n"
                        + self.log_tail(st.node_id)
                    )
            if all(st.listening for st in self.status()):
                seen = probe(admin_config(self.settings, bootstrap=self.bootstrap_servers), 5)
                if seen.brokers == expected:
                    return
                if seen.authentication_failed:
                    last_error = "the broker refused the admin's SCRAM login"
                elif seen.brokers:
                    last_error = f"{seen.brokers} of {expected} brokers registered"
                elif seen.errors:
                    last_error = seen.errors[-1].str()
            time.sleep(0.5)
        raise BrokerError(
            f"the broker did not answer within {timeout:.0f}s ({last_error}); "
            f"see {self.node_dir(1) / 'server.log'}:\n{self.log_tail(1)}"
        )

    def rotate_certificates(self) -> tuple[CertInfo, CertInfo, list[int]]:
        """A new broker certificate (same CA and names), taken by every running node without a
        restart; (old, new, the nodes that reloaded it).

        The client listener reloads it at once; the controller listener keeps the old one
        until the node's next restart (Kafka 4.1.2 does not reload it: KAFKA-20025), which is
        harmless while the old certificate is valid. Clients trust the CA and need nothing.
        """
        old, new = rotate_leaf(existing(local_tls_dir(self.settings)))
        return old, new, self.reload_tls()

    def reload_tls(self) -> list[int]:
        """Tell every running node to reload its client listener's keystore (the same path,
        a new file): incrementalAlterConfigs on the broker's own config."""
        running = [st.node_id for st in self.status() if st.running]
        if not running:
            return []
        admin = admin_client(self.settings)
        key = properties.keystore_key()
        resources = [
            ConfigResource(
                ResourceType.BROKER,
                str(node_id),
                incremental_configs=[
                    ConfigEntry(
                        key,
                        str(self.tls.keystore),
                        incremental_operation=AlterConfigOpType.SET,
                    )
                ],
            )
            for node_id in running
        ]
        for resource, future in admin.incremental_alter_configs(resources).items():
            try:
                future.result(timeout=60)
            except KafkaException as exc:
                raise BrokerError(
                    f"node {resource.name} did not reload its certificate: {exc.args[0].str()}; "
                    "restart it (`govbus broker stop` and `start`) to take the new one"
                ) from None
        return running

    def stop(self, timeout: float = 60.0) -> None:
        """Controlled shutdown of every node (SIGTERM), SIGKILL only after the timeout."""
        # Stop in reverse so the last controller standing is node 1.
        for addr in reversed(self.addresses()):
            self.stop_node(addr.node_id, timeout)

    def stop_node(self, node_id: int, timeout: float = 60.0, hard: bool = False) -> None:
        pid = self._pid(node_id)
        if pid is None or not _pid_alive(pid):
            return
        os.kill(pid, signal.SIGKILL if hard else signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _pid_alive(pid):
                time.sleep(0.1)
        (self.node_dir(node_id) / "pid").unlink(missing_ok=True)

    def _pid(self, node_id: int) -> int | None:
        path = self.node_dir(node_id) / "pid"
        try:
            return int(path.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            return None

    def status(self) -> list[NodeStatus]:
        result = []
        for addr in self.addresses():
            pid = self._pid(addr.node_id)
            running = pid is not None and _pid_alive(pid)
            result.append(
                NodeStatus(
                    addr.node_id,
                    addr.port,
                    addr.controller_port,
                    pid if running else None,
                    running,
                    running and _port_open(addr.port),
                )
            )
        return result

    def is_formatted(self) -> bool:
        return self.meta_path.is_file()

    def reset(self) -> None:
        """Stop and delete the cluster's data (secrets are kept)."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def access_logs(self) -> list[Path]:
        """Every node's access log (allowed topic READs by Fetch, govbus.broker.access)."""
        return [self.node_dir(a.node_id) / properties.ACCESS_LOG for a in self.addresses()]

    def log_tail(self, node_id: int, lines: int = 20) -> str:
        path = self.node_dir(node_id) / "server.log"
        if not path.is_file():
            path = self.node_dir(node_id) / "stdout.log"
        if not path.is_file():
            return "(no log yet)"
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
