"""Fetch the Kafka broker's classpath once, into a cache, and prove it is the pinned one.

Maven does the fetching: it is the ordinary client for Maven repositories, it honours the
mirror a user already has in ~/.m2/settings.xml, and with ``-C`` it refuses a jar whose
repository checksum does not match. On top of that every jar must match the SHA-256 recorded in
``kafka-<version>.lock`` next to this file, so a mirror cannot swap in a different build.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from govbus.vocabulary.errors import ServiceUnavailable

log = logging.getLogger(__name__)

POM_TEMPLATE = "kafka-classpath.xml"
# The classpaths govbus pins, each from its own POM and lock beside this file: the broker
# ("kafka": kafka-classpath.xml, kafka-<version>.lock) and MirrorMaker 2 for federation
# ("kafka-mirror": kafka-mirror-classpath.xml, kafka-mirror-<version>.lock).
BROKER = "kafka"
MIRROR = "kafka-mirror"


class InstallError(ServiceUnavailable):
    """The broker could not be installed; the message says what to do."""


@dataclass(frozen=True)
class Classpath:
    version: str
    libs: Path

    @property
    def java_classpath(self) -> str:
        return f"{self.libs}/*"


def _resource(name: str) -> Path:
    return Path(str(resources.files("govbus.broker").joinpath(name)))


def lock_path(version: str, component: str = BROKER) -> Path:
    return _resource(f"{component}-{version}.lock")


def read_lock(version: str, component: str = BROKER) -> dict[str, str]:
    """Map jar file name -> sha256 from the lock; raise if the version is not pinned."""
    path = lock_path(version, component)
    if not path.is_file():
        raise InstallError(
            f"Kafka {version} is not pinned: there is no {path.name}. Use the pinned version "
            f"or create the lock with `govbus broker lock --kafka-version {version}` and review it."
        )
    entries: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([0-9a-f]{64})\s+(\S+\.jar)", line.strip())
        if not match:
            raise InstallError(f"{path}:{lineno}: expected '<sha256>  <file>.jar', got {line!r}")
        entries[match.group(2)] = match.group(1)
    return entries


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def java_major_version(java: str = "java") -> int:
    """The major version of the JVM on PATH, or an InstallError saying how to get one."""
    if shutil.which(java) is None:
        raise InstallError(
            "Java is not installed: the Kafka broker needs a JDK or JRE 17 or newer "
            "(Debian: apt-get install openjdk-17-jre-headless)."
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        raise InstallError(f"cannot read the Java version from `java -version`: {out.strip()}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8" style
        major = int(match.group(2))
    if major < 17:
        raise InstallError(f"Java {major} found; the Kafka 4 broker needs Java 17 or newer.")
    return major


def _maven_command(settings_xml: Path | None) -> list[str]:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise InstallError(
            "Maven is not installed; govbus uses it to fetch the broker's jars "
            "(Debian: apt-get install maven)."
        )
    cmd = [mvn, "-B", "-q", "-C"]
    if settings_xml is not None:
        cmd += ["-s", str(settings_xml)]
    return cmd


def _mirror_settings(repo_url: str, directory: Path) -> Path:
    """A settings.xml that sends every repository request to repo_url (a domestic mirror)."""
    path = directory / "maven-settings.xml"
    path.write_text(
        "<settings><mirrors><mirror><id>govbus-mirror</id><mirrorOf>*</mirrorOf>"
        f"<url>{repo_url}</url></mirror></mirrors></settings>\n",
        encoding="utf-8",
    )
    return path


def _resolve(
    version: str, dest: Path, repo_url: str, workdir: Path, component: str = BROKER
) -> None:
    pom = workdir / "pom.xml"
    shutil.copyfile(_resource(f"{component}-classpath.xml"), pom)
    settings_xml = _mirror_settings(repo_url, workdir) if repo_url else None
    cmd = [
        *_maven_command(settings_xml),
        "-f",
        str(pom),
        f"-Dkafka.version={version}",
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={dest}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise InstallError(
            f"Maven could not fetch Kafka {version} (exit {proc.returncode}). If you sit behind "
            f"a mirror, set GOVBUS_MAVEN_REPO or configure ~/.m2/settings.xml.\n{tail}"
        )


def verify(libs: Path, version: str, component: str = BROKER) -> None:
    """Every locked jar present with its pinned digest, and nothing else on the classpath."""
    expected = read_lock(version, component)
    present = {p.name for p in libs.glob("*.jar")}
    missing = sorted(set(expected) - present)
    extra = sorted(present - set(expected))
    if missing or extra:
        raise InstallError(
            f"Kafka {version} classpath in {libs} differs from the lock: "
            f"missing {missing or 'none'}, unexpected {extra or 'none'}"
        )
    for name, digest in expected.items():
        actual = sha256_of(libs / name)
        if actual != digest:
            raise InstallError(
                f"{libs / name}: sha256 {actual} does not match the pinned {digest}; "
                "the repository served a different file. Delete it and install again, "
                "or check your mirror."
            )


def install(
    version: str, cache_dir: Path, repo_url: str = "", component: str = BROKER
) -> Classpath:
    """Fetch (once) and verify a pinned classpath (the broker's by default); return where it is."""
    read_lock(version, component)  # fail before any download when the version is not pinned
    target = cache_dir / f"{component}-{version}" / "libs"
    if target.is_dir():
        try:
            verify(target, version, component)
            return Classpath(version, target)
        except InstallError as exc:
            # The lock changed since the last install (or a jar was altered): fetch it afresh;
            # the new set is verified like any other before it replaces the old one.
            log.warning("%s; fetching the classpath again", exc)
    staging = target.with_name("libs.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    _resolve(version, staging, repo_url, staging.parent, component)
    verify(staging, version, component)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)  # only a verified classpath ever appears under its final name
    return Classpath(version, target)


def write_lock(version: str, cache_dir: Path, repo_url: str = "", component: str = BROKER) -> Path:
    """Maintainer tool: resolve a version afresh and record its jars' digests."""
    workdir = cache_dir / f"{component}-{version}-lock"
    shutil.rmtree(workdir, ignore_errors=True)
    libs = workdir / "libs"
    libs.mkdir(parents=True)
    _resolve(version, libs, repo_url, workdir, component)
    what = "broker" if component == BROKER else component
    lines = [
        f"# Kafka {version} {what} classpath, resolved from {component}-classpath.xml; "
        "sha256 per jar.",
        *(f"{sha256_of(p)}  {p.name}" for p in sorted(libs.glob("*.jar"))),
    ]
    path = lock_path(version, component)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.rmtree(workdir, ignore_errors=True)
    return path
