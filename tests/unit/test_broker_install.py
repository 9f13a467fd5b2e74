"""Installing the broker: pinned jars verified, clear errors when something is wrong.

These use the real cached classpath that scripts/setup.sh installed (no network here).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from govbus.broker import classpath
from govbus.vocabulary.config import load_settings


@pytest.fixture(scope="module")
def installed() -> classpath.Classpath:
    settings = load_settings()
    libs = settings.cache_dir / f"kafka-{settings.kafka_version}" / "libs"
    if not libs.is_dir():
        from tests.conftest import unavailable

        unavailable(f"broker classpath not installed in {libs} (run scripts/setup.sh)")
    return classpath.Classpath(settings.kafka_version, libs)


def test_installed_classpath_matches_the_lock(installed: classpath.Classpath) -> None:
    classpath.verify(installed.libs, installed.version)
    assert (installed.libs / f"kafka_2.13-{installed.version}.jar").is_file()


def test_a_tampered_jar_is_named(installed: classpath.Classpath, tmp_path: Path) -> None:
    copy = tmp_path / "libs"
    shutil.copytree(installed.libs, copy)
    victim = copy / f"kafka-clients-{installed.version}.jar"
    victim.write_bytes(victim.read_bytes() + b"\0")
    with pytest.raises(classpath.InstallError, match=f"kafka-clients-{installed.version}.jar"):
        classpath.verify(copy, installed.version)


def test_a_missing_or_extra_jar_is_named(installed: classpath.Classpath, tmp_path: Path) -> None:
    copy = tmp_path / "libs"
    shutil.copytree(installed.libs, copy)
    (copy / "argparse4j-0.7.0.jar").unlink()
    (copy / "evil.jar").write_bytes(b"x")
    with pytest.raises(classpath.InstallError, match=r"missing \['argparse4j-0.7.0.jar'\]"):
        classpath.verify(copy, installed.version)


def test_unpinned_version_is_refused_before_download(tmp_path: Path) -> None:
    with pytest.raises(classpath.InstallError, match=r"Kafka 9\.9\.9 is not pinned"):
        classpath.install("9.9.9", tmp_path)
    assert not any(tmp_path.iterdir())


def test_missing_java_says_how_to_install_it() -> None:
    with pytest.raises(classpath.InstallError, match="apt-get install openjdk-17-jre-headless"):
        classpath.java_major_version("no-such-java-binary")


def test_java_on_this_machine_is_new_enough() -> None:
    assert classpath.java_major_version() >= 17


def test_a_cache_that_no_longer_matches_the_lock_is_fetched_again(
    installed: classpath.Classpath, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    libs = cache / f"kafka-{installed.version}" / "libs"
    shutil.copytree(installed.libs, libs)
    stale = sorted(libs.glob("*.jar"))[0]
    stale.unlink()  # as after an upgrade that added a jar to the lock
    fresh = classpath.install(installed.version, cache)
    assert fresh.libs == libs
    classpath.verify(fresh.libs, installed.version)
    assert stale.exists()
