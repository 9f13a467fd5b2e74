"""govbus-freshness: each resource's last publish against its declared update cycle.

Articles 18 and 26(2): a provider keeps its data timely; not providing it as required is a
violation. The app reads every resource topic ``gov.<code>`` (only the records' timestamps —
Kafka has no metadata-only read, so it holds READ on them) and keeps the newest publish time
per resource in the table ``last_publish``. A timer (``interval`` seconds) compares it with the
allowance of the resource's ``update_cycle`` (``ALLOWANCES``):

============  ===================================================================
update cycle  late after (China Standard Time; reasons in ``ALLOWANCES``)
============  ===================================================================
realtime      the end of the 1st working day after the last publish
daily         the end of the 1st working day after the last publish
weekly        the end of the 5th working day after the last publish
monthly       the end of the calendar month after the last publish's month
quarterly     the end of the quarter after the last publish's quarter
half-yearly   the end of the half-year after the last publish's half-year
yearly        the end of the year after the last publish's year
other         never (no declared cycle)
============  ===================================================================

"End of day D" is midnight after D. Working days come from govbus.vocabulary.workdays (statutory
holidays and 调休; the day of the publish itself is not counted).

A resource that has not published since the app began watching it is measured from the later
of its catalog 发布日期 and the first tick that saw it (kept in the table ``episodes``), so
deploying the app, or adding a resource to the catalog, gives every provider one full cycle
before it is late rather than flagging it at once.

A breach episode starts when the deadline passes: one FRESHNESS event ``breached=true`` on
``govbus.freshness`` (compacted by resource code), one VIOLATION ``late-provision`` (26(2)) on
``govbus.violations`` keyed ``late-provision:<code>@<deadline date>`` and one count of
``govbus_freshness_breaches_total``. Later ticks stay silent. The next publish of the resource
ends the episode at once: a ``breached=false`` event with the new deadline. The episode state
is in the changelog-backed table, so a restarted worker neither repeats nor forgets a breach.

Topics: ``govbus.freshness`` compacted (the newest state per resource); ``govbus.violations``
compacted by ``<kind>:<subject>`` (one key per violation, so compaction drops only at-least-once
repeats and the yearly evaluation finds every violation; see ``violations_topic_spec``).
Both are read by the operator department only (the context's ``operator``, default
``cz-dsjj``): violations name departments, and one topic cannot be split per department by ACLs.

Several workers (issue 17, item 5): a resource's records are spread over its topic's
partitions, so they are seen by several workers, but its entries must be judged by one. The
agent ``publishes`` therefore forwards each resource's publish times to the app's own topic
``<app id>-publishes``, to the partition ``owner(code)`` (CRC-32 of the resource code), and
the agent ``last_publishes`` folds them into the tables there. The tables take their
changelog partition from the key the same way (``_KeyedTable``: the timer writes them outside
any stream event), and Faust gives partition p of every topic of the app with the same
partition count (that topic and both changelogs) to one worker. The timer judges only the
resources whose partition that worker holds. A killed worker's resources move, with their
table partitions (rebuilt from the changelogs), to the workers left: an episode is neither
repeated nor forgotten. ``publishes`` forwards a resource's time only when it is a second or
more newer than what it last forwarded, or on another day (China Standard Time): deadlines
count whole days, so the last publish may be up to a second early, never on another day.

``clock`` (build option; ``--now`` style options of the CLI are for drills and tests) replaces
the wall clock for deadlines, so a test need not wait days.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import zlib
from collections.abc import Mapping
from typing import Any

import faust
from prometheus_client import Counter

from govbus.vocabulary.acls import consumer_acls
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.config import Settings
from govbus.vocabulary.metrics import REGISTRY
from govbus.vocabulary.naming import FRESHNESS
from govbus.vocabulary.spec import CatalogSpec, Resource
from govbus.vocabulary.topology import StreamApp, TopicSpec, violations_topic_spec
from govbus.vocabulary.workdays import WorkdayCalendar
from stream_apps.freshness.rules import (
    Clock,
    baseline,
    deadline,
    freshness_event,
    iso,
    violation_event,
)
from stream_apps.registry import DEFAULT_CONTEXT, AppContext
from stream_apps.runtime import make_app

__all__ = ["BREACHES", "build", "needs"]

log = logging.getLogger(__name__)

BREACHES = Counter(
    "govbus_freshness_breaches",
    "Breach episodes: a resource not published within its update cycle's allowance (26(2))",
    ["resource", "department"],
    registry=REGISTRY,
)


def needs(spec: CatalogSpec, context: AppContext = DEFAULT_CONTEXT) -> StreamApp:
    """Reads every resource topic; writes (and has created) the freshness and violation topics.

    The operator (``context.operator``, 常州市大数据管理局 in the sample catalog) runs the
    exchange and evaluates the departments (article 26): it reads both.
    """
    naming, partitions, replication = context.naming, context.partitions, context.replication
    freshness_topic, violations_topic = naming.freshness_topic, naming.violations_topic
    operator = context.operator
    app_id = naming.app_user(FRESHNESS)
    topics = {
        freshness_topic: TopicSpec(
            partitions,
            replication,
            {"cleanup.policy": "compact"},
            "freshness of each resource against its update cycle (articles 18, 26(2)), "
            "compacted: the newest state per resource",
        ),
        violations_topic: violations_topic_spec(partitions, replication),
    }
    acls = {
        acl: f"the operator {operator} watches freshness and violations (article 26)"
        for topic in (freshness_topic, violations_topic)
        for acl in consumer_acls(operator, topic)
    }
    times = publishes_topic(app_id)
    topics[times] = TopicSpec(
        partitions, replication, {"cleanup.policy": "delete", "retention.ms": str(7 * _DAY_MS)},
        f"{app_id}: each resource's publish times, to the partition of the worker that judges it",
    )  # fmt: skip
    return StreamApp(
        app_id=app_id,
        user=app_id,
        purpose="checks each resource's last publish against its update cycle (26(2))",
        reads=(*(naming.resource_topic(r.code) for r in spec.resources), times),
        writes=(freshness_topic, violations_topic, times),
        tables=("last_publish", "episodes"),
        topics=topics,
        acls=acls,
    )


_DAY_MS = 24 * 3600 * 1000
_FORWARD_EVERY = 1.0  # s: a resource's publish time forwarded at most this often per worker


def publishes_topic(app_id: str) -> str:
    """The app's own topic of publish times, keyed and partitioned by resource code."""
    return f"{app_id}-publishes"


