"""docker-compose.kafka.yml and monitoring/: the Docker way of running govbus stays in step.

Docker cannot run here, so these tests read the files: the broker in the compose file must
enforce the same settings as the local broker (govbus/broker/properties.py), Prometheus must
scrape the port govbus serves metrics on, and the dashboards must only query metrics that exist.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from govbus.broker import properties
from govbus.vocabulary.config import Settings
from govbus.vocabulary.kafka import NodeAddress
from govbus.vocabulary.naming import ADMIN_PRINCIPAL

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.kafka.yml"
START_SCRIPT = REPO / "docker" / "kafka" / "start.sh"
DASHBOARD_DIR = REPO / "monitoring" / "grafana" / "dashboards"
DASHBOARD_FILES = sorted(DASHBOARD_DIR.glob("*.json"))

PROMETHEUS_CONFIG_TARGET = "/etc/prometheus/prometheus.yml"
DATASOURCES_TARGET = "/etc/grafana/provisioning/datasources"
DASHBOARD_PROVIDERS_TARGET = "/etc/grafana/provisioning/dashboards"
DATASOURCE_UID = "prometheus"
ALLOWED_METRICS = {"up", "scrape_duration_seconds"}
ALLOWED_METRIC_PREFIX = "govbus_"

# Stand-ins for the passwords compose takes from the environment.
FAKE_ENV = {
    "GOVBUS_ADMIN_PASSWORD": "admin-secret",
    "GOVBUS_CONTROLLER_PASSWORD": "controller-secret",
}
PASSWORD_VARIABLES = sorted(FAKE_ENV)

# KAFKA_* variables the Kafka scripts read for the JVM; they are not broker properties.
JVM_VARIABLES = {
    "KAFKA_HEAP_OPTS",
    "KAFKA_OPTS",
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "KAFKA_GC_LOG_OPTS",
    "KAFKA_JMX_OPTS",
    "KAFKA_LOG4J_OPTS",
    "KAFKA_DEBUG",
    "KAFKA_VERSION",
    "KAFKA_JMX_HOSTNAME",
    "KAFKA_JMX_PORT",
    "KAFKA_LOG4J_ROOT_LOGLEVEL",
    "KAFKA_LOG4J_LOGGERS",
    "KAFKA_TOOLS_LOG4J_LOGLEVEL",
}

# The compose broker is one node whose container address differs from the local broker's.
COMPOSE_NODE = NodeAddress(node_id=1, port=9092, controller_port=9093)
COMPOSE_DATA_DIR = Path("/var/lib/kafka/data")
COMPOSE_TLS_DIR = Path("/etc/govbus/tls")  # ./docker/kafka/tls mounted read-only
# Properties that must differ: the container listens on every interface and is reached through
# the port published on the host. Everything else must equal what render() gives.
DEPLOYMENT_SPECIFIC = {"listeners", "advertised.listeners"}


# --- compose file helpers -------------------------------------------------------------------


class MissingVariable(KeyError):
    """A ${NAME:?message} reference whose variable is not set: compose refuses to start."""


_INTERPOLATION = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's variable substitution, for the forms this project uses."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        current = env.get(name)
        unset = current is None or (current == "" and op is not None and op.startswith(":"))
        if unset and op in (":?", "?"):
            raise MissingVariable(f"{name}: {arg}")
        if unset and op in (":-", "-"):
            return arg
        return current or ""

    return _INTERPOLATION.sub(substitute, value)


def property_name(variable: str) -> str:
    """The apache/kafka image's rule: drop KAFKA_, lower-case, _ -> ., ___ -> -, __ -> _."""
    name = variable.removeprefix("KAFKA_").lower().replace("_", ".")
    return name.replace("...", "-").replace("..", "_")


def variable_name(prop: str) -> str:
    """The inverse of property_name, for messages that say what to set."""
    return "KAFKA_" + prop.replace("_", "__").replace("-", "___").replace(".", "_").upper()


def service_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def broker_properties(env: Mapping[str, str]) -> dict[str, str]:
    return {
        property_name(k): v
        for k, v in env.items()
        if k.startswith("KAFKA_") and k not in JVM_VARIABLES
    }


