"""The dispute lifecycle as pure rules (article 19): who may do what, and the next state.

A dispute is about one record (resource + one-data-one-source key), optionally one item of it.
It is *detected* by the verification app (a holder's copy differs from the provider's value)
or *filed* by a consumer department that doubts a record. The provider acknowledges it,
verifies, and resolves it as confirmed, corrected (naming its corrected record) or rejected.
A detected dispute is *settled* by the verifier when the values agree again.

    open ──ack──▶ acknowledged ──resolve──▶ resolved
      └──────────── settle (detected only) ──────────▶ settled

Who acted is proven by the topic the action came from (only that department may write its
action topic); the action's ``actor`` must name the same principal. Every refusal is a
``Rejection`` naming the action, the field and the rule broken.

At-least-once: an action already in the dispute's history (same action, same ``at``) changes
nothing (``apply`` returns None), and so does a detect for a dispute that is still open, or a
verifier's repeated settle: a verifier replaying after a crash neither reopens nor duplicates.

The deadline is ``workdays`` working days (default 5, article 19 "fast") after the day the
dispute was opened (China time; the opening day is not counted). An open or acknowledged
dispute whose due date has passed is marked overdue once (``mark_overdue``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.errors import UserError
from govbus.vocabulary.grants import Grant
from govbus.vocabulary.naming import NAMING, VERIFIER, Naming
from govbus.vocabulary.spec import CatalogSpec, Resource
from govbus.vocabulary.workdays import WorkdayCalendar

ACTIONS = ("detect", "settle", "file", "ack", "resolve")
OUTCOMES = ("confirmed", "corrected", "rejected")
RULES = ("exact", "text", "numeric", "date")
LIVE = ("open", "acknowledged")  # states in which a dispute counts as open
DEFAULT_WORKDAYS = 5

State = dict[str, Any]


class Rejection(UserError):
    """An action the rules refuse: which action, which field, which rule, and why."""

    def __init__(self, action: str, field: str, rule: str, message: str) -> None:
        super().__init__(f"{action}: field {field!r} breaks rule {rule}: {message}")
        self.action = action
        self.field = field
        self.rule = rule
        self.message = message

    def as_error(self) -> dict[str, str]:
        """The dead-letter form shared with producers' letters: item, rule, message."""
        return {"item": self.field, "rule": self.rule, "message": self.message}


def _digest(parts: Iterable[str | None]) -> str:
    joined = "|".join("" if p is None else p for p in parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:16]


def detected_dispute_id(
    resource_code: str,
    key: str,
    item: str | None,
    holder: str,
    observed_value: str | None,
    authoritative_value: str | None,
) -> str:
    """Deterministic: a replay of the same mismatch after a crash gives the same id."""
    return _digest((resource_code, key, item, holder, observed_value, authoritative_value))


def filed_dispute_id(resource_code: str, key: str, item: str | None, filer: str, at: str) -> str:
    return _digest((resource_code, key, item, filer, at))


def record_key(resource_code: str, key: str) -> str:
    """The routing key of everything about one record: its disputes and its status."""
    return f"{resource_code}|{key}"


def parse_time(value: Any, action: str, field: str) -> dt.datetime:
    if not isinstance(value, str):
        raise Rejection(action, field, "iso-time", "must be an ISO-8601 time with an offset")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise Rejection(action, field, "iso-time", f"{value!r} is not an ISO-8601 time") from None
    if parsed.tzinfo is None:
        raise Rejection(action, field, "iso-time", f"{value!r} has no UTC offset")
    return parsed


def _text(action: Mapping[str, Any], field: str, *, optional: bool = False) -> str | None:
    value = action.get(field)
    name = str(action.get("action"))
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise Rejection(name, field, "required", "must be a non-empty string")
    return value


@dataclass(frozen=True)
class Applied:
    """The dispute's new state and what changed, for events and metrics."""

    state: State
    opened: bool = False  # a new dispute (or a settled one reopened)
    closed: bool = False  # resolved or settled just now


