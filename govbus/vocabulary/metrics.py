"""The govbus metrics: one Prometheus registry, shared by every component in the process.

Metric objects live here (not in the components) so a producer, a consumer and the CLI all count
into the same series, and ``serve`` exposes them together. Labels are low-cardinality catalog
codes: ``resource`` is the 政务信息资源代码, ``department`` the department id, ``rule`` a
validation rule name (producers/validate.py); ``group``/``topic``/``partition`` of the consumer
lag name a consumer group and the partitions it reads (a handful per group).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from govbus.vocabulary.errors import UserError

__all__ = [
    "AGENT_LAG",
    "AGENT_ROWS",
    "BYTES_PUBLISHED",
    "CONSUMER_LAG",
    "DEAD_LETTERS",
    "DELIVERY_LATENCY",
    "LOOKUP_AUDIT_LATENCY",
    "LOOKUP_LATENCY",
    "LOOKUP_RECORDS",
    "LOOKUP_REQUESTS",
    "RECORDS_CONSUMED",
    "RECORDS_PUBLISHED",
    "REGISTRY",
    "VALIDATION_FAILURES",
    "HealthCheck",
    "serve",
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

CONSUMER_LAG = Gauge(
    "govbus_consumer_lag",
    "Records on a partition a consumer group has not processed yet: the partition's high "
    "watermark minus the group's position (committed offset, or the offset after the last "
    "record handled); set by the consumer SDK and by every stream app's worker",
    ["group", "topic", "partition"],
    registry=REGISTRY,
)

STREAM_RESEEKS = Counter(
    "govbus_stream_reseeks",
    "Times a stream app worker sought an input partition back to its committed offset because "
    "its commits had stalled with records waiting (stream_apps/consumer.py); the records from "
    "there on are processed again",
    ["group", "topic", "partition"],
    registry=REGISTRY,
)

STREAM_REPROCESSED = Counter(
    "govbus_stream_reprocessed_records",
    "Records a stream app worker processes a second time because it sought an input partition "
    "back (govbus_stream_reseeks_total): the partition's read offset minus its committed offset "
    "at the seek",
    ["group", "topic", "partition"],
    registry=REGISTRY,
)

# The front-end agents (connectors/, article 16 前置机共享): ``table`` is a table of the
# department's front-end database (a handful per agent), ``stage`` one of read (rows the
# source read), published (acknowledged on the resource topic, deletes included),
# dead-lettered (acknowledged on the dead-letter topic), written (rows the sink upserted or
# deleted, counted after the database commit).
AGENT_ROWS = Counter(
    "govbus_agent_rows",
    "Rows of a front-end table a front-end agent read, published, dead-lettered or wrote",
    ["department", "table", "stage"],
    registry=REGISTRY,
)
AGENT_LAG = Gauge(
    "govbus_agent_lag_seconds",
    "How far a source agent's watermark is behind the newest row of its front-end table: the "
    "newest update time minus the watermark's (0 when every row is published)",
    ["department", "table"],
    registry=REGISTRY,
)


# The lookup service (govbus.lookup): ``outcome`` is "ok" or a refusal code (govbus.lookup.errors).
LOOKUP_REQUESTS = Counter(
    "govbus_lookup_requests",
    "Lookup requests answered or refused, per department and outcome",
    ["department", "outcome"],
    registry=REGISTRY,
)
LOOKUP_RECORDS = Counter(
    "govbus_lookup_records",
    "Records returned by lookups, per resource and department",
    ["resource", "department"],
    registry=REGISTRY,
)
# Lookups answer in milliseconds: fine buckets up to 50 ms (the half-load aim is p99 <= 20 ms).
LOOKUP_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25,
                  0.5, 1.0, 2.5)  # fmt: skip
LOOKUP_LATENCY = Histogram(
    "govbus_lookup_seconds",
    "Time from a lookup request to its answer (audit event acknowledged), per kind",
    ["kind"],
    buckets=LOOKUP_BUCKETS,
    registry=REGISTRY,
)
LOOKUP_AUDIT_LATENCY = Histogram(
    "govbus_lookup_audit_seconds",
    "Time from producing a lookup's audit event to the broker's acknowledgement (part of "
    "govbus_lookup_seconds: a lookup is answered only after it)",
    buckets=LOOKUP_BUCKETS,
    registry=REGISTRY,
)


HEALTH_PATHS = ("/healthz", "/health")
# What a process checks when asked whether it is healthy: None if it is, else the problem.
HealthCheck = Callable[[], str | None]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would flood the log."""


def _health_body(check: HealthCheck | None) -> tuple[str, bytes]:
    try:
        problem = check() if check is not None else None
    except Exception as exc:  # a failing check is an unhealthy answer, never a crash
        problem = f"{type(exc).__name__}: {exc}"
    if problem is None:
        return "200 OK", b'{"status": "ok"}\n'
    body = json.dumps({"status": "unhealthy", "problem": problem}, ensure_ascii=False)
    return "503 Service Unavailable", (body + "\n").encode("utf-8")


def serve(
    port: int, addr: str = "0.0.0.0", health: HealthCheck | None = None
) -> tuple[WSGIServer, threading.Thread]:
    """Expose REGISTRY at http://<addr>:<port>/metrics from a daemon thread (port 0: any free
    port, see ``server.server_port``); ``server.shutdown()`` stops it.

    ``/healthz`` (or ``/health``) answers ``200 {"status": "ok"}`` while the process serves and
    ``health`` (if given) finds no problem, else ``503`` with the problem: every long-running
    govbus process (exporter, stream apps, publish and consume with ``--metrics-port``) has it.
    """
    metrics_app = make_wsgi_app(REGISTRY)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in HEALTH_PATHS:
            status, body = _health_body(health)
            start_response(status, [("Content-Type", "application/json")])
            return [body]
        return metrics_app(environ, start_response)  # type: ignore[no-any-return]

    try:
        server = make_server(addr, port, app, ThreadingWSGIServer, handler_class=_Quiet)
    except OSError as exc:
        raise UserError(
            f"cannot serve metrics on {addr}:{port}: {exc.strerror or exc}; choose another "
            "port (--metrics-port, or metrics_port in the config)"
        ) from None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread
