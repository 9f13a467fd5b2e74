"""The command line: every subcommand documented, errors as one actionable line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from govbus.cli import build_parser, main


def _subcommands(parser: object) -> dict[str, str]:
    import argparse

    assert isinstance(parser, argparse.ArgumentParser)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {a.dest: a.help or "" for a in action._choices_actions}
    return {}


def test_help_lists_every_subcommand_with_a_description() -> None:
    parser = build_parser()
    commands = _subcommands(parser)
    assert {"broker", "postgres", "demo"} <= set(commands)
    text = parser.format_help()
    for name, help_text in commands.items():
        assert help_text, f"subcommand {name} has no description"
        assert name in text
    broker = parser._subparsers._group_actions[0].choices["broker"]  # type: ignore[union-attr]
    assert {"install", "start", "stop", "status", "reset"} <= set(_subcommands(broker))


def test_console_script_help_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "govbus.cli", "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert "broker" in proc.stdout


def test_status_without_a_cluster_says_how_to_start(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--state-dir", str(tmp_path), "broker", "status"])
    assert code == 3
    assert "govbus broker start" in capsys.readouterr().out


def test_reset_refuses_without_yes(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--state-dir", str(tmp_path), "broker", "reset"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("govbus: error: refusing to delete") and "--yes" in err


def test_config_error_is_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GOVBUS_BROKER_PORT", "not-a-port")
    monkeypatch.delenv("GOVBUS_DEBUG", raising=False)
    assert main(["broker", "status"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("govbus: error: setting 'broker_port' from environment")
    assert "Traceback" not in err
