"""The dispute app (article 19): the single owner of every dispute's state.

Two agents:

1. ``route`` reads every principal's action topic (``disputes.actions.<id>``). The topic
   proves the actor; the action is re-keyed by its record (``resource|key``) onto the app's
   commands topic, so one record's disputes and status always meet in one partition.
2. ``apply`` folds commands into the tables with the rules of ``stream_apps.disputes.rules``:
   ``disputes`` (dispute id → state) and ``open`` (record → ids of its open disputes). Each
   change is published: the dispute's whole state to ``disputes.<resource>`` (compacted by id),
   the record's verification status to ``gov.<resource>.status`` (compacted by key). A refused
   action is a dead letter (see ``stream_apps.disputes.topics``) naming the field and rule.

A timer (``overdue_interval`` seconds) looks for open or acknowledged disputes past their due
day and sends an overdue command for each; ``apply`` marks it once and writes an article 26(4)
violation. Tables are only changed inside ``apply`` (Faust writes their changelogs from the
event being processed), which is why the timer sends commands instead.

At-least-once: a redelivered action is a duplicate by (id, action, at) and changes nothing;
the status and violation records are keyed so a repeated write compacts away.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import faust

from govbus.vocabulary.acls import Acl, consumer_acls, producer_acls
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.config import Settings
from govbus.vocabulary.spec import CatalogSpec
from govbus.vocabulary.topology import StreamApp, TopicSpec, violations_topic_spec
from govbus.vocabulary.workdays import WorkdayCalendar
from stream_apps.disputes import metrics as m
from stream_apps.disputes import rules as dr
from stream_apps.disputes.topics import DisputeTopics, dispute_readers, status_readers
from stream_apps.registry import DEFAULT_CONTEXT, AppContext
from stream_apps.runtime import make_app

log = logging.getLogger(__name__)
Clock = Callable[[], dt.datetime]
_DAY_MS = 24 * 3600 * 1000


def needs(
    spec: CatalogSpec, context: AppContext = DEFAULT_CONTEXT, *, now: dt.datetime | None = None
) -> StreamApp:
    """The app's topics, tables and ACLs. The status topics are readable by whoever may read
    the resource: the context's grants valid at ``now`` (default: now) count."""
    t = DisputeTopics(context.naming)
    grants, operator = context.grants, context.operator
    partitions, replication = context.partitions, context.replication
    topics: dict[str, TopicSpec] = {}
    acls: dict[Acl, str] = {}
    actors = t.actors(spec)
    for topic, actor in actors.items():
        topics[topic] = TopicSpec(
            1, replication, {"cleanup.policy": "delete", "retention.ms": "-1"},
            f"dispute actions of {actor}: kept, they are the record of who did what",
        )  # fmt: skip
        for acl in producer_acls(actor, topic):
            acls[acl] = f"{actor} acts on disputes only through its own topic"
    topics[t.commands] = TopicSpec(
        partitions, replication, {"cleanup.policy": "delete", "retention.ms": str(7 * _DAY_MS)},
        f"{t.app_id}: actions re-keyed by record, co-partitioned with its tables",
    )  # fmt: skip
    topics[t.rejected] = TopicSpec(
        1, replication, {"cleanup.policy": "delete", "retention.ms": str(30 * _DAY_MS)},
        "dispute actions of the verification app that the rules refused",
    )  # fmt: skip
    for acl in consumer_acls(operator, t.rejected):
        acls[acl] = "the data stewards read refused actions of the verification app"
    topics[t.violations] = violations_topic_spec(partitions, replication)
    writes = [t.commands, t.rejected, t.violations]
    writes += [context.naming.dlq_topic(d.id) for d in spec.departments]
    for resource in spec.resources:
        disputes, status = t.disputes(resource.code), t.status(resource.code)
        topics[disputes] = TopicSpec(
            partitions, replication, {"cleanup.policy": "compact"},
            f"disputes about {resource.name} ({resource.code}), the newest state per id",
        )  # fmt: skip
        topics[status] = TopicSpec(
            partitions, replication, {"cleanup.policy": "compact"},
            f"which records of {resource.name} are under verification (article 19)",
        )  # fmt: skip
        writes += [disputes, status]
        for reader in dispute_readers(spec, resource, operator):
            for acl in consumer_acls(reader, disputes):
                acls.setdefault(acl, f"{reader}: provider, holder or steward of {resource.code}")
        for reader in status_readers(spec, resource, grants, now, operator):
            for acl in consumer_acls(reader, status):
                acls.setdefault(acl, f"{reader} may read {resource.code}: sees its status")
    return StreamApp(
        app_id=t.app_id,
        user=t.app_id,
        purpose="owns the dispute lifecycle (article 19)",
        reads=(*actors, t.commands),
        writes=tuple(dict.fromkeys(writes)),
        tables=("disputes", "open"),
        topics=topics,
        acls=acls,
    )


