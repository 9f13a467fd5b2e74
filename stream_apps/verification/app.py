"""The verification app "govbus-verifier": holders' copies checked against the provider's record.

Topics (named by the context's ``naming``, which namespaces them all):

- reads ``gov.<code>`` (the provider's records, Avro single-object encoded,
  govbus/vocabulary/wire.py) of every resource the catalog lists holders for, and
  ``verify.by.<department id>`` (one holder's copies of every resource it holds, JSON,
  producers/observe.py) of every holder department. Only that department may write its topic
  (its WRITE ACL), so the holder of an observation is the topic's department: a record that
  claims another holder, or a resource the department does not hold, is refused. All are keyed
  by the one-data-one-source key and have the same partition count, and every govbus producer
  uses the murmur2 partitioner, so a record and its observations meet in the same partition —
  the same task and the same table partition;
- writes detect/settle actions to ``disputes.actions.govbus-verifier`` (its own action topic),
  keyed by dispute id, for the dispute app (issue 6 shared event format 1);
- keeps one table, ``verification``: per record (resource code + key) the authoritative
  values, the latest copy of each holder and the open detected disputes (stream_apps/
  verification/rules.py documents it). Its changelog restores it after a restart.

A record that cannot be used (not Avro or not JSON, another resource's, a holder claimed that
is not the topic's) is set aside on ``govbus.quarantine`` (govbus/vocabulary/quarantine.py),
counted against whoever wrote it (the provider, or the holder), and the batch goes on.

Each batch of events is folded through ``Verifier``; the batch's actions are sent and
*acknowledged* before the table is written, so a crash can only repeat an action (same
dispute id: the dispute app deduplicates), never record a dispute as open that was not sent.
Faust flushes the producer before it commits offsets (at-least-once), every
``broker_commit_interval`` (1 s, stream_apps/runtime.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import faust
from faust.types import EventT

from govbus.vocabulary import wire
from govbus.vocabulary.acls import producer_acls
from govbus.vocabulary.config import Settings
from govbus.vocabulary.naming import VERIFIER
from govbus.vocabulary.quarantine import QuarantineEntry
from govbus.vocabulary.spec import CatalogSpec
from govbus.vocabulary.topology import (
    StreamApp,
    TopicSpec,
    quarantine_topic_spec,
    unknown_department,
)
from stream_apps.registry import DEFAULT_CONTEXT, AppContext
from stream_apps.runtime import make_app
from stream_apps.verification import metrics
from stream_apps.verification.rules import (
    Authoritative,
    Observation,
    State,
    Verifier,
    state_key,
)

__all__ = ["TABLE", "build", "needs"]

TABLE = "verification"
LOG = logging.getLogger("govbus.verifier")
_DAY_MS = 24 * 3600 * 1000


def needs(spec: CatalogSpec, context: AppContext = DEFAULT_CONTEXT) -> StreamApp:
    """The verifier's user, topics, tables and ACLs (holders WRITE their observation topics)."""
    naming, partitions, replication = context.naming, context.partitions, context.replication
    app_id = naming.app_user(VERIFIER)
    reads: list[str] = []
    topics: dict[str, TopicSpec] = {}
    acls: dict[Any, str] = {}
    holders: dict[str, list[str]] = {}  # holder department id -> names of what it holds
    for resource in spec.resources:
        if not resource.holders:
            continue
        reads.append(naming.resource_topic(resource.code))
        for holder in resource.holders:
            dept = spec.department(holder.department)
            if dept is None:
                raise unknown_department(resource, "holder", holder.department)
            holders.setdefault(dept.id, []).append(resource.name)
    for dept_id, held in sorted(holders.items()):
        obs = naming.holder_observation_topic(dept_id)
        reads.append(obs)
        topics[obs] = TopicSpec(
            partitions,
            replication,
            {"cleanup.policy": "delete", "retention.ms": str(7 * _DAY_MS)},
            f"{dept_id}'s copies of {len(held)} resource(s) for verification, 7 days",
        )
        for acl in producer_acls(dept_id, obs):
            acls[acl] = (
                f"{dept_id} holds items of {', '.join(held[:3])}{' …' if len(held) > 3 else ''} "
                "and sends its copies (only it writes here)"
            )
    actions = naming.dispute_actions_topic(app_id)  # the app acts as its own user
    topics[actions] = TopicSpec(
        partitions,
        replication,
        {"cleanup.policy": "delete", "retention.ms": "-1"},
        "disputes the verification app detects and settles; kept as the audit trail",
    )
    topics[naming.quarantine_topic] = quarantine_topic_spec(partitions, replication)
    return StreamApp(
        app_id=app_id,
        user=app_id,
        purpose="multi-source verification: compares holders' copies with the provider's record",
        reads=tuple(reads),
        writes=(actions, naming.quarantine_topic),
        tables=(TABLE,),
        topics=topics,
        acls=acls,
    )