def mounts(service: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(type, source, target) of each volume entry, short or long syntax."""
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            yield entry["type"], str(entry.get("source", "")), str(entry["target"])
            continue
        source, target = str(entry).split(":")[:2]
        kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        yield kind, source, target


def host_path(source: str) -> Path:
    path = Path(source).expanduser()
    return path if path.is_absolute() else (COMPOSE_FILE.parent / path).resolve()


def bind_source(service: dict[str, Any], target: str) -> Path:
    for kind, source, mounted_at in mounts(service):
        if kind == "bind" and mounted_at.rstrip("/") == target.rstrip("/"):
            return host_path(source)
    raise AssertionError(f"nothing is bind-mounted at {target}")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE_FILE)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


@pytest.fixture(scope="module")
def kafka_env(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {k: interpolate(v, FAKE_ENV) for k, v in service_env(services["kafka"]).items()}


@pytest.fixture(scope="module")
def broker(kafka_env: dict[str, str]) -> dict[str, str]:
    return broker_properties(kafka_env)


def local_broker_properties() -> dict[str, str]:
    """What govbus's own broker runs with, for a node at the compose broker's addresses."""
    return properties.render(
        COMPOSE_NODE,
        [COMPOSE_NODE],
        COMPOSE_DATA_DIR,
        FAKE_ENV["GOVBUS_ADMIN_PASSWORD"],
        FAKE_ENV["GOVBUS_CONTROLLER_PASSWORD"],
        COMPOSE_TLS_DIR,
    )


# --- (a) mounts -------------------------------------------------------------------------------


def test_every_bind_mounted_host_path_exists(compose: dict[str, Any]) -> None:
    missing = []
    undeclared = []
    for name, service in compose["services"].items():
        for kind, source, _target in mounts(service):
            if kind == "bind" and not host_path(source).exists():
                missing.append(f"{name}: {source}")
            if kind == "volume" and source and source not in (compose.get("volumes") or {}):
                undeclared.append(f"{name}: {source}")
    assert not missing, f"bind-mounted paths that do not exist: {missing}"
    assert not undeclared, f"named volumes not declared under top-level volumes: {undeclared}"


# --- (b) image ----------------------------------------------------------------------------------


def test_kafka_image_is_the_version_govbus_uses(services: dict[str, dict[str, Any]]) -> None:
    assert services["kafka"]["image"] == "apache/kafka:4.1.2"
    assert services["kafka"]["image"] == f"apache/kafka:{Settings().kafka_version}"


# --- (c) broker settings ------------------------------------------------------------------------


def test_variable_names_follow_the_image_rules() -> None:
    assert property_name("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "auto.create.topics.enable"
    assert (
        property_name("KAFKA_LISTENER_NAME_SASL__PLAINTEXT_SCRAM___SHA___512_SASL_JAAS_CONFIG")
        == "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config"
    )
    for prop in local_broker_properties():
        assert property_name(variable_name(prop)) == prop


@pytest.mark.parametrize(
    ("prop", "value"),
    sorted({**properties.SECURITY_SETTINGS, **properties.METADATA_SNAPSHOT_SETTINGS}.items()),
)
def test_broker_has_the_local_security_and_snapshot_settings(
    broker: dict[str, str], prop: str, value: str
) -> None:
    assert prop in broker, f"set {variable_name(prop)}={value} in the kafka service"
    assert broker[prop] == value


def test_controller_listener_uses_plain_and_super_users_match(broker: dict[str, str]) -> None:
    expected = local_broker_properties()
    assert broker["sasl.mechanism.controller.protocol"] == "PLAIN"
    assert broker["listener.name.controller.sasl.enabled.mechanisms"] == "PLAIN"
    jaas = "listener.name.controller.plain.sasl.jaas.config"
    assert broker[jaas] == expected[jaas]
    assert broker["super.users"] == "User:admin;User:controller" == expected["super.users"]


def test_broker_is_configured_like_the_local_broker(broker: dict[str, str]) -> None:
    """Every property render() sets, with the same value, and nothing else."""
    expected = {k: v for k, v in local_broker_properties().items() if k not in DEPLOYMENT_SPECIFIC}
    actual = {k: v for k, v in broker.items() if k not in DEPLOYMENT_SPECIFIC}
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    assert not missing, f"not set in the kafka service: {[variable_name(p) for p in missing]}"
    assert not extra, f"set only in the kafka service, not by render(): {extra}"
    different = {k: (actual[k], expected[k]) for k in expected if actual[k] != expected[k]}
    assert not different, f"(compose, render()) differ: {different}"


def test_broker_is_reachable_from_the_host(
    services: dict[str, dict[str, Any]], broker: dict[str, str]
) -> None:
    listener = properties.BROKER_LISTENER
    assert broker["advertised.listeners"] == f"{listener}://localhost:9092"
    listeners = broker["listeners"].split(",")
    assert f"{listener}://0.0.0.0:9092" in listeners
    assert f"{properties.CONTROLLER_LISTENER}://127.0.0.1:9093" in listeners
    assert any(str(p).endswith(":9092:9092") for p in services["kafka"]["ports"])


@pytest.mark.parametrize("variable", PASSWORD_VARIABLES)
def test_compose_refuses_to_start_without_a_password(
    services: dict[str, dict[str, Any]], variable: str
) -> None:
    raw = service_env(services["kafka"])
    references = [
        m for v in raw.values() for m in _INTERPOLATION.finditer(v) if m.group("name") == variable
    ]
    assert references, f"the kafka service does not use {variable}"
    assert all(m.group("op") == ":?" for m in references), f"use ${{{variable}:?...}}"
    env = {k: v for k, v in FAKE_ENV.items() if k != variable}
    with pytest.raises(MissingVariable):
        for value in raw.values():
            interpolate(value, env)


def test_start_script_formats_with_the_admin_scram_credential(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka = services["kafka"]
    target = next(t for kind, s, t in mounts(kafka) if host_path(s) == START_SCRIPT.resolve())
    command = kafka.get("command") or kafka.get("entrypoint")
    assert target in (command if isinstance(command, list) else str(command).split())
    script = START_SCRIPT.read_text(encoding="utf-8")
    scram = f"{properties.SCRAM_MECHANISM}=[name={ADMIN_PRINCIPAL},"
    assert f'--add-scram "{scram}password=${{GOVBUS_ADMIN_PASSWORD}}]"' in script
    assert "--ignore-formatted" in script
    assert "kafka-server-start.sh" in script


def test_start_script_renders_the_properties_this_test_decodes(
    kafka_env: dict[str, str], broker: dict[str, str]
) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **kafka_env}
    proc = subprocess.run(
        ["bash", str(START_SCRIPT), "--print-properties"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rendered = dict(line.split("=", 1) for line in proc.stdout.splitlines())
    assert rendered == broker


# --- (d) Prometheus -----------------------------------------------------------------------------


def scrape_jobs(services: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    config = load_yaml(bind_source(services["prometheus"], PROMETHEUS_CONFIG_TARGET))
    return {
        job["job_name"]: [t for sc in job.get("static_configs", []) for t in sc["targets"]]
        for job in config["scrape_configs"]
    }


def test_prometheus_scrapes_govbus_on_its_metrics_port(
    services: dict[str, dict[str, Any]],
) -> None:
    targets = scrape_jobs(services).get("govbus")
    assert targets, "no scrape job 'govbus' with targets"
    for target in targets:
        host, _, port = target.rpartition(":")
        assert host == "host.docker.internal"
        assert int(port) == Settings().metrics_port
    assert "host.docker.internal:host-gateway" in services["prometheus"].get("extra_hosts", [])


def test_prometheus_scrapes_itself(services: dict[str, dict[str, Any]]) -> None:
    targets = [t for ts in scrape_jobs(services).values() for t in ts]
    assert "localhost:9090" in targets


# --- Grafana provisioning -----------------------------------------------------------------------


def test_grafana_datasource_is_the_compose_prometheus(services: dict[str, dict[str, Any]]) -> None:
    directory = bind_source(services["grafana"], DATASOURCES_TARGET)
    sources = [
        ds for f in sorted(directory.glob("*.y*ml")) for ds in load_yaml(f).get("datasources", [])
    ]
    ours = [ds for ds in sources if ds.get("uid") == DATASOURCE_UID]
    assert len(ours) == 1
    assert ours[0]["type"] == "prometheus"
    assert ours[0]["url"] == "http://prometheus:9090"
    assert "prometheus" in services


def test_grafana_loads_the_dashboards_directory(services: dict[str, dict[str, Any]]) -> None:
    grafana = services["grafana"]
    directory = bind_source(grafana, DASHBOARD_PROVIDERS_TARGET)
    providers = [p for f in sorted(directory.glob("*.y*ml")) for p in load_yaml(f)["providers"]]
    paths = [p["options"]["path"] for p in providers]
    assert paths
    for path in paths:
        assert bind_source(grafana, path) == DASHBOARD_DIR.resolve()
    assert any(str(p).endswith(":3000") for p in grafana["ports"])


# --- (e) dashboards -----------------------------------------------------------------------------

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_NAME_MATCHER = re.compile(r'__name__\s*(=~|!=|!~|=)\s*"([^"]*)"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.$:])[A-Za-z_:][\w:]*")
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (function names and labels are not)."""
    names = {v if op == "=" else f"__name__{op}{v}" for op, v in _NAME_MATCHER.findall(expr)}
    text = _STRING.sub(" ", expr)
    for pattern in (_MATCHERS, _RANGES, _GROUPING):
        text = pattern.sub(" ", text)
    for match in _IDENTIFIER.finditer(text):
        follows = text[match.end() :].lstrip()
        if follows.startswith("(") or match.group(0).lower() in _KEYWORDS:
            continue
        names.add(match.group(0))
    return names


def allowed(metric: str) -> bool:
    return metric in ALLOWED_METRICS or metric.startswith(ALLOWED_METRIC_PREFIX)


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum(up{job="govbus"})', {"up"}),
        (
            'scrape_duration_seconds{job="govbus", instance=~"$instance"}',
            {"scrape_duration_seconds"},
        ),
        (
            'sum by (instance, topic) (rate(govbus_records_total{job="govbus"}[$__rate_interval]))',
            {"govbus_records_total"},
        ),
        (
            "histogram_quantile(0.99, sum(rate(govbus_latency_seconds_bucket[5m])) by (le))",
            {"govbus_latency_seconds_bucket"},
        ),
        ("kafka_server_x / on(instance) group_left up offset 1h > 1e3", {"kafka_server_x", "up"}),
        ('{__name__="node_cpu_seconds_total"}', {"node_cpu_seconds_total"}),
    ],
)
def test_metric_names_are_extracted(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside (collapsed) rows."""
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def load_dashboard(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_there_are_dashboards_with_unique_uids() -> None:
    assert DASHBOARD_FILES, f"no dashboards in {DASHBOARD_DIR}"
    uids = [load_dashboard(path).get("uid") for path in DASHBOARD_FILES]
    assert all(isinstance(uid, str) and uid for uid in uids), uids
    assert len(set(uids)) == len(uids), f"duplicate dashboard uids: {uids}"


def test_operator_dashboard() -> None:
    dashboard = load_dashboard(DASHBOARD_DIR / "govbus-operator.json")
    assert dashboard["uid"] == "govbus-operator"
    assert dashboard["title"] == "govbus — operator"
    assert dashboard["schemaVersion"] == 39
    titles = {p["title"] for p in panels(dashboard["panels"])}
    assert {"govbus processes up", "Scrape duration"} <= titles


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboard_is_tidy_json(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboard_panels_use_the_prometheus_datasource(path: Path) -> None:
    wrong = []
    ids = []
    for panel in panels(load_dashboard(path)["panels"]):
        ids.append(panel.get("id"))
        if panel.get("type") == "row":
            continue
        sources = [panel.get("datasource")]
        sources += [t["datasource"] for t in panel.get("targets", []) if "datasource" in t]
        if not all(isinstance(s, dict) and s.get("uid") == DATASOURCE_UID for s in sources):
            wrong.append(panel.get("title"))
    assert not wrong, f"panels not on datasource uid {DATASOURCE_UID!r}: {wrong}"
    assert len(set(ids)) == len(ids), f"duplicate panel ids: {ids}"


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboard_queries_only_known_metrics(path: Path) -> None:
    unknown = {}
    for panel in panels(load_dashboard(path)["panels"]):
        for target in panel.get("targets", []):
            expr = target.get("expr", "")
            assert expr.strip(), f"panel {panel.get('title')!r} has a target without expr"
            bad = sorted(m for m in metric_names(expr) if not allowed(m))
            if bad:
                unknown[f"{panel.get('title')} / {target.get('refId')}"] = bad
    assert not unknown, f"metrics outside the allow-list: {unknown}"