def build(
    settings: Settings,
    spec: CatalogSpec,
    password: str,
    context: AppContext = DEFAULT_CONTEXT,
    *,
    clock: Clock | None = None,
    overdue_interval: float = 60.0,
    workdays: int = dr.DEFAULT_WORKDAYS,
    calendar: WorkdayCalendar | None = None,
    **faust_conf: Any,
) -> faust.App:
    """The Faust app. ``clock`` (default: now) decides what is overdue: drills and tests pass
    a later time instead of waiting days. ``faust_conf`` overrides Faust settings."""
    t = DisputeTopics(context.naming)
    partitions = context.partitions
    stream_app = needs(spec, context)
    app = make_app(stream_app, settings, password, partitions=partitions, **faust_conf)
    rules = dr.DisputeRules(spec, grants=context.grants, workdays=workdays, calendar=calendar,
                            naming=context.naming)  # fmt: skip
    now: Clock = clock or (lambda: dt.datetime.now(CHINA_TZ))
    actors = t.actors(spec)
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    commands = app.topic(t.commands, partitions=partitions, **raw)
    # Keys and values as JSON (Faust's default without a model type): a changelog must always
    # be read back with the serializer it was written with. No value_type: Faust's recovery
    # would call value_type.from_data, which only its Records have.
    disputes = app.Table("disputes", partitions=partitions, key_type=str)
    open_ids = app.Table("open", partitions=partitions, key_type=str)
    outputs: dict[str, Any] = {}

    def topic(name: str) -> Any:
        if name not in outputs:
            outputs[name] = app.topic(name, **raw)
        return outputs[name]

    async def send(name: str, key: str, value: Mapping[str, Any] | None) -> Awaitable[Any]:
        """Queued with the producer; the result resolves when the broker acknowledged it."""
        body = None if value is None else json.dumps(value, ensure_ascii=False).encode()
        return cast(Awaitable[Any], await topic(name).send(key=key.encode(), value=body))

    async def reject(actor: str, where: str, action: Any, rejection: dr.Rejection) -> None:
        m.ACTIONS_REJECTED.labels(actor, rejection.rule).inc()
        log.warning("dispute action from %s at %s rejected: %s", actor, where, rejection)
        letter = {
            "source": t.app_id,
            "department": actor,
            "resource": action.get("resource_code") if isinstance(action, dict) else None,
            "position": where,
            "errors": [rejection.as_error()],
            "record": action,
            "at": now().isoformat(),
        }
        await send(t.rejections(actor, spec), where, letter)

    @app.agent(app.topic(*actors, **raw))
    async def route(stream: Any) -> None:
        async for event in stream.events():
            msg = event.message
            actor, where = actors[msg.topic], f"{msg.topic}:{msg.partition}:{msg.offset}"
            try:
                action = json.loads(event.value)
                if not isinstance(action, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                text = event.value.decode("utf-8", "replace") if event.value else None
                await reject(actor, where, text, dr.Rejection("?", "value", "json", str(exc)))
                continue
            code, key = action.get("resource_code"), action.get("key")
            if not (isinstance(code, str) and isinstance(key, str)):
                bad = "resource_code" if not isinstance(code, str) else "key"
                await reject(actor, where, action, dr.Rejection(
                    str(action.get("action")), bad, "required", "must be a string"))  # fmt: skip
                continue
            command = {"kind": "action", "actor": actor, "where": where, "action": action}
            await send(t.commands, dr.record_key(code, key), command)

    async def publish(state: dict[str, Any]) -> None:
        """Store a dispute's new state and tell everyone who follows it."""
        dispute_id, code, key = state["dispute_id"], state["resource_code"], state["key"]
        rk = dr.record_key(code, key)
        before = list(open_ids.get(rk) or [])
        ids = [i for i in before if i != dispute_id]
        if state["state"] in dr.LIVE:
            ids.append(dispute_id)
        # The outputs first, acknowledged, then the tables. A worker killed in between finds
        # no new state in its tables (rebuilt from their changelogs) when the command comes
        # again, so it sends them again; stored first, a replay was taken for a duplicate and
        # the outputs lost for good (seen: one record's status never sent, issue 17).
        sent = [await send(t.disputes(code), dispute_id, state)]
        if ids != before:
            status = {
                "key": key, "resource_code": code, "under_verification": bool(ids),
                "dispute_ids": ids, "updated_at": state["updated_at"],
            }  # fmt: skip
            sent.append(await send(t.status(code), key, status))
        for delivered in sent:
            await delivered
        disputes[dispute_id] = state
        if ids != before:
            open_ids[rk] = ids
            m.DISPUTES_OPEN.labels(code).inc(len(ids) - len(before))

    @app.agent(commands)
    async def apply(stream: Any) -> None:
        async for value in stream:
            command = json.loads(value)
            if command["kind"] == "overdue":
                current = disputes.get(command["dispute_id"])
                at = dt.datetime.fromisoformat(command["now"])
                marked = current and rules.mark_overdue(current, at, t.app_id)
                if marked:
                    await publish(marked)
                    key, violation = dr.violation(marked, marked["provider"], at)
                    await send(t.violations, key, violation)
                    m.DISPUTES_OVERDUE.labels(marked["resource_code"]).inc()
                continue
            action, actor = command["action"], command["actor"]
            current = disputes.get(action.get("dispute_id")) if action.get("dispute_id") else None
            try:
                applied = rules.apply(current, action, actor)
            except dr.Rejection as rejection:
                await reject(actor, command["where"], action, rejection)
                continue
            if applied is None:
                continue  # a duplicate: at-least-once redelivery, or a replayed detect
            await publish(applied.state)
            new = applied.state
            if applied.opened:
                m.DISPUTES_OPENED.labels(new["resource_code"], new["origin"]).inc()
            if applied.closed:
                outcome = new["outcome"] or new["state"]
                m.DISPUTES_RESOLVED.labels(new["resource_code"], outcome).inc()

    @app.timer(overdue_interval)  # type: ignore[untyped-decorator]
    async def overdue() -> None:
        at = now()
        counts: dict[str, int] = {}
        for dispute_id, state in list(disputes.items()):
            if state is None:
                continue
            if state["state"] in dr.LIVE:
                counts[state["resource_code"]] = counts.get(state["resource_code"], 0) + 1
            if rules.is_overdue(state, at):
                command = {"kind": "overdue", "dispute_id": dispute_id, "now": at.isoformat()}
                await send(t.commands, dr.record_key(state["resource_code"], state["key"]),
                           command)  # fmt: skip
        for resource in spec.resources:  # the gauge from the table (right after a restart too)
            m.DISPUTES_OPEN.labels(resource.code).set(counts.get(resource.code, 0))

    return app
