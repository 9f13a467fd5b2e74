"""Metrics of the verification app, on the one registry (govbus.vocabulary.metrics.REGISTRY)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from govbus.vocabulary.metrics import REGISTRY

OBSERVATIONS_CHECKED = Counter(
    "govbus_observations_checked_total",
    "Holders' copies (observations) the verification app processed",
    ["resource"],
    registry=REGISTRY,
)
DETECTIONS = Counter(
    "govbus_verification_detections_total",
    "Disagreements the verification app detected (detect actions sent)",
    ["resource"],
    registry=REGISTRY,
)
SETTLEMENTS = Counter(
    "govbus_verification_settlements_total",
    "Detected disputes the verification app settled (values agree again, or record deleted)",
    ["resource"],
    registry=REGISTRY,
)
DETECTION_SECONDS = Histogram(
    "govbus_dispute_detection_seconds",
    "Time from an observation's event time to the detect action being acknowledged",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
REJECTED_EVENTS = Counter(
    "govbus_verification_rejected_events_total",
    "Events the verification app could not use (undecodable, not a catalogued holder)",
    ["topic"],
    registry=REGISTRY,
)
