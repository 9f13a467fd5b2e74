"""``govbus_tls_certificate_not_after_seconds``: the exporter reports the notAfter of the
certificates govbus.broker.tls made under the state dir (no broker needed), and nothing when
there are no files; for an external cluster only the configured CA."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from prometheus_client import CollectorRegistry, generate_latest

from govbus.broker import tls
from govbus.monitor import exporter
from govbus.monitor.tls import NAME, TlsCollector
from govbus.vocabulary.config import Settings
from govbus.vocabulary.kafka import local_tls_dir
from tests.prometheus_text import samples


def expiries(settings: Settings) -> dict[str, float]:
    registry = CollectorRegistry()
    for collector in exporter.state_collectors(settings):
        registry.register(collector)
    text = generate_latest(registry).decode()
    return {s.labels["certificate"]: s.value for s in samples(text) if s.name == NAME}


def test_no_files_means_no_series(tmp_path: Path) -> None:
    assert expiries(replace(Settings(), state_dir=tmp_path)) == {}


def test_reports_the_not_after_of_the_certificates_govbus_made(tmp_path: Path) -> None:
    settings = replace(Settings(), state_dir=tmp_path)
    files = tls.ensure_tls(local_tls_dir(settings))
    ca, leaf = tls.ca_info(files), tls.leaf_info(files)
    assert ca.not_after != leaf.not_after  # 10 years against 397 days: the labels can't swap
    assert expiries(settings) == {
        "ca": ca.not_after.timestamp(),
        "broker": leaf.not_after.timestamp(),
    }
    _, new = tls.rotate_leaf(files)  # read at each scrape: a rotation shows at once
    assert expiries(settings)["broker"] == new.not_after.timestamp()
    files.keystore.unlink()
    assert set(expiries(settings)) == {"ca"}


def test_an_unreadable_file_gives_no_series(tmp_path: Path) -> None:
    settings = replace(Settings(), state_dir=tmp_path)
    files = tls.ensure_tls(local_tls_dir(settings))
    files.keystore.write_text("not a certificate\n", encoding="utf-8")
    assert set(expiries(settings)) == {"ca"}


def test_an_external_cluster_reports_only_its_configured_ca(tmp_path: Path) -> None:
    _, ca_cert = tls.make_ca()
    ca_file = tmp_path / "platform-ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    tls.ensure_tls(tmp_path / "tls")  # a local cluster's files, not the one configured
    external = replace(
        Settings(), state_dir=tmp_path, bootstrap_servers="kafka.example:9093",
        ssl_ca_location=str(ca_file),
    )  # fmt: skip
    assert expiries(external) == {"ca": ca_cert.not_valid_after_utc.timestamp()}
    assert expiries(replace(external, ssl_ca_location="")) == {}


def test_the_collector_describes_its_family_without_reading_files() -> None:
    (family,) = TlsCollector.__new__(TlsCollector).describe()
    assert family.name == NAME
    assert family._labelnames == ("certificate",)
