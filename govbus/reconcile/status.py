"""The reconciler's last plan and apply, kept under the state dir for processes that did not run it.

``govbus plan`` and ``govbus apply`` set the gauges ``govbus_reconciler_drift`` and
``govbus_reconciler_last_apply_timestamp_seconds`` (reconcile/plan.py) in their own process,
which ends right after. So they also write ``<state_dir>/reconciler/status.json``::

    {"planned_at": 1767225600.0, "drift": {"topic": 0, "user": 1, "acl": 2},
     "last_apply_at": 1767225601.5}

and ``StatusCollector`` serves that file under the same metric names, read at every scrape
(``govbus exporter``). Recomputing a plan per scrape would ask the broker for every topic,
user and ACL. The collector is meant for a process that does not plan itself: in one that
does, plan.py's gauges already carry these names.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily, Metric

from govbus.reconcile.plan import Kind
from govbus.vocabulary.errors import UserError

__all__ = [
    "DRIFT_METRIC",
    "LAST_APPLY_METRIC",
    "ReconcilerStatus",
    "StatusCollector",
    "load_status",
    "record_plan",
    "status_path",
]

# The names of reconcile/plan.py's gauges (a test holds them equal); not imported from there:
# importing plan.py registers those gauges, which a process serving this file must not have.
DRIFT_METRIC = "govbus_reconciler_drift"
LAST_APPLY_METRIC = "govbus_reconciler_last_apply_timestamp_seconds"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconcilerStatus:
    planned_at: float  # Unix time of the last plan (apply plans first)
    drift: dict[str, int] = field(default_factory=dict)  # drift changes by kind in that plan
    last_apply_at: float | None = None  # Unix time the last apply finished


def status_path(state_dir: Path) -> Path:
    return state_dir / "reconciler" / "status.json"


def load_status(state_dir: Path) -> ReconcilerStatus | None:
    """The recorded status; None if nothing was recorded. ValueError if the file is damaged."""
    path = status_path(state_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ReconcilerStatus(
            float(data["planned_at"]),
            {str(k): int(v) for k, v in data["drift"].items()},
            None if data.get("last_apply_at") is None else float(data["last_apply_at"]),
        )
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(
            f"{path}: not a reconciler status file ({exc!r}); delete it, the next "
            "`govbus plan` or `govbus apply` writes it again"
        ) from None


def record_plan(
    state_dir: Path, drift: Mapping[Kind, int], *, applied: bool, now: float | None = None
) -> ReconcilerStatus:
    """Record a plan's drift counts and, with ``applied``, that it was applied (now).

    A plan that is not applied keeps the earlier apply time.
    """
    now = time.time() if now is None else now
    previous = None
    try:
        previous = load_status(state_dir)
    except ValueError as exc:
        log.warning("%s; writing a new one", exc)
    last_apply = now if applied else (previous.last_apply_at if previous else None)
    status = ReconcilerStatus(now, {str(kind): n for kind, n in drift.items()}, last_apply)
    path = status_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    text = json.dumps(
        {"planned_at": now, "drift": status.drift, "last_apply_at": last_apply}, sort_keys=True
    )
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, path)  # a scrape never reads a half-written file
    return status


class StatusCollector:
    """Serves the recorded status under plan.py's metric names (a prometheus Collector)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def collect(self) -> Iterator[Metric]:
        try:
            status = load_status(self.state_dir)
        except ValueError as exc:
            log.warning("%s", exc)  # a damaged file must not break the other metrics
            return
        if status is None:
            return
        drift = GaugeMetricFamily(
            DRIFT_METRIC,
            "Drift changes (deletes and alters) in the reconciler's last plan",
            labels=["kind"],
        )
        for kind, count in sorted(status.drift.items()):
            drift.add_metric([kind], count)
        yield drift
        if status.last_apply_at is not None:
            yield GaugeMetricFamily(
                LAST_APPLY_METRIC,
                "When the reconciler last finished applying a plan (Unix time)",
                value=status.last_apply_at,
            )
