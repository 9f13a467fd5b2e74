"""The govbus metrics: one Prometheus registry, shared by every component in the process.

Metric objects live here (not in the components) so a producer, a consumer and the CLI all count
into the same series, and ``serve`` exposes them together. Labels are low-cardinality catalog
codes: ``resource`` is the 政务信息资源代码, ``department`` the department id, ``rule`` a
validation rule name (producers/validate.py).
"""

from __future__ import annotations

import argparse
import threading
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from govbus.config import Settings

__all__ = [
    "BYTES_PUBLISHED",
    "DEAD_LETTERS",
    "DELIVERY_LATENCY",
    "RECORDS_CONSUMED",
    "RECORDS_PUBLISHED",
    "REGISTRY",
    "VALIDATION_FAILURES",
    "add_port_option",
    "serve",
    "serve_option",
    "state_collectors",
]

REGISTRY = CollectorRegistry()

RECORDS_PUBLISHED = Counter(
    "govbus_records_published",
    "Records (including deletes) the broker acknowledged on a resource topic",
    ["resource", "department"],
    registry=REGISTRY,
)
BYTES_PUBLISHED = Counter(
    "govbus_bytes_published",
    "Encoded value bytes the broker acknowledged on a resource topic",
    ["resource", "department"],
    registry=REGISTRY,
)
VALIDATION_FAILURES = Counter(
    "govbus_validation_failures",
    "Rule violations found in records before publishing (a record may break several rules)",
    ["resource", "rule"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "govbus_dead_letters",
    "Records refused by validation and acknowledged on the department's dead-letter topic",
    ["department", "resource"],
    registry=REGISTRY,
)
DELIVERY_LATENCY = Histogram(
    "govbus_delivery_latency_seconds",
    "Time from handing a record to the producer to its delivery report",
    ["resource"],
    # Produce with acks=all on a healthy cluster takes milliseconds; linger and retries stretch
    # the tail to seconds.
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
RECORDS_CONSUMED = Counter(
    "govbus_records_consumed",
    "Records handed to a consuming department's application",
    ["resource", "department"],
    registry=REGISTRY,
)


def serve(port: int, addr: str = "0.0.0.0") -> tuple[WSGIServer, threading.Thread]:
    """Expose REGISTRY at http://<addr>:<port>/metrics from a daemon thread (port 0: any free
    port, see ``server.server_port``); ``server.shutdown()`` stops it."""
    try:
        return start_http_server(port, addr=addr, registry=REGISTRY)
    except OSError as exc:
        raise OSError(
            f"cannot serve metrics on {addr}:{port}: {exc.strerror or exc}; choose another "
            "port (--metrics-port, or metrics_port in the config)"
        ) from None


def add_port_option(parser: argparse.ArgumentParser) -> None:
    """``--metrics-port`` of a long-running command (see ``serve_option``)."""
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics on this port while running (default: off)",
    )


def serve_option(port: int | None) -> None:
    """Serve REGISTRY if ``--metrics-port`` was given; the daemon thread ends with the process."""
    if port is not None:
        serve(port)


def state_collectors(settings: Settings) -> list[Collector]:
    """Collectors of state other processes recorded, for a process that only serves metrics
    (``govbus exporter``): the reconciler's last drift counts and apply time."""
    from govbus.reconcile.status import StatusCollector

    return [StatusCollector(settings.state_dir)]
