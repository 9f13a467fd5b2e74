"""The disputes SDK: a department files, acknowledges and resolves disputes, and reads them.

Actions are produced to the department's own action topic (``disputes.actions.<id>``), keyed
by dispute id; the dispute app applies them. Before sending, the same rules the app applies
(``stream_apps.disputes.rules``) are checked here against the catalog and the dispute's current
state, so a mistake is refused at once with the field and rule named, instead of only landing
in the department's dead-letter topic later.

Reading folds the compacted dispute topics (``disputes.<resource>``) the principal may read:
the newest version per dispute id wins (duplicates after an app restart carry the same id and
version).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, TopicPartition

from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.errors import UserError
from govbus.vocabulary.naming import DEFAULT_OPERATOR
from govbus.vocabulary.session import DepartmentSession
from govbus.vocabulary.spec import Resource
from stream_apps.disputes import rules as dr
from stream_apps.disputes.topics import DisputeTopics, readable_resources

_POLL = 0.5
Dispute = dict[str, Any]


class DisputeError(UserError, RuntimeError):
    """A dispute action is refused or a dispute cannot be read; the message says what to do."""


def fold(states: Iterable[Mapping[str, Any]]) -> dict[str, Dispute]:
    """Dispute id → its newest state (highest version)."""
    out: dict[str, Dispute] = {}
    for state in states:
        seen = out.get(state["dispute_id"])
        if seen is None or state["version"] > seen["version"]:
            out[state["dispute_id"]] = dict(state)
    return out


class DisputeClient:
    """Disputes as one department (its principal) sees and acts on them."""

    def __init__(self, session: DepartmentSession, *, operator: str = DEFAULT_OPERATOR) -> None:
        """``operator``: the data stewards' department id (they read every dispute). The
        session's grants decide which conditional resources the department may dispute."""
        session.department(DisputeError, "filing or answering disputes")
        self.session = session
        self.department_id = session.department_id
        self.spec = session.spec
        self.operator = operator
        self.topics = DisputeTopics(session.naming)
        self.rules = dr.DisputeRules(session.spec, grants=session.grants, naming=session.naming)

    # --- acting ------------------------------------------------------------------------------

    def file(
        self,
        resource_code: str,
        key: str,
        reason: str,
        *,
        item: str | None = None,
        evidence: str | None = None,
        at: dt.datetime | None = None,
    ) -> str:
        """File a doubt about a record (article 19); returns the new dispute's id."""
        when = _iso(at)
        action = {
            "action": "file",
            "dispute_id": dr.filed_dispute_id(resource_code, key, item, self.department_id, when),
            "resource_code": resource_code,
            "key": key,
            "item": item,
            "actor": self.department_id,
            "at": when,
            "reason": reason,
            "evidence": evidence,
        }
        self._send(None, action)
        return str(action["dispute_id"])

    def ack(self, dispute_id: str, *, at: dt.datetime | None = None) -> Dispute:
        """The provider acknowledges a dispute: it is verifying."""
        current = self.get(dispute_id)
        return self._send(current, self._action("ack", current, at))

    def resolve(
        self,
        dispute_id: str,
        outcome: str,
        note: str,
        *,
        corrected_record: Mapping[str, Any] | None = None,
        at: dt.datetime | None = None,
    ) -> Dispute:
        """The provider's answer: confirmed, corrected (naming its corrected record), rejected."""
        current = self.get(dispute_id)
        action = self._action("resolve", current, at)
        action.update(
            outcome=outcome,
            note=note,
            corrected_record=dict(corrected_record) if corrected_record else None,
        )
        return self._send(current, action)

    def _action(self, name: str, current: Mapping[str, Any], at: dt.datetime | None) -> Dispute:
        return {
            "action": name,
            "dispute_id": current["dispute_id"],
            "resource_code": current["resource_code"],
            "key": current["key"],
            "item": current["item"],
            "actor": self.department_id,
            "at": _iso(at),
        }

    def _send(self, current: Mapping[str, Any] | None, action: Dispute) -> Dispute:
        """Check the action as the app will, then produce it; returns the action."""
        try:
            self.rules.apply(current, action, self.department_id)
        except dr.Rejection as exc:
            raise DisputeError(
                f"dispute {action['dispute_id']} ({action['resource_code']} key "
                f"{action['key']}): {self.department_id} cannot {action['action']}: {exc}"
            ) from None
        topic = self.topics.actions(self.department_id)
        producer = self.session.producer()
        value = json.dumps(action, ensure_ascii=False).encode()
        reason = kafka_clients.produce_and_wait(
            producer, topic, str(action["dispute_id"]).encode(), value
        )
        if reason is not None:
            raise DisputeError(
                f"{action['action']} of dispute {action['dispute_id']} not written to {topic}: "
                f"{reason}; the reconciler grants each department WRITE on its own action topic "
                "(run `govbus apply`)"
            )
        return action

    # --- reading -----------------------------------------------------------------------------

    def readable(self, resource_code: str | None = None) -> list[Resource]:
        resources = readable_resources(self.spec, self.department_id, self.operator)
        if resource_code is None:
            return resources
        chosen = [r for r in resources if r.code == resource_code]
        if not chosen:
            raise DisputeError(
                f"{self.department_id} may not read the disputes of {resource_code}: only its "
                "provider, the holders the catalog lists and the data stewards "
                f"({self.operator}) may; use --as with one of them"
            )
        return chosen

    def disputes(self, resource_code: str | None = None) -> dict[str, Dispute]:
        """Every dispute the department may read (of one resource), newest state each."""
        names = [self.topics.disputes(r.code) for r in self.readable(resource_code)]
        consumer = self._consumer()
        try:
            return fold(_read_to_end(consumer, names, self.department_id))
        finally:
            consumer.close()

    def get(self, dispute_id: str) -> Dispute:
        found = self.disputes().get(dispute_id)
        if found is None:
            raise DisputeError(
                f"no dispute {dispute_id} among those {self.department_id} may read (disputes "
                "of resources it provides or holds; data stewards read all); check the id with "
                "`govbus disputes list`"
            )
        return found

    def watch(
        self,
        resource_code: str | None = None,
        *,
        from_beginning: bool = False,
        stop: Callable[[], bool] = lambda: False,
    ) -> Iterator[Dispute]:
        """Each new dispute version as it is published, until ``stop()``; deduplicated."""
        names = [self.topics.disputes(r.code) for r in self.readable(resource_code)]
        consumer = self._consumer()
        seen: set[tuple[str, int]] = set()
        try:
            start = OFFSET_BEGINNING if from_beginning else OFFSET_END
            consumer.assign(_partitions(consumer, names, self.department_id, start))
            while not stop():
                msg = consumer.poll(_POLL)
                if msg is None:
                    continue
                state = _state(msg, self.department_id)
                if state is None:
                    continue
                mark = (state["dispute_id"], state["version"])
                if mark not in seen:
                    seen.add(mark)
                    yield state
        finally:
            consumer.close()

    def _consumer(self) -> Consumer:
        # Partitions are assigned, never subscribed, and no offset is committed: the group id
        # (in the department's own prefix) is only what the client library requires.
        return self.session.consumer("disputes", **{"enable.partition.eof": True})


