"""The platform CA and broker certificate (govbus/broker/tls.py), and SASL_SSL as the only
protocol: what Kafka's PEM keystores and clients' hostname checks need (KAFKA-NOTES.md)."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from govbus.broker import properties, tls
from govbus.vocabulary.config import ConfigError, load_settings
from govbus.vocabulary.kafka import NodeAddress


def test_the_keystore_is_a_pkcs8_key_the_leaf_and_the_ca(tmp_path: Path) -> None:
    files = tls.ensure_tls(tmp_path / "tls")
    text = files.keystore.read_text()
    assert text.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    assert "ENCRYPTED" not in text and "EC PRIVATE KEY" not in text
    leaf, ca = x509.load_pem_x509_certificates(files.keystore.read_bytes())
    assert ca == x509.load_pem_x509_certificate(files.ca.read_bytes())
    assert leaf.issuer == ca.subject
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku and ExtendedKeyUsageOID.CLIENT_AUTH in eku
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for secret in (files.keystore, files.ca_key):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert tls.ensure_tls(tmp_path / "tls").keystore.read_text() == text  # idempotent


def test_rotation_keeps_the_ca_and_the_names_and_changes_the_key(tmp_path: Path) -> None:
    files = tls.ensure_tls(tmp_path / "tls")
    ca_before, key_before = files.ca.read_bytes(), files.keystore.read_text().split("-----END")[0]
    old, new = tls.rotate_leaf(files)
    assert files.ca.read_bytes() == ca_before
    assert new.serial != old.serial and new.names == old.names and new.subject == old.subject
    assert files.keystore.read_text().split("-----END")[0] != key_before
    assert tls.leaf_info(files).serial == new.serial
    with pytest.raises(tls.TlsError, match="no TLS material"):
        tls.rotate_leaf(tls.TlsFiles(tmp_path / "none"))


def test_both_listeners_are_sasl_ssl_with_the_pem_stores(tmp_path: Path) -> None:
    node = NodeAddress(1, 9092, 9093)
    props = properties.render(node, [node], tmp_path, "a", "c", tmp_path / "tls")
    assert props["listener.security.protocol.map"] == "CONTROLLER:SASL_SSL,BROKER:SASL_SSL"
    assert "PLAINTEXT" not in props["listeners"]
    for listener in ("broker", "controller"):
        assert props[f"listener.name.{listener}.ssl.keystore.type"] == "PEM"
        assert props[f"listener.name.{listener}.ssl.keystore.location"].endswith("broker.pem")
    assert props["ssl.truststore.location"].endswith("ca.pem")
    assert not any("password" in k and k.startswith("ssl.") for k in props)  # PEM: none


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT", "SSL"])
def test_anything_but_sasl_ssl_is_refused(protocol: str) -> None:
    with pytest.raises(ConfigError, match="SASL_SSL"):
        load_settings(env={"GOVBUS_SECURITY_PROTOCOL": protocol})
