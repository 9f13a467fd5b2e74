"""Every `govbus` command, given bad input, says what failed in one line and exits 1.

The commands are listed from the argparse parser, so a new command without a case here fails
``test_every_command_has_a_bad_input_case``. No broker is needed: the bootstrap is a port that
refuses connections and every case fails before a Kafka client would wait for it (no admin
password in the state directory, an unregistered department, a file that is not text, ...).

Also here: files saved by Excel on a Chinese Windows (GBK) are read, binary files are refused
in one line, `catalog export` to ``-`` and /dev/stdout, and GOVBUS_DEBUG=1 keeps the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import pkgutil
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from govbus import cli
from govbus.catalog.sheets import read_csv_dir, write_csv_dir
from govbus.catalog.yaml_io import SAMPLE_CATALOG_PATH, load_yaml
from govbus.cli import build_parser, main
from govbus.vocabulary.errors import GovbusError, UserError
from govbus.vocabulary.spec import CatalogSpec
from govbus.vocabulary.textfiles import TextFileError, detect_encoding, open_text
from producers.publisher import read_records

REPO = Path(__file__).resolve().parents[2]
HOUSEHOLD = "10101/1132040001410015XY-000001"  # 人口户籍基本信息, provided by cz-gaj
PROVIDER = "cz-gaj"
HOLDER = "cz-mzj"  # holds copies of HOUSEHOLD's citizen_name
REFUSING_BOOTSTRAP = "127.0.0.1:1"
CONFIG_ERROR = {"GOVBUS_BROKER_PORT": "not-a-port"}  # for commands that take no other input


@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...]
    expect: str  # in the message
    env: dict[str, str] = field(default_factory=dict)
    summary: bool = False  # a summary line, then one indented line per problem
    # Known to print a traceback still: the module that raises a plain ValueError for it.


def case(
    command_line: str,
    expect: str,
    *,
    env: dict[str, str] | None = None,
    summary: bool = False,
) -> Case:
    return Case(tuple(shlex.split(command_line)), expect, env or {}, summary)


PW = "--password-file {password}"
AS_PROVIDER = f"--department {PROVIDER} --resource {HOUSEHOLD}"

# Command (as the parser spells it) -> bad inputs, each a command line after
# `govbus --state-dir DIR` ({name}: a path of the ``world`` fixture). Every command has one.
CASES: dict[tuple[str, ...], list[Case]] = {
    ("broker", "install"): [
        case("broker install", "Kafka 9.9.9 is not pinned", env={"GOVBUS_KAFKA_VERSION": "9.9.9"})
    ],
    ("broker", "start"): [
        case("broker start", "Kafka 9.9.9 is not pinned", env={"GOVBUS_KAFKA_VERSION": "9.9.9"}),
        case("broker start --nodes 2", "argument --nodes: invalid choice"),
    ],
    ("broker", "stop"): [case("broker stop", "broker_port", env=CONFIG_ERROR)],
    ("broker", "status"): [case("broker status", "broker_port", env=CONFIG_ERROR)],
    ("broker", "reset"): [case("broker reset", "without --yes")],
    ("broker", "lock"): [
        case("broker lock", "Not a directory", env={"GOVBUS_CACHE_DIR": "{binary}/cache"})
    ],
    ("postgres",): [
        case("postgres status", "broker_port", env=CONFIG_ERROR),
        case("postgres restart", "argument action: invalid choice"),
    ],
    ("catalog", "validate"): [
        case("catalog validate {missing}", "no such file or directory"),
        case("catalog validate {binary_csv_dir}", "not a text file", summary=True),
    ],
    ("catalog", "import"): [
        case(
            "catalog import {incompatible}",
            "resource 10101/1132040001410015XY-000001 人口户籍基本信息: the new schema cannot read "
            "records written with the old one (backward compatibility): item 'citizen_id' "
            "(公民身份号码) changed",
        ),
        case("catalog import {gbk_catalog} --encoding klingon", "unknown text encoding"),
        case("catalog import --author ' '", "author is required"),
    ],
    ("catalog", "export"): [
        case("catalog export --version 99 {out}/c.yaml", "does not exist (versions are 1..1)"),
        case("catalog export {missing}/c.yaml", "does not exist"),
        case("catalog export {binary}", "give a .yaml or .xlsx file"),
    ],
    ("catalog", "show"): [case("catalog show nosuch", "no resource nosuch")],
    ("catalog", "diff"): [case("catalog diff 1 99", "version 99 does not exist")],
    ("catalog", "history"): [case("catalog history", "broker_port", env=CONFIG_ERROR)],
    ("catalog", "search"): [case("catalog search ' '", "give a word")],
    ("catalog", "schemas"): [case("catalog schemas --dir {binary}", "exists")],
    ("catalog", "trigger"): [
        case(
            f"catalog trigger --kind law-revised --description ' ' --department {PROVIDER}",
            "--description is empty",
        ),
        case("catalog trigger --kind x --description d --department a", "invalid choice"),
        case(
            "catalog trigger --kind law-revised --description d --department nosuch",
            "nosuch",
        ),
    ],
    ("catalog", "deadlines"): [case("catalog deadlines --today someday", "argument --today")],
    ("catalog", "relay"): [case("catalog relay", "no admin password")],
    ("plan",): [case("plan", "no admin password")],
    ("apply",): [case("apply", "no admin password")],
    ("publish",): [
        case(f"publish {AS_PROVIDER} {{binary}} {PW}", "not a text file"),
        case(f"publish {AS_PROVIDER} {{missing}}/r.csv {PW}", "No such file or directory"),
        case(f"publish {AS_PROVIDER} {{gbk_csv}} --encoding utf-8 {PW}", "not utf-8 text"),
        case(
            f"publish --department nosuch --resource {HOUSEHOLD} {{gbk_csv}} {PW}",
            "'nosuch' is not registered",
        ),
        case(f"publish --resource {HOUSEHOLD} {{gbk_csv}}", "required: --department"),
    ],
    ("consume",): [
        case(
            f"consume --department nosuch --resource {HOUSEHOLD} --purpose work-reference {PW}",
            "'nosuch' is not registered",
        ),
        case(
            f"consume --department {PROVIDER} --resource {HOUSEHOLD} --purpose work-reference",
            "no password for department",
        ),
        case(
            f"consume --department ../x --resource {HOUSEHOLD} --purpose work-reference",
            "not a valid user name",
        ),
    ],
    ("audit", "verify"): [case("audit verify", "no admin password")],
    ("request",): [
        case(
            f"request {HOUSEHOLD} --department nosuch --purpose work-reference --duty d "
            "--until 2099-12-31",
            "'nosuch' is not registered",
        ),
        case(
            f"request {HOUSEHOLD} --department {PROVIDER} --purpose work-reference --duty d "
            "--until 31/12/2099",
            "not a date",
        ),
    ],
    ("requests",): [case("requests --show 99", "share request 99 does not exist")],
    ("approve",): [case(f"approve 99 --actor {PROVIDER}", "99 does not exist")],
    ("deny",): [case(f"deny 99 --actor {PROVIDER} --reason r", "99 does not exist")],
    ("revoke",): [case(f"revoke 99 --actor {PROVIDER} --reason r", "grant 99 does not exist")],
    ("negotiate",): [
        case(f"negotiate 99 --actor {PROVIDER}", "99 does not exist"),
        case(f"negotiate --actor {PROVIDER}", "name the request"),
    ],
    ("escalate",): [case(f"escalate 99 --actor {PROVIDER} --note n", "99 does not exist")],
    ("disputes", "file"): [
        case(
            f"disputes file {HOUSEHOLD} k1 --department nosuch --reason r {PW}",
            "'nosuch' is not registered",
        )
    ],
    ("disputes", "ack"): [
        case(f"disputes ack d1 --department nosuch {PW}", "'nosuch' is not registered")
    ],
    ("disputes", "resolve"): [
        case(
            f"disputes resolve d1 --department {PROVIDER} --outcome confirmed --note n "
            f"--corrected-offset zz {PW}",
            "give PARTITION:OFFSET",
        )
    ],
    ("disputes", "list"): [case("disputes list", "no password for department")],
    ("disputes", "show"): [
        case(f"disputes show d1 --as nosuch {PW}", "'nosuch' is not registered")
    ],
    ("disputes", "watch"): [case(f"disputes watch --as nosuch {PW}", "'nosuch' is not registered")],
    ("observe",): [
        case(f"observe {HOUSEHOLD} {{binary}} --department {HOLDER} {PW}", "not a text file"),
        case(f"observe {HOUSEHOLD} {{gbk_csv}} --department {PROVIDER} {PW}", "is not a holder"),
    ],
    ("stream-apps", "list"): [case("stream-apps list", "broker_port", env=CONFIG_ERROR)],
    ("stream-apps", "run"): [
        case("stream-apps run nosuch", "unknown stream app 'nosuch'"),
        case("stream-apps run x --partitions three", "invalid int value"),
    ],
    ("agent", "source"): [
        case(f"agent source --department {PROVIDER} --mapping {{binary}} {PW}", "not a text file"),
        case(
            f"agent source --department {PROVIDER} --mapping {{agent_mapping}} {PW}",
            "agent.yaml:7:9: sources[0] (table hh) column a: item nosuch is not an info item",
        ),
    ],
    ("agent", "sink"): [
        case(f"agent sink --department {HOLDER} --mapping {{missing}}/m.yaml {PW}", "No such file"),
        case(
            f"agent sink --department nosuch --mapping {{agent_mapping}} {PW}",
            "agent.yaml:9:5: sinks[0] (table hh_copy): department 'nosuch' is not registered",
        ),
    ],
    ("agent", "check"): [
        case("agent check --department nosuch --mapping {agent_mapping}", "'nosuch' is not"),
        case(f"agent check --department {PROVIDER}", "required: --mapping"),
    ],
    ("demo",): [case("demo", "broker_port", env=CONFIG_ERROR)],
    ("exporter",): [case("exporter --port x", "argument --port: invalid int")],
    ("violations", "list"): [
        case("violations list --kind 26(9)", "kinds of article 26"),
        case("violations list --department nosuch", "unknown department 'nosuch'"),
    ],
    ("violations", "show"): [case("violations show 99", "no violation 99")],
    ("violations", "notify"): [
        case("violations notify 99 --actor cz-gaj --note n", "only the operator"),
        case("violations notify 1 --actor cz-dsjj --workdays 0 --note note", "1..60"),
    ],
    ("violations", "respond"): [
        case("violations respond 99 --actor cz-gaj --text done", "no violation 99")
    ],
    ("violations", "close"): [
        case("violations close 99 --actor cz-dsjj --reason ' '", "the reason must say")
    ],
    ("violations", "escalate"): [
        case("violations escalate --actor cz-dsjj", "give a violation ID, or --overdue")
    ],
    ("violations", "record"): [
        case("violations record --department cz-gaj --reason x --actor cz-dsjj", "reason must say")
    ],
    ("violations", "detect"): [
        case("violations detect --dead-letter-threshold 2", "not a fraction in [0, 1)")
    ],
    ("violations", "relay"): [case("violations relay", "broker_port", env=CONFIG_ERROR)],
    ("evaluate",): [
        case("evaluate --year 2999", "has not begun"),
        case("evaluate --year 2026 --as-of 2025-01-01", "is not in 2026"),
    ],
    ("report",): [case("report --department nosuch --year 2026", "unknown department 'nosuch'")],
    ("web", "serve"): [
        case("web serve --port x", "argument --port: invalid int"),
        case("web serve --host 203.0.113.7 --port 8080", "cannot serve the web console"),
    ],
    ("web", "user", "add"): [
        case(
            "web user add 'Bad Name' --department cz-mzj --role viewer --password-file {password}",
            "user name 'Bad Name'",
        ),
        case(
            "web user add mzj-x --department nosuch --role viewer --password-file {password}",
            "department 'nosuch' is not in the catalog",
        ),
        case(
            "web user add gaj-op --department cz-gaj --role operator --password-file {password}",
            "role operator is for the platform operator",
        ),
        case("web user add x1 --department cz-mzj --role king", "argument --role: invalid choice"),
        case(
            "web user add x1 --department cz-mzj --role viewer --password-file {missing}",
            "No such file or directory",
        ),
    ],
    ("web", "users"): [case("web users", "broker_port", env=CONFIG_ERROR)],
}


def _commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    """Every leaf command of the parser, e.g. ("catalog", "export")."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: list[tuple[str, ...]] = []
            for name, sub in action.choices.items():
                found += _commands(sub, (*prefix, name))
            return found
    return [prefix]


