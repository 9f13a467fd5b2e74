"""Settings for every govbus command, from one documented precedence.

Precedence, highest first:
  1. command-line flags (only the few the CLI exposes, e.g. ``--state-dir``),
  2. environment variables ``GOVBUS_<NAME>`` (e.g. ``GOVBUS_BOOTSTRAP_SERVERS``),
  3. the config file: ``--config PATH``, else ``$GOVBUS_CONFIG``, else ``./govbus.toml`` if present,
  4. built-in defaults (a local broker managed by ``govbus broker``).

The config file is TOML with the same names in lower case, e.g. ``bootstrap_servers = "..."``.
Secrets may be given as ``<name>_file`` (a path whose contents are the secret) so they need not
sit in the file or the environment.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from govbus.vocabulary.errors import UserError
from govbus.vocabulary.naming import DEFAULT_OPERATOR, Naming

ENV_PREFIX = "GOVBUS_"
DEFAULT_CONFIG_FILE = "govbus.toml"


class ConfigError(UserError):
    """A setting is missing or malformed; the message names the setting and its source."""


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "govbus"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "govbus"


@dataclass(frozen=True)
class Settings:
    # Kafka connection. Empty bootstrap_servers means "the local broker govbus manages".
    bootstrap_servers: str = ""
    # SASL_SSL only (article 22): PLAINTEXT and SASL_PLAINTEXT are refused.
    security_protocol: str = "SASL_SSL"
    sasl_mechanism: str = "SCRAM-SHA-512"
    # The platform CA clients verify the brokers with; empty: the local cluster's
    # <state_dir>/tls/ca.pem.
    ssl_ca_location: str = ""
    admin_username: str = "admin"
    # Empty means: read the local broker's generated secret from the state directory.
    admin_password: str = field(default="", repr=False)
    # Catalog database (SQLAlchemy URL). Empty means SQLite under the state directory.
    catalog_dsn: str = ""
    state_dir: Path = field(default_factory=_default_state_dir)
    cache_dir: Path = field(default_factory=_default_cache_dir)
    # Local broker management.
    kafka_version: str = "4.1.2"
    broker_port: int = 19092
    broker_nodes: int = 1
    broker_heap: str = "512m"
    # A Maven repository (or mirror) URL; empty uses Maven's own settings (~/.m2/settings.xml).
    maven_repo: str = ""
    metrics_port: int = 9464
    # Department id of the competent department that coordinates unresolved share requests
    # (article 17, 主管部门协调) and may revoke grants: the platform operator, 市大数据管理局.
    share_coordinator: str = DEFAULT_OPERATOR
    # Put in front of every topic and platform user name (govbus.vocabulary.naming): a second
    # exchange on the same cluster, or a test's own namespace. Empty in production.
    namespace: str = ""
    # The named platform (article 13) these settings point at (govbus.vocabulary.platforms):
    # empty for the single exchange of the state directory; ``--platform ID`` sets it.
    platform: str = ""

    @property
    def naming(self) -> Naming:
        return Naming(self.namespace)

    @property
    def resolved_catalog_dsn(self) -> str:
        return self.catalog_dsn or f"sqlite:///{self.state_dir / 'catalog.db'}"


_SECRET_FIELDS = {"admin_password"}


def _coerce(name: str, raw: Any, source: str) -> Any:
    target = {f.name: f.type for f in fields(Settings)}[name]
    try:
        if target in ("int", int):
            return int(raw)
        if target in ("Path", Path):
            return Path(str(raw)).expanduser().absolute()
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r} from {source}: cannot use {raw!r} ({exc})") from exc


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    return data


def load_settings(
    config_file: str | Path | None = None,
    env: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Build Settings from defaults < config file < environment < overrides (CLI flags)."""
    env = dict(os.environ) if env is None else env
    known = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}

    path: Path | None = None
    if config_file:
        path = Path(config_file)
    elif env.get(ENV_PREFIX + "CONFIG"):
        path = Path(env[ENV_PREFIX + "CONFIG"])
    elif Path(DEFAULT_CONFIG_FILE).is_file():
        path = Path(DEFAULT_CONFIG_FILE)

    layers: list[tuple[str, dict[str, Any]]] = []
    if path is not None:
        layers.append((f"config file {path}", _read_file(path)))
    layers.append(
        (
            "environment",
            {k[len(ENV_PREFIX) :].lower(): v for k, v in env.items() if k.startswith(ENV_PREFIX)},
        )
    )
    layers.append(("command line", {k: v for k, v in (overrides or {}).items() if v is not None}))

    for source, layer in layers:
        for key, raw in layer.items():
            if key == "config":
                continue
            if key.endswith("_file") and key[: -len("_file")] in _SECRET_FIELDS:
                secret_name = key[: -len("_file")]
                try:
                    values[secret_name] = Path(str(raw)).read_text(encoding="utf-8").strip()
                except OSError as exc:
                    raise ConfigError(
                        f"setting {key!r} from {source}: cannot read {raw}: {exc}"
                    ) from exc
                continue
            if key not in known:
                if source.startswith("config file"):
                    raise ConfigError(
                        f"{source}: unknown setting {key!r}; known: {', '.join(sorted(known))}"
                    )
                continue  # unrelated GOVBUS_* variables (e.g. GOVBUS_TEST_PG_DSN) are not ours
            values[key] = _coerce(key, raw, source)

    settings = replace(Settings(), **values)
    if settings.security_protocol != "SASL_SSL":
        raise ConfigError(
            f"security_protocol {settings.security_protocol!r} is refused: every connection is "
            "SASL_SSL (article 22: data in transit is protected); remove the setting"
        )
    if settings.broker_nodes not in (1, 3):
        raise ConfigError(f"broker_nodes must be 1 or 3, got {settings.broker_nodes}")
    return settings
