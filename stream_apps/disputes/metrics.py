"""Metrics of the dispute app (article 19), on the one govbus registry.

``resource`` is the 政务信息资源代码; ``origin`` detected|filed; ``outcome`` confirmed|corrected|
rejected|settled (a detected dispute the verifier closed because the values agree again).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from govbus.vocabulary.metrics import REGISTRY

DISPUTES_OPENED = Counter(
    "govbus_disputes_opened",
    "Disputes opened (detected by the verifier or filed by a consumer department)",
    ["resource", "origin"],
    registry=REGISTRY,
)
DISPUTES_RESOLVED = Counter(
    "govbus_disputes_resolved",
    "Disputes closed: resolved by the provider (outcome) or settled by the verifier",
    ["resource", "outcome"],
    registry=REGISTRY,
)
DISPUTES_OPEN = Gauge(
    "govbus_disputes_open",
    "Disputes open or acknowledged now",
    ["resource"],
    registry=REGISTRY,
)
DISPUTES_OVERDUE = Counter(
    "govbus_disputes_overdue",
    "Disputes marked overdue (article 26(4) violation raised)",
    ["resource"],
    registry=REGISTRY,
)
ACTIONS_REJECTED = Counter(
    "govbus_dispute_actions_rejected",
    "Dispute actions refused by the rules, by acting principal and rule broken",
    ["actor", "rule"],
    registry=REGISTRY,
)