def _params() -> Iterator[object]:
    for command, cases in CASES.items():
        for i, c in enumerate(cases):
            yield pytest.param(c, id=f"{' '.join(command)}-{i}")


# --- the files a new user hands over -------------------------------------------------------------


def _gbk_records() -> str:
    return (
        "citizen_id,citizen_name,gender\n320402199001011015,张三,男\n320402199202022028,李四,女\n"
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A state dir with the sample catalog as version 1, and the files the cases name."""
    root = tmp_path_factory.mktemp("cli-errors")
    state = root / "state"
    with pytest.MonkeyPatch.context() as mp:
        _quiet_env(mp)
        assert main(["--state-dir", str(state), "catalog", "import"]) == 0
    password = root / "department.password"
    password.write_text("not-a-real-password\n", encoding="utf-8")
    binary = root / "records.csv"  # a PNG saved under the wrong name
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00")
    gbk_csv = root / "gbk.csv"  # Excel's "CSV (逗号分隔)" on a Chinese Windows: code page 936
    gbk_csv.write_bytes(_gbk_records().encode("gbk"))
    incompatible = root / "incompatible.yaml"
    data = yaml.safe_load(Path(SAMPLE_CATALOG_PATH).read_text(encoding="utf-8"))
    household = next(r for r in data["resources"] if r["code"] == HOUSEHOLD)
    next(i for i in household["items"] if i["code"] == "citizen_id")["data_type"] = "I"
    incompatible.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    binary_csv_dir = root / "binary-catalog"
    write_csv_dir(load_yaml(SAMPLE_CATALOG_PATH), binary_csv_dir)
    shutil.copyfile(binary, binary_csv_dir / "resources.csv")
    gbk_catalog = root / "gbk-catalog"
    write_csv_dir(load_yaml(SAMPLE_CATALOG_PATH), gbk_catalog)
    for f in gbk_catalog.glob("*.csv"):
        f.write_bytes(f.read_text(encoding="utf-8-sig").encode("gb18030"))
    (root / "out").mkdir()
    agent_mapping = root / "agent.yaml"  # a front-end agent's mapping naming an unknown item
    agent_mapping.write_text(
        f"database: sqlite:///{root / 'frontend.db'}\nsources:\n  - table: hh\n"
        f"    resource: {HOUSEHOLD}\n    updated_at: t\n    columns:\n"
        f"      - {{column: a, item: nosuch}}\nsinks:\n  - resource: {HOUSEHOLD}\n"
        "    table: hh_copy\n    purpose: work-reference\n",
        encoding="utf-8",
    )
    return {
        "agent_mapping": agent_mapping,
        "state": state,
        "password": password,
        "binary": binary,
        "gbk_csv": gbk_csv,
        "incompatible": incompatible,
        "binary_csv_dir": binary_csv_dir,
        "gbk_catalog": gbk_catalog,
        "missing": root / "missing",
        "out": root / "out",
    }


def _quiet_env(mp: pytest.MonkeyPatch) -> None:
    """No broker, no admin password, no debug: what a new user's shell has."""
    mp.setenv("GOVBUS_BOOTSTRAP_SERVERS", REFUSING_BOOTSTRAP)
    for name in ("GOVBUS_DEBUG", "GOVBUS_ADMIN_PASSWORD", "GOVBUS_CONFIG", "GOVBUS_STATE_DIR"):
        mp.delenv(name, raising=False)


def _run(world: dict[str, Path], argv: tuple[str, ...]) -> int:
    paths = {k: str(v) for k, v in world.items()}
    return main(["--state-dir", paths["state"], *(a.format(**paths) for a in argv)])


def _assert_one_line(err: str, expect: str, summary: bool = False) -> None:
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert lines, "nothing on stderr"
    assert lines[0].startswith("govbus: error: "), err
    if summary:
        assert all(line.startswith("  ") for line in lines[1:]), err
    else:
        assert len(lines) == 1, err
    assert expect in err, err


# --- the tests ------------------------------------------------------------------------------------


def test_every_command_has_a_bad_input_case() -> None:
    commands = set(_commands(build_parser()))
    assert commands == set(CASES), (
        f"commands without a case: {sorted(commands - set(CASES))}; "
        f"cases of no command: {sorted(set(CASES) - commands)}"
    )


@pytest.mark.parametrize("bad", list(_params()))
def test_bad_input_is_one_line_and_exit_1(
    bad: Case,
    world: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _quiet_env(monkeypatch)
    paths = {k: str(v) for k, v in world.items()}
    for name, value in bad.env.items():
        monkeypatch.setenv(name, value.format(**paths))
    capsys.readouterr()
    assert _run(world, bad.argv) == 1
    _assert_one_line(capsys.readouterr().err, bad.expect, bad.summary)


def test_gbk_records_csv_is_read_correctly(world: dict[str, Path]) -> None:
    resource = load_yaml(SAMPLE_CATALOG_PATH).resource(HOUSEHOLD)
    assert resource is not None
    assert detect_encoding(world["gbk_csv"]) == "gb18030"
    expected = [
        (1, {"citizen_id": "320402199001011015", "citizen_name": "张三", "gender": "男"}),
        (2, {"citizen_id": "320402199202022028", "citizen_name": "李四", "gender": "女"}),
    ]
    assert list(read_records(world["gbk_csv"], resource)) == expected
    assert list(read_records(world["gbk_csv"], resource, encoding="gbk")) == expected


def test_utf8_with_and_without_bom_and_named_encodings(tmp_path: Path) -> None:
    text = _gbk_records()
    traditional = "name,city\n張三,臺北\n"
    for name, data in {
        "bom.csv": b"\xef\xbb\xbf" + text.encode("utf-8"),  # Excel's "CSV UTF-8"
        "plain.csv": text.encode("utf-8"),
        "big5.csv": traditional.encode("big5"),
        "cp1252.csv": "name,city\nRené,Besançon\n".encode("cp1252"),
    }.items():
        (tmp_path / name).write_bytes(data)
    for name in ("bom.csv", "plain.csv"):
        with open_text(tmp_path / name, newline="") as fh:
            assert fh.read() == text
    with open_text(tmp_path / "big5.csv", "big5") as fh:
        assert fh.read() == traditional
    # Neither UTF-8 nor GB18030: refused where it breaks, saying to name the encoding.
    with pytest.raises(TextFileError, match=r"cp1252.csv: .*byte 13, line 2.*--encoding"):
        detect_encoding(tmp_path / "cp1252.csv")
    with open_text(tmp_path / "cp1252.csv", "cp1252") as fh:
        assert "René" in fh.read()
    with pytest.raises(UserError, match="unknown text encoding 'klingon'"):
        open_text(tmp_path / "plain.csv", "klingon")


def test_binary_file_is_refused_naming_file_offset_and_encoding_option(
    world: dict[str, Path],
) -> None:
    with pytest.raises(TextFileError) as refused:
        list(read_records(world["binary"]))
    message = str(refused.value)
    assert message.startswith(f"{world['binary']}: binary content, not a text file")
    assert "NUL byte at byte 8, line 3" in message
    assert "--encoding" in message
    assert "\n" not in message


def test_gb18030_catalog_csv_directory_reads_as_the_utf8_one(
    world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    utf8 = tmp_path / "utf8-catalog"
    write_csv_dir(load_yaml(SAMPLE_CATALOG_PATH), utf8)
    assert read_csv_dir(world["gbk_catalog"]) == read_csv_dir(utf8)
    assert read_csv_dir(world["gbk_catalog"], "gb18030") == read_csv_dir(utf8)
    assert (
        main(["--state-dir", str(world["state"]), "catalog", "validate", str(world["gbk_catalog"])])
        == 0
    )
    assert "all rules pass" in capsys.readouterr().out


def test_export_dash_writes_yaml_to_stdout(
    world: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _quiet_env(monkeypatch)
    capsys.readouterr()
    assert _run(world, ("catalog", "export", "-")) == 0
    captured = capsys.readouterr()
    assert CatalogSpec.from_dict(yaml.safe_load(captured.out)) == load_yaml(SAMPLE_CATALOG_PATH)
    assert captured.err.strip() == "wrote 34 resources to standard output"
    assert _run(world, ("catalog", "export", "--version", "0", "-")) == 0  # before v1: empty
    assert yaml.safe_load(capsys.readouterr().out) == {"departments": [], "resources": []}


def _govbus(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GOVBUS_")}
    return subprocess.run(
        [sys.executable, "-m", "govbus.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=REPO,
        env={**base, "GOVBUS_BOOTSTRAP_SERVERS": REFUSING_BOOTSTRAP, **(env or {})},
    )


def test_export_to_dev_stdout(world: dict[str, Path]) -> None:
    proc = _govbus("--state-dir", str(world["state"]), "catalog", "export", "/dev/stdout")
    assert proc.returncode == 0, proc.stderr
    assert CatalogSpec.from_dict(yaml.safe_load(proc.stdout)) == load_yaml(SAMPLE_CATALOG_PATH)
    assert proc.stderr.strip() == "wrote 34 resources to /dev/stdout"


def test_govbus_debug_keeps_the_traceback(world: dict[str, Path]) -> None:
    args = ("--state-dir", str(world["state"]), "catalog", "export", "--version", "99", "-")
    quiet = _govbus(*args)
    assert quiet.returncode == 1
    assert quiet.stderr.startswith("govbus: error: catalog version 99 does not exist")
    assert "Traceback" not in quiet.stderr
    debug = _govbus(*args, env={"GOVBUS_DEBUG": "1"})
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "VersionNotFoundError: catalog version 99 does not exist" in debug.stderr


def test_exporter_on_a_taken_port_is_one_line(world: dict[str, Path]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _govbus(
            "--state-dir",
            str(world["state"]),
            "exporter",
            "--addr",
            "127.0.0.1",
            "--port",
            str(port),
        )
    assert proc.returncode == 1
    _assert_one_line(proc.stderr, f"cannot serve metrics on 127.0.0.1:{port}")


def test_ctrl_c_exits_130_and_a_bug_keeps_its_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _quiet_env(monkeypatch)

    def interrupted(args: argparse.Namespace, settings: object) -> int:
        raise KeyboardInterrupt

    def buggy(args: argparse.Namespace, settings: object) -> int:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "_broker_status", interrupted)
    assert main(["--state-dir", str(tmp_path), "broker", "status"]) == 130
    monkeypatch.setattr(cli, "_broker_status", buggy)
    with pytest.raises(ZeroDivisionError):
        main(["--state-dir", str(tmp_path), "broker", "status"])


def test_every_exception_class_is_in_the_error_tree() -> None:
    """So the CLI prints each as one line: no exception class outside ``GovbusError``."""
    outside = []
    for root in ("govbus", "producers", "stream_apps"):
        package = importlib.import_module(root)
        for info in pkgutil.walk_packages(package.__path__, f"{root}."):
            if info.name.startswith("govbus.migrations") or info.name.endswith("__main__"):
                continue  # alembic's env runs a migration; __main__ runs the command
            module = importlib.import_module(info.name)
            for name, obj in vars(module).items():
                if (
                    inspect.isclass(obj)
                    and issubclass(obj, BaseException)
                    and obj.__module__ == info.name
                    and not issubclass(obj, GovbusError)
                ):
                    outside.append(f"{info.name}.{name}")
    assert outside == []
