"""The platform's TLS material: a certificate authority and the brokers' certificate (article 22:
data in transit is protected), made with the ``cryptography`` package.

Layout under ``<state_dir>/tls`` (``local_tls_dir``)::

    ca.pem        the platform CA's certificate: every client verifies the brokers with it
                  (``ssl.ca.location``; hand it to departments with their client config)
    ca-key.pem    the CA's private key (0600): only ``govbus broker`` signs with it
    broker.pem    the brokers' keystore (0600): PKCS#8 private key, leaf certificate, CA — the
                  one-file PEM form Kafka reads (``ssl.keystore.type=PEM``)

Facts that shape it (KAFKA-NOTES.md, verified against Kafka 4.1.2 and librdkafka 2.16 here):
the key must be PKCS#8 and unencrypted (PEM keystores take no password; the file is 0600);
clients check the host name by default (Kafka ``ssl.endpoint.identification.algorithm=https``,
librdkafka since 2.0), so the leaf carries ``IP:127.0.0.1`` and ``DNS:localhost`` in its subject
alternative names; one certificate serves every local node (they share the address).

Rotation (``rotate_leaf``): a new key and leaf with the same subject and names, signed by the
same CA, written over ``broker.pem`` (a new file renamed into place). A running broker takes it
when told to reload its listener's keystore (govbus.broker.cluster.LocalCluster.reload_tls);
clients need nothing, since they trust the CA, not the leaf.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from govbus.vocabulary.errors import UserError

CA_DAYS = 3650
LEAF_DAYS = 397  # the CA/Browser Forum's limit: a yearly rotation with a month's slack
DEFAULT_HOSTS = ("localhost", "127.0.0.1")


class TlsError(UserError):
    """The TLS material is missing or unusable; the message says which file and what to do."""


@dataclass(frozen=True)
class TlsFiles:
    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca-key.pem"

    @property
    def keystore(self) -> Path:
        return self.directory / "broker.pem"

    def exists(self) -> bool:
        return self.ca.is_file() and self.ca_key.is_file() and self.keystore.is_file()


@dataclass(frozen=True)
class CertInfo:
    subject: str
    serial: int
    not_before: dt.datetime
    not_after: dt.datetime
    names: tuple[str, ...]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write a new file and rename it into place (a reader never sees half a file)."""
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pkcs8(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _sans(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for host in hosts:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            out.append(x509.DNSName(host))
    return out


def make_ca(
    name: str = "govbus platform CA",
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _key()
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "govbus"),
        x509.NameAttribute(NameOID.COMMON_NAME, name),
    ])  # fmt: skip
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    hosts: tuple[str, ...] = DEFAULT_HOSTS,
    days: int = LEAF_DAYS,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _key()
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "govbus"),
        x509.NameAttribute(NameOID.COMMON_NAME, "govbus broker"),
    ])  # fmt: skip
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(_sans(hosts)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def ensure_tls(directory: Path, hosts: tuple[str, ...] = DEFAULT_HOSTS) -> TlsFiles:
    """The CA and the brokers' keystore under ``directory``, made on first use (idempotent)."""
    files = TlsFiles(directory)
    if files.exists():
        return files
    try:
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        if files.ca.is_file() and files.ca_key.is_file():
            ca_key, ca_cert = _load_ca(files)
        else:
            ca_key, ca_cert = make_ca()
            _write(files.ca_key, _pkcs8(ca_key), 0o600)
            _write(files.ca, _pem(ca_cert), 0o644)
        _write_leaf(files, ca_key, ca_cert, hosts)
    except OSError as exc:
        raise TlsError(f"cannot write the TLS material to {directory}: {exc}") from None
    return files


def existing(directory: Path) -> TlsFiles:
    """The TLS material in ``directory``; TlsError if it was never made."""
    files = TlsFiles(directory)
    if not files.exists():
        raise TlsError(
            f"no TLS material in {directory}: `govbus broker start` makes it on first use"
        )
    return files


def _write_leaf(
    files: TlsFiles, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate,
    hosts: tuple[str, ...],
) -> x509.Certificate:  # fmt: skip
    key, cert = make_leaf(ca_key, ca_cert, hosts)
    _write(files.keystore, _pkcs8(key) + _pem(cert) + _pem(ca_cert), 0o600)
    return cert


def _load_ca(files: TlsFiles) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    try:
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(files.ca.read_bytes())
    except (OSError, ValueError) as exc:
        raise TlsError(f"cannot read the platform CA in {files.directory}: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TlsError(f"{files.ca_key}: not an EC key (govbus makes P-256 keys)")
    return key, cert


def rotate_leaf(files: TlsFiles, hosts: tuple[str, ...] | None = None) -> tuple[CertInfo, CertInfo]:
    """A new broker key and certificate (same names unless ``hosts``); (old, new)."""
    existing(files.directory)
    old = leaf_info(files)
    ca_key, ca_cert = _load_ca(files)
    names = hosts or old.names
    cert = _write_leaf(files, ca_key, ca_cert, names)
    return old, _info(cert)


def _info(cert: x509.Certificate) -> CertInfo:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(
            [str(n) for n in san.get_values_for_type(x509.DNSName)]
            + [str(n) for n in san.get_values_for_type(x509.IPAddress)]
        )
    except x509.ExtensionNotFound:
        names = ()
    return CertInfo(
        cert.subject.rfc4514_string(), cert.serial_number, cert.not_valid_before_utc,
        cert.not_valid_after_utc, names,
    )  # fmt: skip


def leaf_info(files: TlsFiles) -> CertInfo:
    """The broker certificate in the keystore (the first certificate after the key)."""
    try:
        return _info(x509.load_pem_x509_certificates(files.keystore.read_bytes())[0])
    except (OSError, ValueError, IndexError) as exc:
        raise TlsError(f"cannot read the broker certificate {files.keystore}: {exc}") from None


def ca_info(files: TlsFiles) -> CertInfo:
    try:
        return _info(x509.load_pem_x509_certificate(files.ca.read_bytes()))
    except (OSError, ValueError) as exc:
        raise TlsError(f"cannot read the platform CA {files.ca}: {exc}") from None


def certificate_info(path: Path) -> CertInfo:
    """The first certificate in a PEM file (a CA file, or a keystore after its key)."""
    try:
        return _info(x509.load_pem_x509_certificates(path.read_bytes())[0])
    except (OSError, ValueError, IndexError) as exc:
        raise TlsError(f"cannot read a certificate from {path}: {exc}") from None