def owner(code: str, partitions: int) -> int:
    """The partition of a resource code: of its publish times, its table entries, its worker.
    CRC-32 is stable across processes, unlike ``hash``."""
    return zlib.crc32(code.encode("utf-8")) % partitions


class _KeyedTable(faust.Table[str, dict[str, Any]]):
    """A table whose changelog partition comes from its key, not from the current event.

    The timer writes outside any stream event, and every resource's entry must stay in one
    changelog partition so recovery replays its writes in order. (Faust's ``use_partitioner``
    would do this but asks the producer's metadata cache, which may not know the changelog
    topic yet.) CRC-32 is stable across processes, unlike ``hash``.
    """

    def partition_for_key(self, key: Any) -> int:
        return owner(str(key), int(self.partitions or 1))


def _parse(value: object) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else None


def build(
    settings: Settings,
    spec: CatalogSpec,
    password: str,
    context: AppContext = DEFAULT_CONTEXT,
    *,
    interval: float = 60.0,
    clock: Clock | None = None,
    calendar: WorkdayCalendar | None = None,
    **faust_conf: Any,
) -> faust.App:
    """The Faust app; ``clock`` (default: now) is for drills and tests. ``interval`` (s) may
    be given as text (``govbus stream-apps run --option interval=0.5``)."""
    interval = float(interval)
    now: Clock = clock or (lambda: dt.datetime.now(CHINA_TZ))
    calendar = calendar or WorkdayCalendar()
    naming, partitions = context.naming, context.partitions
    stream_app = needs(spec, context)
    app_id = stream_app.app_id
    app = make_app(stream_app, settings, password, partitions=partitions, **faust_conf)
    by_topic = {naming.resource_topic(r.code): r for r in spec.resources}
    departments = {d.code: d.id for d in spec.departments}
    # Keys are resource codes; values JSON (fixed serializers: recovery reads them back).
    table_conf: dict[str, Any] = {
        "schema": faust.Schema(key_type=str, key_serializer="json", value_serializer="json"),
        "partitions": partitions,
    }
    # code -> {"at": ISO time of the newest record seen}
    last_publish = _KeyedTable(app, name="last_publish", beacon=app.tables.beacon, **table_conf)
    # code -> {"watching_since": ISO, "breached": bool, "deadline": ISO | None}
    episodes = _KeyedTable(app, name="episodes", beacon=app.tables.beacon, **table_conf)
    app.tables.add(last_publish)
    app.tables.add(episodes)
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    out_freshness = app.topic(naming.freshness_topic, **raw)
    out_violations = app.topic(naming.violations_topic, **raw)

    def last_of(code: str) -> dt.datetime | None:
        return _parse((last_publish.get(code) or {}).get("at"))

    async def emit(topic: faust.TopicT, key: str, value: Mapping[str, Any]) -> None:
        body = json.dumps(value, ensure_ascii=False).encode("utf-8")
        await topic.send(key=key.encode("utf-8"), value=body)

    async def ended(resource: Resource, at: dt.datetime) -> None:
        """A publish ends a breach episode: say so with the next deadline."""
        state = episodes.get(resource.code)
        if not state or not state.get("breached"):
            return
        due = deadline(resource.update_cycle, at, calendar)
        if due is not None:
            event = freshness_event(resource, at, due, now(), breached=False)
            await emit(out_freshness, resource.code, event)
        episodes[resource.code] = {
            **state,
            "breached": False,
            "deadline": iso(due.at) if due else None,
        }

    times_name = publishes_topic(app_id)
    times = app.topic(times_name, partitions=partitions, **raw)
    by_code = {r.code: r for r in spec.resources}
    forwarded: dict[str, dt.datetime] = {}  # this worker's last forwarded time per resource

    if by_topic:
        sources = app.topic(*sorted(by_topic), **raw)

        @app.agent(sources, name=f"{app_id}.publishes")
        async def publishes(stream: faust.StreamT[bytes]) -> None:
            async for event in stream.events():
                msg = event.message
                resource = by_topic.get(msg.topic)
                if resource is None:
                    continue
                at = dt.datetime.fromtimestamp(msg.timestamp, CHINA_TZ)
                last = forwarded.get(resource.code)
                if last is not None and (
                    at.date() == last.date() and (at - last).total_seconds() < _FORWARD_EVERY
                ):
                    continue  # the owner knows a publish of this resource this recent
                forwarded[resource.code] = at if last is None else max(at, last)
                code = resource.code
                body = json.dumps({"code": code, "at": at.isoformat()}).encode("utf-8")
                await times.send(key=code.encode("utf-8"), value=body,
                                 partition=owner(code, partitions))  # fmt: skip

    @app.agent(times, name=f"{app_id}.last-publishes")
    async def last_publishes(stream: faust.StreamT[bytes]) -> None:
        async for value in stream:
            data = json.loads(value)
            resource, at = by_code.get(data.get("code")), _parse(data.get("at"))
            if resource is None or at is None:
                continue  # a resource no longer in the catalog
            seen = last_of(resource.code)
            # A replayed older record (after a restart) is no new publish.
            if seen is None or at > seen:
                last_publish[resource.code] = {"at": at.isoformat()}
                await ended(resource, at)

    def judged_here() -> set[int]:
        """The partitions (of resource codes) this worker holds now."""
        actives = app.assignor.assigned_actives()
        return {tp.partition for tp in actives if tp.topic == times_name}

    @app.timer(interval, name=f"{app_id}.check")  # type: ignore[untyped-decorator]
    async def check() -> None:
        if app.rebalancing or not app.tables.recovery.completed.is_set():  # type: ignore[attr-defined]
            return  # tables are still being restored: judging now would misjudge
        mine = judged_here()
        at = now()
        for resource in spec.resources:
            if owner(resource.code, partitions) not in mine:
                continue  # another worker judges it
            state = dict(episodes.get(resource.code) or {})
            watching = _parse(state.get("watching_since"))
            if watching is None:
                watching = at
                state["watching_since"] = at.isoformat()
                state.setdefault("breached", False)
            last = last_of(resource.code)
            due = deadline(resource.update_cycle, baseline(resource, last, watching), calendar)
            if due is not None and at >= due.at and not state.get("breached"):
                # Events first: if the worker dies before the table write, the next worker
                # repeats the breach (same keys), never loses it.
                await emit(
                    out_freshness,
                    resource.code,
                    freshness_event(resource, last, due, at, breached=True),
                )
                violation = violation_event(resource, last, due, at)
                await emit(out_violations, f"late-provision:{violation['subject']}", violation)
                BREACHES.labels(
                    resource=resource.code,
                    department=departments.get(resource.provider, resource.provider),
                ).inc()
                log.warning("%s: %s", app_id, violation["detail"])
                state.update(breached=True, deadline=iso(due.at))
            if state != episodes.get(resource.code):
                episodes[resource.code] = state

    return app
