"""Settings precedence: defaults < config file < environment < command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from govbus.vocabulary.config import ConfigError, Settings, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "govbus.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_when_nothing_is_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings(env={})
    assert s == Settings()
    assert s.resolved_catalog_dsn == f"sqlite:///{s.state_dir / 'catalog.db'}"


def test_file_then_env_then_command_line(tmp_path: Path) -> None:
    cfg = write(
        tmp_path,
        'bootstrap_servers = "file:9092"\nbroker_port = 40000\ncatalog_dsn = "sqlite://"\n',
    )
    env = {"GOVBUS_BOOTSTRAP_SERVERS": "env:9092", "GOVBUS_BROKER_PORT": "41000"}
    s = load_settings(cfg, env=env, overrides={"broker_port": 42000})
    assert s.bootstrap_servers == "env:9092"  # env beats file
    assert s.broker_port == 42000  # command line beats env
    assert s.catalog_dsn == "sqlite://"  # file beats default


def test_config_file_named_by_environment(tmp_path: Path) -> None:
    cfg = write(tmp_path, "metrics_port = 9999\n")
    assert load_settings(env={"GOVBUS_CONFIG": str(cfg)}).metrics_port == 9999


def test_secret_from_file(tmp_path: Path) -> None:
    secret = tmp_path / "admin.pw"
    secret.write_text("s3cret\n", encoding="utf-8")
    cfg = write(tmp_path, f'admin_password_file = "{secret}"\n')
    s = load_settings(cfg, env={})
    assert s.admin_password == "s3cret"
    assert "s3cret" not in repr(s)


def test_unknown_key_in_file_is_an_error_naming_it(tmp_path: Path) -> None:
    cfg = write(tmp_path, 'bootstrap_server = "typo:9092"\n')
    with pytest.raises(ConfigError, match="unknown setting 'bootstrap_server'"):
        load_settings(cfg, env={})


def test_bad_number_names_setting_and_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'broker_port' from environment"):
        load_settings(env={"GOVBUS_BROKER_PORT": "ninety"})


def test_unrelated_govbus_variables_are_ignored() -> None:
    assert load_settings(env={"GOVBUS_TEST_PG_DSN": "postgresql://x"}) == load_settings(env={})


def test_node_count_is_one_or_three() -> None:
    with pytest.raises(ConfigError, match="broker_nodes must be 1 or 3"):
        load_settings(env={"GOVBUS_BROKER_NODES": "2"})


def test_relative_state_dir_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The broker runs with its node directory as cwd; a relative path would point elsewhere.
    monkeypatch.chdir(tmp_path)
    s = load_settings(env={"GOVBUS_STATE_DIR": "rel/state"})
    assert s.state_dir == tmp_path / "rel" / "state"
    assert s.state_dir.is_absolute()
