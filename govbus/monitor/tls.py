"""``govbus_tls_certificate_not_after_seconds{certificate="ca"|"broker"}``: when each certificate
the brokers serve expires (Unix time), read from the files at each scrape by the exporter, so
the alerts "certificate expires within 30 days / 7 days" warn before clients are refused
(article 22: data in transit is protected; an expired certificate stops every exchange).

Which files: for the local cluster ``govbus broker`` manages (no ``bootstrap_servers``), the CA
and the brokers' keystore under ``<state_dir>/tls`` (govbus.broker.tls); for an external cluster
only the configured CA (``ssl_ca_location``), since its brokers' keystores are not on this
machine. A file that is absent or unreadable gives no series (there is nothing to expire).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from govbus.broker.tls import TlsError, TlsFiles, certificate_info
from govbus.vocabulary.config import Settings
from govbus.vocabulary.kafka import local_tls_dir

__all__ = ["NAME", "TlsCollector", "certificate_files"]

NAME = "govbus_tls_certificate_not_after_seconds"


def certificate_files(settings: Settings) -> dict[str, Path]:
    """Certificate label -> the PEM file the exporter reads it from, for these settings."""
    if settings.bootstrap_servers:  # an external cluster: only its CA is on this machine
        return {"ca": Path(settings.ssl_ca_location)} if settings.ssl_ca_location else {}
    files = TlsFiles(local_tls_dir(settings))
    return {"ca": files.ca, "broker": files.keystore}


class TlsCollector(Collector):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            NAME,
            "When the certificate expires (its notAfter), Unix time",
            labels=["certificate"],
        )

    def describe(self) -> list[GaugeMetricFamily]:
        return [self._family()]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        for label, path in certificate_files(self.settings).items():
            if not path.is_file():
                continue
            try:
                info = certificate_info(path)
            except TlsError:  # unreadable: no series rather than a wrong date
                continue
            family.add_metric([label], info.not_after.timestamp())
        yield family
