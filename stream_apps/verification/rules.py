"""Multi-source verification (一数一源、多元校核, article 4(3)) as pure logic: no Kafka here.

The verification app (stream_apps/verification.py) keeps one state per record — a resource's
record identified by its one-data-one-source key — and hands each event with that state to
``Verifier``, which returns the dispute actions to send and the new state to keep:

- an authoritative record (the provider's, from ``gov.<code>``) replaces the authoritative
  values; a delete (tombstone) drops them and settles the record's open disputes;
- an observation (a holder's copy, from its own ``verify.by.<department id>``) replaces that
  holder's copy.

After either, every holder copy is compared item by item with the authoritative value under the
item's catalogued rule (stream_apps/compare.py). A disagreement opens a dispute ("detect"
action) unless the same one is open already; an agreement settles the open one ("settle").
An observation that arrives before its authoritative record is kept and checked when the
record arrives, so arrival order does not matter.

A detected dispute's id is deterministic (``dispute_id``), so replaying events after a crash
yields the same ids, and the dispute app deduplicates by id.

State (JSON-ready, kept in a Faust table)::

    {"resource_code": str, "key": str,
     "auth": {"provider": code, "event_time": str|None, "values": {item: str|None}} | None,
     "obs": {holder code: {"event_time": str|None, "values": {item: str|None}}},
     "open": {"<item>|<holder code>": dispute id}}
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from govbus.vocabulary.naming import NAMING, VERIFIER, Naming
from govbus.vocabulary.spec import CatalogSpec, InfoItem, Resource
from stream_apps.verification.compare import compare

__all__ = [
    "Authoritative",
    "Observation",
    "Outcome",
    "Verifier",
    "as_text",
    "dispute_id",
    "state_key",
]

State = dict[str, Any]


def as_text(value: object) -> str | None:
    """An item value as the text the verifier keeps and compares (None stays None)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, float | int | decimal.Decimal):
        return str(value)
    return str(value)


def dispute_id(
    resource_code: str,
    key: str,
    item: str,
    holder: str,
    observed: str | None,
    authoritative: str | None,
) -> str:
    """First 16 hex digits of sha256 over the dispute's identity (a missing value is "")."""
    parts = [resource_code, key, item, holder, observed or "", authoritative or ""]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def state_key(resource_code: str, key: str) -> str:
    return f"{resource_code}\n{key}"  # resource codes hold no newline


@dataclass(frozen=True)
class Authoritative:
    """The provider's record; ``values`` None for a delete (tombstone)."""

    resource_code: str
    key: str
    provider: str
    event_time: str | None
    values: Mapping[str, Any] | None


@dataclass(frozen=True)
class Observation:
    """A holder's copy of some of a record's items."""

    resource_code: str
    key: str
    holder: str  # department code
    event_time: str | None
    values: Mapping[str, Any]


@dataclass
class Outcome:
    """What one event gives: actions to send first, then the state to keep (None: forget)."""

    actions: list[dict[str, Any]] = field(default_factory=list)
    state: State | None = None


@dataclass(frozen=True)
class _ResourcePlan:
    resource: Resource
    items: Mapping[str, InfoItem]  # every compared item
    holders: Mapping[str, tuple[str, ...]]  # holder code -> the items compared for it


def _plans(spec: CatalogSpec) -> dict[str, _ResourcePlan]:
    out = {}
    for resource in spec.resources:
        if not resource.holders:
            continue
        key_items = set(resource.key.items)
        holders: dict[str, tuple[str, ...]] = {}
        for holder in resource.holders:
            # Key items identify the record: they agree by construction of the key.
            held = tuple(
                code for code in holder.items if resource.item(code) and code not in key_items
            )
            holders[holder.department] = holders.get(holder.department, ()) + held
        items = {
            code: i for codes in holders.values() for code in codes if (i := resource.item(code))
        }
        out[resource.code] = _ResourcePlan(resource, items, holders)
    return out


