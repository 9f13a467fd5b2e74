"""``govbus_broker_up`` and ``govbus_broker_nodes``: is the Kafka cluster there, asked at each
scrape by the exporter with the admin's credentials (a metadata request, ``PROBE_TIMEOUT``).

The alert "broker down" fires on ``govbus_broker_up == 0``: Kafka serves no metrics of its own
here (no JMX exporter), and a broker that is down cannot say so itself.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.config import Settings
from govbus.vocabulary.errors import GovbusError

__all__ = ["PROBE_TIMEOUT", "BrokerCollector"]

PROBE_TIMEOUT = 3.0  # seconds; below Prometheus's default scrape timeout (10 s)


class BrokerCollector(Collector):
    def __init__(self, settings: Settings, timeout: float = PROBE_TIMEOUT) -> None:
        self.settings = settings
        self.timeout = timeout

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily("govbus_broker_up", "1 if the Kafka cluster answered metadata"),
            GaugeMetricFamily("govbus_broker_nodes", "Brokers the cluster's metadata lists"),
        )

    def describe(self) -> list[GaugeMetricFamily]:
        return list(self._families())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up, nodes = self._families()
        try:
            found = kafka_clients.probe(
                kafka_clients.admin_config(self.settings), self.timeout
            ).brokers
        except GovbusError:  # no admin secret, no configuration: nothing to reach
            found = 0
        up.add_metric([], 1 if found else 0)
        nodes.add_metric([], found)
        yield up
        yield nodes
