"""The federation's metrics, declared once (the runner sets them; the exporter of the process
that runs ``govbus federation run --metrics-port`` serves them)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from govbus.vocabulary.metrics import REGISTRY

LAG_RECORDS = Gauge(
    "govbus_federation_lag_records",
    "Records on the source topic not yet on the target's copy, per flow and source topic",
    ["flow", "topic"],
    registry=REGISTRY,
)
LAG_SECONDS = Gauge(
    "govbus_federation_lag_seconds",
    "Age of the oldest source record not yet on the target's copy (0 when caught up)",
    ["flow", "topic"],
    registry=REGISTRY,
)
FLOW_UP = Gauge(
    "govbus_federation_flow_up",
    "1 while the flow's MirrorMaker 2 process runs, 0 while it is down or restarting",
    ["flow"],
    registry=REGISTRY,
)
MIRROR_RESTARTS = Counter(
    "govbus_federation_mirror_restarts",
    "MirrorMaker 2 processes started again after they exited on their own",
    ["flow"],
    registry=REGISTRY,
)