class Verifier:
    """Turns an event and its record's current state into actions and the next state."""

    def __init__(
        self,
        spec: CatalogSpec,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        naming: Naming = NAMING,
    ) -> None:
        self.plans = _plans(spec)
        self.clock = clock
        self.actor = naming.app_user(VERIFIER)  # the actor of detect/settle actions

    def verifies(self, resource_code: str) -> bool:
        return resource_code in self.plans

    def holder_items(self, resource_code: str, holder: str) -> tuple[str, ...] | None:
        """The items compared for ``holder``; None if it is no catalogued holder."""
        plan = self.plans.get(resource_code)
        return None if plan is None else plan.holders.get(holder)

    # --- events ---------------------------------------------------------------------------------

    def on_authoritative(self, state: State | None, record: Authoritative) -> Outcome:
        plan = self.plans[record.resource_code]
        state = _copy(state, record.resource_code, record.key)
        out = Outcome(state=state)
        if record.values is None:  # deleted: nothing left to disagree with
            state["auth"] = None
            for slot, did in sorted(state["open"].items()):
                item = slot.split("|", 1)[0]
                out.actions.append(
                    self._settle(state, did, item, "the provider deleted the record")
                )
            state["open"] = {}
            if not state["obs"]:
                out.state = None
            return out
        state["auth"] = {
            "provider": record.provider,
            "event_time": record.event_time,
            "values": {code: as_text(record.values.get(code)) for code in plan.items},
        }
        when = record.event_time or "unknown time"
        for holder in sorted(state["obs"]):
            out.actions += self._check(
                plan, state, holder, f"the provider's record of {when} agrees with the copy"
            )
        return out

    def on_observation(self, state: State | None, obs: Observation) -> Outcome:
        plan = self.plans[obs.resource_code]
        held = plan.holders.get(obs.holder)
        if held is None:
            raise ValueError(
                f"resource {obs.resource_code}: department {obs.holder} is not a catalogued "
                "holder of it; its observation is ignored"
            )
        state = _copy(state, obs.resource_code, obs.key)
        state["obs"][obs.holder] = {
            "event_time": obs.event_time,
            "values": {c: as_text(obs.values[c]) for c in held if c in obs.values},
        }
        when = obs.event_time or "unknown time"
        reason = f"{obs.holder}'s copy of {when} agrees with the provider's record"
        return Outcome(self._check(plan, state, obs.holder, reason), state)

    # --- comparison -----------------------------------------------------------------------------

    def _check(
        self, plan: _ResourcePlan, state: State, holder: str, agree_reason: str
    ) -> list[dict[str, Any]]:
        auth = state["auth"]
        if auth is None:  # the authoritative record has not arrived: check when it does
            return []
        copy = state["obs"][holder]
        actions = []
        for code in plan.holders[holder]:
            if code not in copy["values"]:
                continue  # the holder did not send this item
            item = plan.items[code]
            a, o = auth["values"].get(code), copy["values"][code]
            slot = f"{code}|{holder}"
            open_id = state["open"].get(slot)
            if compare(item.compare, a, o, item.tolerance):
                if open_id:
                    actions.append(self._settle(state, open_id, code, agree_reason))
                    del state["open"][slot]
                continue
            did = dispute_id(state["resource_code"], state["key"], code, holder, o, a)
            if did == open_id:
                continue  # the same disagreement is open already
            if open_id:
                reason = f"superseded by dispute {did}: the values changed and still disagree"
                actions.append(self._settle(state, open_id, code, reason))
            actions.append(self._detect(state, did, item, holder, auth, copy))
            state["open"][slot] = did
        return actions

    def _base(self, action: str, state: State, did: str, item: str) -> dict[str, Any]:
        return {
            "action": action,
            "dispute_id": did,
            "resource_code": state["resource_code"],
            "key": state["key"],
            "item": item,
            "actor": self.actor,
            "at": self.clock().isoformat(),
        }

    def _detect(
        self,
        state: State,
        did: str,
        item: InfoItem,
        holder: str,
        auth: Mapping[str, Any],
        copy: Mapping[str, Any],
    ) -> dict[str, Any]:
        return {
            **self._base("detect", state, did, item.code),
            "authoritative": {
                "provider": auth["provider"],
                "value": auth["values"].get(item.code),
                "event_time": auth["event_time"],
            },
            "observed": {
                "holder": holder,
                "value": copy["values"][item.code],
                "event_time": copy["event_time"],
            },
            "rule": item.compare,
        }

    def _settle(self, state: State, did: str, item: str, reason: str) -> dict[str, Any]:
        return {**self._base("settle", state, did, item), "reason": reason}


def _copy(state: State | None, resource_code: str, key: str) -> State:
    if state is None:
        return {"resource_code": resource_code, "key": key, "auth": None, "obs": {}, "open": {}}
    return {**state, "obs": dict(state["obs"]), "open": dict(state["open"])}