class DisputeRules:
    """The rules for one catalog (and the share grants valid for it)."""

    def __init__(
        self,
        spec: CatalogSpec,
        *,
        grants: Iterable[Grant] = (),
        workdays: int = DEFAULT_WORKDAYS,
        calendar: WorkdayCalendar | None = None,
        naming: Naming = NAMING,
    ) -> None:
        self.spec = spec
        self.grants = tuple(grants)
        self.workdays = workdays
        self.calendar = calendar or WorkdayCalendar()
        self.verifier = naming.app_user(VERIFIER)  # the only actor that detects and settles

    # --- who ---------------------------------------------------------------------------------

    def resource(self, action: Mapping[str, Any]) -> Resource:
        name = str(action.get("action"))
        code = _text(action, "resource_code")
        resource = self.spec.resource(str(code))
        if resource is None:
            raise Rejection(name, "resource_code", "catalogued", f"{code} is not in the catalog")
        return resource

    def provider_id(self, resource: Resource) -> str:
        dept = self.spec.department(resource.provider)
        # The catalog's rules make every provider a registered department.
        return dept.id if dept else resource.provider

    def may_read(self, dept_id: str, resource: Resource, at: dt.datetime) -> bool:
        """Article 19 doubts come from those who use the data: who may read the resource."""
        dept = self.spec.department_by_id(dept_id)
        if dept is None:
            return False
        if dept.code == resource.provider or resource.share_type == "unconditional":
            return True
        if resource.share_type == "none":
            return False
        return any(
            g.department_code == dept.code and g.resource_code == resource.code and g.valid_at(at)
            for g in self.grants
        )

    # --- what --------------------------------------------------------------------------------

    def check(self, action: Mapping[str, Any], proven_actor: str) -> tuple[Resource, dt.datetime]:
        """Checks everything that does not depend on the dispute's current state."""
        name = action.get("action")
        if name not in ACTIONS:
            raise Rejection(str(name), "action", "known-action", f"must be one of {ACTIONS}")
        _text(action, "dispute_id")
        _text(action, "key")
        resource = self.resource(action)
        item = action.get("item")
        if item is not None and (not isinstance(item, str) or resource.item(item) is None):
            raise Rejection(
                name, "item", "catalogued", f"{item!r} is not an item of resource {resource.code}"
            )
        if action.get("actor") != proven_actor:
            raise Rejection(
                name, "actor", "actor-is-sender",
                f"says {action.get('actor')!r} but came from the action topic of "
                f"{proven_actor!r}; a department acts only through its own topic",
            )  # fmt: skip
        at = parse_time(action.get("at"), name, "at")
        provider = self.provider_id(resource)
        if name in ("detect", "settle") and proven_actor != self.verifier:
            raise Rejection(
                name, "actor", "verifier-only",
                f"only the verification app ({self.verifier}) detects and settles disputes",
            )  # fmt: skip
        if name in ("ack", "resolve") and proven_actor != provider:
            raise Rejection(
                name, "actor", "provider-only",
                f"only the provider of {resource.code} ({provider}) may {name} its disputes",
            )  # fmt: skip
        if name == "file":
            if not self.may_read(proven_actor, resource, at):
                raise Rejection(
                    name, "actor", "may-read",
                    f"{proven_actor} may not read {resource.code} ({resource.share_type}); only "
                    "departments that may read a resource file doubts about it",
                )  # fmt: skip
            _text(action, "reason")
        if name == "settle":
            _text(action, "reason")
        if name == "detect":
            self._check_detect(action, resource)
        if name == "resolve":
            self._check_resolve(action)
        return resource, at

    def _check_detect(self, action: Mapping[str, Any], resource: Resource) -> None:
        auth, observed = action.get("authoritative"), action.get("observed")
        if not isinstance(auth, Mapping) or auth.get("provider") != resource.provider:
            raise Rejection(
                "detect", "authoritative.provider", "provider",
                f"must be the provider of {resource.code} ({resource.provider})",
            )  # fmt: skip
        holders = {h.department for h in resource.holders}
        if not isinstance(observed, Mapping) or observed.get("holder") not in holders:
            raise Rejection(
                "detect", "observed.holder", "catalogued-holder",
                f"must be a holder the catalog lists for {resource.code}: {sorted(holders)}",
            )  # fmt: skip
        if action.get("rule") not in RULES:
            raise Rejection("detect", "rule", "known-rule", f"must be one of {RULES}")

    def _check_resolve(self, action: Mapping[str, Any]) -> None:
        outcome = action.get("outcome")
        if outcome not in OUTCOMES:
            raise Rejection("resolve", "outcome", "known-outcome", f"must be one of {OUTCOMES}")
        _text(action, "note")
        record = action.get("corrected_record")
        if outcome != "corrected":
            if record is not None:
                raise Rejection(
                    "resolve", "corrected_record", "only-when-corrected",
                    f"a {outcome} dispute names no corrected record; leave it null",
                )  # fmt: skip
            return
        if not (
            isinstance(record, Mapping)
            and isinstance(record.get("topic"), str)
            and isinstance(record.get("partition"), int)
            and isinstance(record.get("offset"), int)
        ):
            raise Rejection(
                "resolve", "corrected_record", "corrected-needs-record",
                "outcome corrected needs the provider's corrected record "
                '{"topic": str, "partition": int, "offset": int, "trace_id": str|null}',
            )  # fmt: skip

    # --- the state machine -------------------------------------------------------------------

    def apply(
        self, current: Mapping[str, Any] | None, action: Mapping[str, Any], proven_actor: str
    ) -> Applied | None:
        """The dispute after ``action``; None when it changes nothing (a duplicate)."""
        resource, at = self.check(action, proven_actor)
        name = str(action["action"])
        if current is not None and self._same_record(current, action) is False:
            raise Rejection(
                name, "dispute_id", "same-record",
                f"dispute {action['dispute_id']} is about {current['resource_code']} key "
                f"{current['key']}, not {action['resource_code']} key {action['key']}",
            )  # fmt: skip
        if current is not None and _seen(current, name, str(action["at"])):
            return None
        if name in ("detect", "file"):
            return self._open(current, action, resource, at, proven_actor)
        if current is None:
            raise Rejection(
                name, "dispute_id", "known-dispute",
                f"no dispute {action['dispute_id']} on {resource.code} key {action['key']}",
            )  # fmt: skip
        state = current["state"]
        if name == "settle":
            if state == "settled":
                return None  # the verifier saw agreement again (e.g. a replay)
            if current["origin"] != "detected" or state not in LIVE:
                raise Rejection(
                    name, "dispute_id", "settle-open-detected",
                    f"only an open detected dispute can be settled; this one is "
                    f"{current['origin']} and {state}",
                )  # fmt: skip
            return Applied(self._next(current, action, "settled", reason=action["reason"]),
                           closed=True)  # fmt: skip
        if name == "ack":
            if state != "open":
                raise Rejection(
                    name, "dispute_id", "ack-when-open",
                    f"dispute {current['dispute_id']} is {state}; only an open one is "
                    "acknowledged",
                )  # fmt: skip
            return Applied(self._next(current, action, "acknowledged"))
        # resolve
        if state != "acknowledged":
            hint = " (acknowledge it first)" if state == "open" else ""
            raise Rejection(
                name, "dispute_id", "resolve-when-acknowledged",
                f"dispute {current['dispute_id']} is {state}; only an acknowledged one is "
                f"resolved{hint}",
            )  # fmt: skip
        return Applied(
            self._next(
                current, action, "resolved",
                outcome=action["outcome"], note=action["note"],
                corrected_record=action.get("corrected_record"),
            ),
            closed=True,
        )  # fmt: skip

    def _open(
        self,
        current: Mapping[str, Any] | None,
        action: Mapping[str, Any],
        resource: Resource,
        at: dt.datetime,
        actor: str,
    ) -> Applied | None:
        name = str(action["action"])
        if current is not None:
            if name == "file":
                raise Rejection(
                    name, "dispute_id", "new-id",
                    f"dispute {action['dispute_id']} exists already; file with a new id",
                )  # fmt: skip
            # The same mismatch again: still open, or decided by the provider, changes nothing;
            # after a settle (values agreed) it is a new occurrence and reopens.
            settled_at = parse_time(current["updated_at"], name, "at")
            if current["state"] != "settled" or at <= settled_at:
                return None
        due = self.calendar.add_workdays(at.astimezone(CHINA_TZ).date(), self.workdays)
        detected = name == "detect"
        state: State = {
            "dispute_id": action["dispute_id"],
            "resource_code": resource.code,
            "key": action["key"],
            "item": action.get("item"),
            "origin": "detected" if detected else "filed",
            "state": "open",
            "provider": resource.provider,
            "holder": action["observed"]["holder"] if detected else None,
            "filed_by": None if detected else actor,
            "authoritative": dict(action["authoritative"]) if detected else None,
            "observed": dict(action["observed"]) if detected else None,
            "rule": action["rule"] if detected else None,
            "reason": None if detected else action["reason"],
            "evidence": None if detected else action.get("evidence"),
            "outcome": None,
            "note": None,
            "corrected_record": None,
            "opened_at": action["at"],
            "updated_at": action["at"],
            "due": due.due.isoformat(),
            "due_certain": due.certain,
            "overdue": False,
            "version": (current["version"] if current else 0) + 1,
            "history": [
                *(current["history"] if current else ()),
                {"action": name, "actor": actor, "at": action["at"]},
            ],
        }
        return Applied(state, opened=True)

    @staticmethod
    def _same_record(current: Mapping[str, Any], action: Mapping[str, Any]) -> bool:
        return bool(
            current["resource_code"] == action["resource_code"] and current["key"] == action["key"]
        )

    @staticmethod
    def _next(
        current: Mapping[str, Any], action: Mapping[str, Any], state: str, **changes: Any
    ) -> State:
        entry = {"action": action["action"], "actor": action["actor"], "at": action["at"]}
        return {
            **current,
            **changes,
            "state": state,
            "updated_at": action["at"],
            "version": current["version"] + 1,
            "history": [*current["history"], entry],
        }

    # --- deadlines ---------------------------------------------------------------------------

    @staticmethod
    def is_overdue(current: Mapping[str, Any], now: dt.datetime) -> bool:
        """Open or acknowledged, not yet marked, and the due day is over (China time)."""
        today = now.astimezone(CHINA_TZ).date()
        return (
            current["state"] in LIVE
            and not current["overdue"]
            and today > dt.date.fromisoformat(current["due"])
        )

    def mark_overdue(
        self, current: Mapping[str, Any], now: dt.datetime, actor: str
    ) -> State | None:
        if not self.is_overdue(current, now):
            return None
        at = now.astimezone(CHINA_TZ).isoformat()
        return {
            **current,
            "overdue": True,
            "updated_at": at,
            "version": current["version"] + 1,
            "history": [*current["history"], {"action": "overdue", "actor": actor, "at": at}],
        }


def _seen(current: Mapping[str, Any], action: str, at: str) -> bool:
    return any(h["action"] == action and h["at"] == at for h in current["history"])


def violation(state: Mapping[str, Any], department: str, at: dt.datetime) -> tuple[str, State]:
    """Article 26(4): a dispute not verified and answered in time (key, value)."""
    subject = str(state["dispute_id"])
    value: State = {
        "kind": "inconsistent-data",
        "article": "26(4)",
        "department": department,
        "resource_code": state["resource_code"],
        "subject": subject,
        "at": at.astimezone(CHINA_TZ).isoformat(),
        "detail": (
            f"dispute {subject} ({state['origin']}) on {state['resource_code']} key "
            f"{state['key']} is {state['state']} past its due day {state['due']} "
            "(article 19: verify doubtful data fast; article 26(4))"
        ),
    }
    return f"inconsistent-data:{subject}", value
