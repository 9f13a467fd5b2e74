"""The source agent: a department's front-end tables published as its resources (article 16).

``govbus agent source`` runs it. Before anything is published, the mapping is checked against
the catalog (``mapping.check_sources``) and against the database as it is now
(``prepare_sources``): every mapped table and column exists (a column the business system
dropped stops the agent here, naming the mapping's line), each column's SQL type fits its
item's data type, the table has a primary key (or the mapping names one).

Then, every ``poll_interval`` seconds, for each table:

1. read the rows after the table's watermark (connectors/changes.py), at most ``batch_size``,
   and as many rows of its delete log, merged in update-time order;
2. turn each row into a record (connectors/rows.py) and publish through the provider SDK
   (``Publisher``): the same validation, and the same dead-letter topic, whose letters carry
   the row's ``origin`` (table and primary key); a row that cannot be read (undecodable text,
   a code not in the code table) is dead-lettered too (``Publisher.reject``), naming its
   column. A soft-deleted or logged delete is a tombstone (``Publisher.delete``);
3. only when the broker acknowledged all of it (the SDK raises otherwise), store the
   watermark. A crash in between publishes the batch again (``crash_point``
   ``source-after-publish`` tests it): never a loss; the key makes the repeat idempotent.

A full batch is followed at once by the next; otherwise the agent waits ``poll_interval``. A
failing round (broker or database away) is reported on ``/health`` and retried after the
interval; a failing round whose cause is the mapping (a column dropped meanwhile) stops the
agent. ``full_resync`` publishes every row again from the start, then goes on incrementally.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from connectors.changes import Watermark, WatermarkStore, lag_seconds, newest, rows_after
from connectors.database import FEEDS, category, reflect
from connectors.mapping import MappingError, MappingFile, SourceTable, check_sources
from connectors.rows import RowConverter
from connectors.service import Health, crash_point
from govbus.vocabulary import metrics
from govbus.vocabulary.session import DepartmentSession
from govbus.vocabulary.spec import DATA_TYPE_NAMES, CatalogSpec, Resource
from producers.publisher import Publisher, PublishError, PublishReport
from producers.validate import RecordError

__all__ = ["PreparedSource", "SourceAgent", "SourceRound", "prepare_sources"]

log = logging.getLogger("govbus.agent.source")

_TIME_CATEGORIES = ("datetime", "date", "integer", "number", "text", "any")


@dataclass(frozen=True)
class PreparedSource:
    """A mapped table as found in the database, ready to be read."""

    source: SourceTable
    resource: Resource
    table: sa.Table
    key_columns: tuple[str, ...]
    converter: RowConverter
    delete_log: sa.Table | None = None
    log_key_columns: tuple[str, ...] = ()  # the delete log's columns that hold the key items

    @property
    def read_columns(self) -> tuple[str, ...]:
        """The columns a batch reads: the mapped ones and the soft-delete flag."""
        flag = (self.source.soft_delete.column,) if self.source.soft_delete else ()
        return (*(c.column for c in self.source.columns), *flag)

    @property
    def deletes_stream(self) -> str:
        return f"{self.source.table}#deletes"


def _label(i: int, source: SourceTable) -> str:
    return f"sources[{i}] (table {source.table})"


def _table(engine: Engine, name: str, where: Any, label: str) -> sa.Table:
    table = reflect(engine, name)
    if table is None:
        raise MappingError(
            where,
            f"{label}: table {name} does not exist in the front-end database "
            f"{engine.url.render_as_string(hide_password=True)}; nothing was published",
        )
    return table


def _column(table: sa.Table, name: str, where: Any, label: str, what: str) -> sa.Column[Any]:
    if name not in table.c:
        have = ", ".join(table.c.keys())
        raise MappingError(
            where,
            f"{label} {what}: table {table.name} has no column {name} (dropped or renamed?); "
            f"its columns: {have}; nothing was published",
        )
    return table.c[name]


def prepare_sources(
    engine: Engine, mapping: MappingFile, spec: CatalogSpec, provider_code: str
) -> list[PreparedSource]:
    """Every source table of ``mapping``, checked against the catalog and the database."""
    check_sources(mapping, spec, provider_code)
    prepared = []
    for i, source in enumerate(mapping.sources):
        label = _label(i, source)
        resource = spec.resource(source.resource)
        assert resource is not None  # check_sources
        table = _table(engine, source.table, source.where, label)
        for column in source.columns:
            col = _column(table, column.column, column.where, label, f"column {column.column}")
            item = resource.item(column.item)
            assert item is not None
            kind = category(col.type)
            where = f"{label} column {column.column} ({col.type}) → item {item.code} ({item.name})"
            if kind is None:
                raise MappingError(column.where, f"{where}: the agent cannot read this SQL type")
            if column.date_format is not None:
                if kind not in ("text", "any", "date", "datetime"):
                    raise MappingError(column.where, f"{where}: date_format needs a text column")
            elif column.code_table is None and item.data_type not in FEEDS[kind]:
                raise MappingError(
                    column.where,
                    f"{where}: types do not fit: a {kind} column cannot hold a "
                    f"{DATA_TYPE_NAMES[item.data_type]} ({item.data_type}) item; map another "
                    "column, or add a code_table or date_format",
                )
        time_column = _column(table, source.updated_at, source.where, label, "updated_at")
        if category(time_column.type) not in _TIME_CATEGORIES:
            raise MappingError(
                source.where,
                f"{label} updated_at: column {source.updated_at} ({time_column.type}) cannot "
                "order changes; use a timestamp or a number that grows with every change",
            )
        keys = source.key or tuple(c.name for c in table.primary_key.columns)
        if not keys:
            raise MappingError(
                source.where,
                f"{label}: table {table.name} has no primary key; name its key columns with "
                "key: [column, ...] (rows are ordered and dead letters named by it)",
            )
        for key in keys:
            _column(table, key, source.where, label, "key")
        if source.soft_delete is not None:
            _column(table, source.soft_delete.column, source.soft_delete.where, label,
                    "soft_delete")  # fmt: skip
        delete_log: sa.Table | None = None
        log_keys: tuple[str, ...] = ()
        if source.delete_log is not None:
            dl = source.delete_log
            delete_log = _table(engine, dl.table, dl.where, f"{label} delete_log")
            _column(delete_log, dl.time, dl.where, f"{label} delete_log", "time")
            log_keys = tuple(c.column for c in source.columns if c.item in resource.key.items)
            for name in log_keys:
                _column(delete_log, name, dl.where, f"{label} delete_log", "key column")
        prepared.append(
            PreparedSource(
                source, resource, table, keys, RowConverter(source, resource, keys),
                delete_log, log_keys,
            )
        )  # fmt: skip
    return prepared


@dataclass
class SourceRound:
    """What one round of polling did, over every table."""

    read: int = 0
    published: int = 0
    deleted: int = 0
    dead_lettered: int = 0
    full_batches: int = 0  # tables whose batch was full: more is waiting
    letters: list[RecordError] = field(default_factory=list)


@dataclass
class _Event:
    time: Any
    kind: str  # "upsert" or "delete"
    row: Mapping[str, Any]
    from_log: bool


class SourceAgent:
    """Polls the prepared tables and publishes their changes as ``session``'s department."""

    def __init__(
        self,
        session: DepartmentSession,
        engine: Engine,
        mapping: MappingFile,
        prepared: Sequence[PreparedSource],
        *,
        full_resync: bool = False,
        health: Health | None = None,
    ) -> None:
        self.session = session
        self.engine = engine
        self.mapping = mapping
        self.prepared = list(prepared)
        self.department = session.department_id
        self.watermarks = WatermarkStore(engine, self.department)
        self.health = health or Health("source", 3 * mapping.poll_interval + 30)
        self.publisher = Publisher(session)
        # Full resync: start every table from nothing, once; then incrementally.
        self._resync = {p.source.table for p in self.prepared} if full_resync else set()
        self._marks: dict[str, Watermark | None] = {}
        self.stopping = threading.Event()

    def close(self) -> None:
        self.publisher.close()

    # --- the loop --------------------------------------------------------------------------------

    def run(self, *, once: bool = False) -> SourceRound:
        """Poll until stopped (``once``: until a round finds nothing more); the totals."""
        total = SourceRound()
        while not self.stopping.is_set():
            try:
                done = self.poll()
            except (PublishError, sa.exc.SQLAlchemyError) as exc:
                self._check_still_fits(exc)
                message = f"{type(exc).__name__}: {exc}".splitlines()[0]
                log.warning("round failed, retried in %.0f s: %s", self.mapping.poll_interval,
                            message)  # fmt: skip
                self.health.failed(message)
                if once:
                    raise
                self.stopping.wait(self.mapping.poll_interval)
                continue
            self.health.ok()
            for name in ("read", "published", "deleted", "dead_lettered"):
                setattr(total, name, getattr(total, name) + getattr(done, name))
            total.letters.extend(done.letters)
            if done.full_batches:
                continue
            if once:
                break
            self.stopping.wait(self.mapping.poll_interval)
        return total

    def _check_still_fits(self, exc: Exception) -> None:
        """After a database error: if the mapping no longer fits the tables, stop with that."""
        if not isinstance(exc, sa.exc.SQLAlchemyError):
            return
        try:
            prepare_sources(self.engine, self.mapping, self.session.spec,
                            self.publisher.department.code)  # fmt: skip
        except MappingError:
            raise
        except sa.exc.SQLAlchemyError:
            return

    def poll(self) -> SourceRound:
        """One batch of every table: published, acknowledged, then its watermark stored."""
        done = SourceRound()
        for prepared in self.prepared:
            self._poll_table(prepared, done)
        return done

    def _mark(self, stream: str) -> Watermark | None:
        if stream not in self._marks:
            self._marks[stream] = self.watermarks.get(stream)
        return self._marks[stream]

    def _poll_table(self, p: PreparedSource, done: SourceRound) -> None:
        table_name, limit = p.source.table, self.mapping.batch_size
        resync = table_name in self._resync
        mark = None if resync and table_name not in self._marks else self._mark(table_name)
        if resync:
            self._marks.setdefault(table_name, None)
        log_mark = self._mark(p.deletes_stream) if p.delete_log is not None else None
        with self.engine.connect() as conn:
            rows = rows_after(
                conn, p.table, p.source.updated_at, p.key_columns, mark, limit, p.read_columns
            )
            logged: list[Mapping[str, Any]] = []
            if p.delete_log is not None and not resync:
                assert p.source.delete_log is not None
                logged = rows_after(conn, p.delete_log, p.source.delete_log.time,
                                    p.log_key_columns, log_mark, limit)  # fmt: skip
        events = self._merged(p, rows, logged, limit)
        full = len(rows) >= limit or len(logged) >= limit
        if events:
            self._publish(p, events, done)
            crash_point("source-after-publish")
            marks = self._new_marks(p, events)
            self.watermarks.put(marks)
            self._marks.update(marks)
        if full:
            done.full_batches += 1
        elif resync:
            self._resync.discard(table_name)  # caught up: incremental from here on
        with self.engine.connect() as conn:
            newest_time = newest(conn, p.table, p.source.updated_at)
        metrics.AGENT_LAG.labels(self.department, table_name).set(
            lag_seconds(newest_time, self._marks.get(table_name))
        )

    def _merged(
        self,
        p: PreparedSource,
        rows: list[Mapping[str, Any]],
        logged: list[Mapping[str, Any]],
        limit: int,
    ) -> list[_Event]:
        """Changes and logged deletes in update-time order (a delete before a change of the
        same time: a row deleted and inserted again is there). When one side filled its batch,
        only events up to its last time are taken: the other side's later ones wait."""
        soft = p.source.soft_delete
        events = [
            _Event(
                r[p.source.updated_at],
                "delete" if soft is not None and _same(r[soft.column], soft.value) else "upsert",
                r,
                False,
            )
            for r in rows
        ]
        if p.source.delete_log is not None:
            events += [_Event(r[p.source.delete_log.time], "delete", r, True) for r in logged]
        events.sort(key=lambda e: (e.time, not e.from_log))
        caps = [
            side[-1].time
            for side in ([e for e in events if not e.from_log], [e for e in events if e.from_log])
            if len(side) >= limit
        ]
        if caps:
            cap = min(caps)
            events = [e for e in events if e.time <= cap]
        return events

    def _new_marks(self, p: PreparedSource, events: list[_Event]) -> dict[str, Watermark]:
        marks: dict[str, Watermark] = {}
        changes = [e for e in events if not e.from_log]
        if changes:
            last = changes[-1].row
            marks[p.source.table] = Watermark(
                last[p.source.updated_at], tuple(last[k] for k in p.key_columns)
            )
        logged = [e for e in events if e.from_log]
        if logged:
            assert p.source.delete_log is not None
            last = logged[-1].row
            marks[p.deletes_stream] = Watermark(
                last[p.source.delete_log.time], tuple(last[k] for k in p.log_key_columns)
            )
        return marks

    # --- publishing ------------------------------------------------------------------------------

    def _publish(self, p: PreparedSource, events: list[_Event], done: SourceRound) -> None:
        """Publish the events in order: runs of upserts and runs of deletes, each acknowledged
        (``PublishError`` otherwise) before the next; unreadable rows dead-lettered."""
        source = f"agent:{p.source.table}"
        code = p.resource.code
        rejected: list[tuple[int, Mapping[str, Any], list[RecordError]]] = []
        done.read += len(events)
        metrics.AGENT_ROWS.labels(self.department, p.source.table, "read").inc(len(events))
        for kind, run in _runs(events):
            if kind == "upsert":
                records: list[tuple[int, Mapping[str, Any]]] = []
                for position, event in run:
                    converted = p.converter.convert(event.row, position)
                    if converted.errors:
                        rejected.append((position, converted.record, converted.errors))
                    else:
                        records.append((position, converted.record))
                if records:
                    report = self.publisher.publish_numbered(code, records, source=source)
                    self._count(p, report, done, "published")
            else:
                keys: list[Mapping[str, Any]] = []
                for position, event in run:
                    converted = p.converter.convert_key(event.row, position)
                    if converted.errors:
                        rejected.append((position, converted.record, converted.errors))
                    else:
                        keys.append({k: v for k, v in converted.record.items() if k != "_origin"})
                if keys:
                    report = self.publisher.delete(code, keys, source=source)
                    self._count(p, report, done, "deleted")
        if rejected:
            report = self.publisher.reject(code, rejected, source=source)
            self._count(p, report, done, "published")
            for _, _, errors in rejected:
                for error in errors:
                    log.warning("dead-lettered: %s", error.message)

    def _count(
        self, p: PreparedSource, report: PublishReport, done: SourceRound, what: str
    ) -> None:
        letters = report.dead_lettered_records
        delivered = report.delivered
        setattr(done, what, getattr(done, what) + delivered)
        done.dead_lettered += letters
        done.letters.extend(report.dead_lettered)
        labels = metrics.AGENT_ROWS.labels
        if delivered:
            labels(self.department, p.source.table, "published").inc(delivered)
        if letters:
            labels(self.department, p.source.table, "dead-lettered").inc(letters)


def _same(value: Any, flag: Any) -> bool:
    """A soft-delete column's value equals the mapping's flag (1 and True, '1' and 1 alike)."""
    if value is None:
        return flag is None
    return value == flag or str(value).strip().lower() == str(flag).strip().lower()


def _runs(events: list[_Event]) -> Iterator[tuple[str, list[tuple[int, _Event]]]]:
    """Consecutive events of one kind, each with its position in the batch (from 1)."""
    run: list[tuple[int, _Event]] = []
    for position, event in enumerate(events, start=1):
        if run and run[-1][1].kind != event.kind:
            yield run[-1][1].kind, run
            run = []
        run.append((position, event))
    if run:
        yield run[-1][1].kind, run