class _Worker:
    """The agent's body: routes, decodes, folds a batch through the Verifier, then writes."""

    def __init__(
        self,
        spec: CatalogSpec,
        routes: dict[str, tuple[str, str]],
        table: Any,
        actions: Any,
        clock: Callable[[], dt.datetime],
        context: AppContext,
        quarantine: Any = None,
    ) -> None:
        self.verifier = Verifier(spec, clock=clock, naming=context.naming)
        self.schemas = wire.SchemaCatalog.build(spec)
        self.routes = routes  # topic -> ("auth", resource code) | ("obs", holder code)
        self.table = table
        self.actions = actions
        self.clock = clock
        self.quarantine = quarantine  # the quarantine topic (Faust), None in unit tests
        self.app_id = context.naming.app_user(VERIFIER)

    async def process(self, events: Sequence[EventT[Any]]) -> None:
        staged: dict[str, tuple[int, State | None]] = {}
        actions: list[dict[str, Any]] = []
        for event in events:
            msg = event.message
            kind, code = self.routes[msg.topic]
            try:
                key = bytes(msg.key).decode() if msg.key is not None else None
                if key is None:
                    raise ValueError("the message has no key (the record key is required)")
                if kind == "auth":
                    skey = state_key(code, key)
                    state = staged[skey][1] if skey in staged else self.table.data.get(skey)
                    outcome = self.verifier.on_authoritative(
                        state, self._authoritative(code, key, msg.value)
                    )
                else:
                    obs = self._observation(code, key, msg.value)
                    skey = state_key(obs.resource_code, key)
                    state = staged[skey][1] if skey in staged else self.table.data.get(skey)
                    outcome = self.verifier.on_observation(state, obs)
                    metrics.OBSERVATIONS_CHECKED.labels(obs.resource_code).inc()
            except (ValueError, KeyError, TypeError, EOFError) as exc:
                metrics.REJECTED_EVENTS.labels(msg.topic).inc()
                LOG.warning(
                    "quarantined %s partition %s offset %s: %s",
                    msg.topic,
                    msg.partition,
                    msg.offset,
                    exc,
                )
                await self._quarantine(msg, kind, code, exc)
                continue
            staged[skey] = (msg.partition, outcome.state)
            actions += outcome.actions
        await self._send(actions)
        # Straight to the producer, not through Faust's send_soon buffer (send_changelog):
        # that buffer sends one message at a time and lags far behind a batch's writes.
        changelog = self.table.changelog_topic
        for skey, (partition, state) in staged.items():
            if state is None:
                self.table.data.pop(skey, None)
            else:
                self.table.data[skey] = state
            await changelog.send(
                key=skey,
                value=state,
                partition=partition,
                key_serializer="json",
                value_serializer="json" if state is not None else "raw",
            )

    async def _quarantine(self, msg: Any, kind: str, code: str, exc: Exception) -> None:
        """Set the record aside, acknowledged before the batch's offsets can be committed."""
        if self.quarantine is None:
            return
        if kind == "auth":
            provider, resource = self.verifier.plans[code].resource.provider, code
        else:
            provider, resource = code, ""  # a holder's topic: the holder wrote it
        reason = f"{type(exc).__name__}: {exc}"
        entry = QuarantineEntry.of(
            topic=msg.topic, partition=msg.partition, offset=msg.offset, provider=provider,
            resource=resource, reader=self.app_id, reason=reason, key=msg.key, value=msg.value,
            headers=msg.headers,
        )  # fmt: skip
        await (await self.quarantine.send(key=entry.key, value=entry.to_json()))
        entry.counted()

    async def _send(self, actions: list[dict[str, Any]]) -> None:
        futures = []
        for action in actions:
            value = json.dumps(action, ensure_ascii=False).encode()
            futures.append(await self.actions.send(key=action["dispute_id"].encode(), value=value))
        if not futures:
            return
        await asyncio.gather(*futures)  # acknowledged before the table says "open"
        now = self.clock()
        for action in actions:
            code = action["resource_code"]
            if action["action"] == "settle":
                metrics.SETTLEMENTS.labels(code).inc()
                continue
            metrics.DETECTIONS.labels(code).inc()
            observed_at = action["observed"]["event_time"]
            if observed_at:
                seen = dt.datetime.fromisoformat(observed_at)
                if seen.tzinfo is not None:
                    metrics.DETECTION_SECONDS.observe(max(0.0, (now - seen).total_seconds()))

    def _authoritative(self, code: str, key: str, value: bytes | None) -> Authoritative:
        resource = self.verifier.plans[code].resource
        if value is None:
            return Authoritative(code, key, resource.provider, None, None)
        _, envelope = wire.read_single_object(value, self.schemas)
        if envelope["resource_code"] != code:
            raise ValueError(
                f"an envelope of resource {envelope['resource_code']} on {code}'s topic"
            )
        payload = envelope["payload"]
        when = envelope["event_time"].isoformat()
        return Authoritative(code, key, envelope["provider"], when, payload)

    def _observation(self, holder: str, key: str, value: bytes | None) -> Observation:
        """The observation on holder ``holder``'s own topic: the holder is the topic's."""
        if value is None:
            raise ValueError("an empty observation (observations are never deleted)")
        data = json.loads(value)
        if not isinstance(data, dict) or not isinstance(data.get("values"), dict):
            raise ValueError("not an observation: expected a JSON object with 'values'")
        code = data.get("resource_code")
        if not isinstance(code, str) or code not in self.verifier.plans:
            raise ValueError(f"an observation of {code!r}, which is not a verified resource")
        claimed = data.get("holder")
        if claimed is not None and claimed != holder:
            raise ValueError(
                f"the observation says holder {claimed} but was written to the topic of {holder} "
                "(only that department can write there): refused"
            )
        return Observation(code, key, holder, data.get("event_time"), data["values"])