def _iso(at: dt.datetime | None) -> str:
    return (at or dt.datetime.now(CHINA_TZ)).astimezone(CHINA_TZ).isoformat()


def _partitions(
    consumer: Consumer, topics: list[str], who: str, offset: int
) -> list[TopicPartition]:
    out: list[TopicPartition] = []
    for name in topics:
        meta = consumer.list_topics(name, timeout=10).topics.get(name)
        err = meta.error if meta is not None else None
        if meta is None or err is not None or not meta.partitions:
            reason = err.str() if err is not None else "no partitions"
            raise DisputeError(
                f"{who} cannot read {name}: {reason}; the reconciler creates the dispute topics "
                "and grants READ to the resource's provider, holders and the data stewards "
                "(run `govbus apply`)"
            )
        out += [TopicPartition(name, p, offset) for p in sorted(meta.partitions)]
    return out


def _read_to_end(consumer: Consumer, topics: list[str], who: str) -> list[Dispute]:
    """Every state on ``topics`` up to their ends as of now."""
    parts = _partitions(consumer, topics, who, OFFSET_BEGINNING)
    remaining = set()
    for tp in parts:
        low, high = consumer.get_watermark_offsets(tp, timeout=10)
        if high > low:
            remaining.add((tp.topic, tp.partition))
    consumer.assign(parts)
    states: list[Dispute] = []
    while remaining:
        msg = consumer.poll(_POLL)
        if msg is None:
            continue
        err = msg.error()
        if err is not None and err.code() == KafkaError._PARTITION_EOF:
            remaining.discard((msg.topic(), msg.partition()))
            continue
        state = _state(msg, who)
        if state is not None:
            states.append(state)
    return states


def _state(msg: Any, who: str) -> Dispute | None:
    err = msg.error()
    if err is not None:
        if err.code() == KafkaError._PARTITION_EOF:
            return None
        raise DisputeError(f"{who} reading {msg.topic()}: {err.str()}")
    if msg.value() is None:
        return None
    state: Dispute = json.loads(msg.value())
    return state