def build(
    settings: Settings,
    spec: CatalogSpec,
    password: str,
    context: AppContext = DEFAULT_CONTEXT,
    *,
    clock: Callable[[], dt.datetime] | None = None,
    batch: int | str = 1000,
    within: float | str = 0.005,
    **faust_conf: Any,
) -> faust.App:
    """The Faust app. ``faust_conf`` overrides Faust settings.

    ``batch``/``within``: events folded per step, and how long a step waits to fill one
    (Faust's ``take_events`` timer runs from when the step starts waiting, so a lone event
    waits up to ``within``: 5 ms keeps the idle latency low, a backlog still fills batches).
    ``clock`` (for drills and tests) stamps the actions' ``at``.
    """
    naming, partitions = context.naming, context.partitions
    app_spec = needs(spec, context)
    app = make_app(app_spec, settings, password, partitions=partitions, **faust_conf)
    routes: dict[str, tuple[str, str]] = {}
    for resource in spec.resources:
        if resource.holders:
            routes[naming.resource_topic(resource.code)] = ("auth", resource.code)
            for holder in resource.holders:
                dept = spec.department(holder.department)
                if dept is not None:  # needs() above refused an unknown one
                    routes[naming.holder_observation_topic(dept.id)] = ("obs", dept.code)
    if not routes:
        raise ValueError(
            "the catalog lists no holders for any resource: there is nothing to verify "
            f"(add holders to a resource, or do not run {app_spec.app_id})"
        )
    # No key/value types: Faust then serializes keys (str) and values (dicts) as JSON, always,
    # so recovery decodes what was written (value_type=dict breaks recovery: Faust takes it
    # for a model and calls dict.from_data).
    table = app.Table(TABLE, partitions=partitions)
    source = app.topic(*routes, key_serializer="raw", value_serializer="raw")
    actions = app.topic(app_spec.writes[0], key_serializer="raw", value_serializer="raw")
    now = clock or (lambda: dt.datetime.now(dt.UTC))
    quarantine = app.topic(naming.quarantine_topic, key_serializer="raw", value_serializer="raw")
    worker = _Worker(spec, routes, table, actions, now, context, quarantine)

    @app.agent(source, name=f"{app_spec.app_id}.verify")
    async def verify(stream: faust.StreamT[bytes]) -> None:
        async for events in stream.take_events(int(batch), float(within)):  # type: ignore[attr-defined]
            await worker.process(events)

    return app
