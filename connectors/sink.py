"""The sink agent: the resources a department may read, kept in its front-end tables (article 16).

``govbus agent sink`` runs it. Each ``sinks`` entry of the mapping is read through the consumer
SDK (``Subscriber``), so the department gets exactly what it may read — an unconditional
resource, a conditional one it holds a valid grant for, or a resource's public view (article
10) — for the purpose the mapping states, and every read is audited with that purpose and the
grant relied on (govbus/subscribe/audit.py), as for any consumer. A refusal stops the sink
before anything is read, naming the mapping's line.

Each table is created or migrated (connectors/sink_tables.py) before the first record. Then,
per batch of records that arrived:

1. each record is kept by its one-data-one-source key (the last one of a key in a batch wins;
   a tombstone deletes the key);
2. the batch is written in one database transaction: deletes, then upserts by the key
   (``INSERT … ON CONFLICT DO UPDATE`` on PostgreSQL — from a staging table filled by COPY
   through psycopg — and SQLite, ``ON DUPLICATE KEY UPDATE`` on MySQL, delete-then-insert
   elsewhere), with the provenance columns;
3. only after the database commit are the batch's Kafka offsets committed (the SDK's
   ``before_commit``). A crash in between (``crash_point`` ``sink-after-db-commit``) reads the
   batch again and upserts the same rows: nothing lost, nothing duplicated.

Several tables are kept by one thread each. A database that is away fails the round: the
uncommitted batch is dropped (its offsets were not committed, so it comes again), ``/health``
says so, and the sink retries after the poll interval.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import logging
import socket
import threading
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from confluent_kafka import KafkaException
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from connectors.mapping import MappingError, MappingFile, SinkTable, check_sinks
from connectors.service import Health, crash_point
from connectors.sink_tables import ensure_table
from govbus.subscribe.consumer import Record, SubscribeError, Subscriber
from govbus.vocabulary import metrics
from govbus.vocabulary.session import DepartmentSession
from govbus.vocabulary.spec import CatalogSpec, InfoItem, Resource
from producers.validate import KEY_SEPARATOR

__all__ = ["SinkAgent", "TableWriter"]

log = logging.getLogger("govbus.agent.sink")

Key = tuple[Any, ...]


def _key_part(item: InfoItem, text: str) -> Any:
    """A key item's value from a record key's text (producers.validate.record_key's inverse)."""
    kind = item.data_type
    if kind == "I":
        return int(text)
    if kind in ("N", "B", "F"):
        return float(text)
    if kind == "Y":
        return decimal.Decimal(text)
    if kind == "D":
        return dt.date.fromisoformat(text)
    if kind == "T":
        return dt.datetime.fromisoformat(text)
    if kind == "L":
        return text == "True"
    return text


class TableWriter:
    """One sink table: records buffered by key, written in one transaction by ``commit``."""

    def __init__(
        self, engine: Engine, sink: SinkTable, resource: Resource, table: sa.Table, department: str
    ) -> None:
        self.engine = engine
        self.sink = sink
        self.resource = resource
        self.table = table
        self.department = department
        self.key_items = [i for c in resource.key.items if (i := resource.item(c)) is not None]
        self.key_columns = [sink.column(code) for code in resource.key.items]
        self.item_columns = [(item.code, sink.column(item.code)) for item in resource.items]
        self.pending: dict[Key, dict[str, Any] | None] = {}
        self.written = 0

    def handle(self, record: Record) -> None:
        """Keep the record (a tombstone: the key's delete) for the next ``commit``."""
        if record.value is None:
            key = self._key_of(record.key)
            row = None
        else:
            key = tuple(record.value.get(code) for code in self.resource.key.items)
            row = {column: record.value.get(code) for code, column in self.item_columns}
            row.update(
                govbus_provider=record.provider,
                govbus_catalog_version=record.catalog_version,
                govbus_event_time=record.event_time,
                govbus_under_verification=(
                    record.under_verification if self.sink.verification_status else None
                ),
            )
        self.pending.pop(key, None)  # the latest of a key goes last
        self.pending[key] = row

    def _key_of(self, text: str | None) -> Key:
        parts = (text or "").split(KEY_SEPARATOR)
        if len(parts) != len(self.key_items):
            raise SubscribeError(
                f"sink table {self.sink.table}: a delete of resource {self.resource.code} has "
                f"key {text!r}, which is not {len(self.key_items)} part(s) "
                f"({', '.join(self.resource.key.items)})"
            )
        return tuple(
            _key_part(item, part) for item, part in zip(self.key_items, parts, strict=True)
        )

    def commit(self) -> None:
        """Write what is buffered in one transaction; then (and only then) it is done."""
        if not self.pending:
            return
        deletes = [k for k, row in self.pending.items() if row is None]
        upserts = [row for row in self.pending.values() if row is not None]
        with self.engine.begin() as conn:
            if deletes:
                self._delete(conn, deletes)
            if upserts:
                self._upsert(conn, upserts)
        count = len(self.pending)
        self.pending.clear()
        self.written += count
        metrics.AGENT_ROWS.labels(self.department, self.sink.table, "written").inc(count)
        crash_point("sink-after-db-commit")

    def discard(self) -> None:
        """Forget the uncommitted batch (its offsets were not committed: it comes again)."""
        self.pending.clear()

    def _delete(self, conn: Connection, keys: Sequence[Key]) -> None:
        where = sa.and_(
            *(self.table.c[column] == sa.bindparam(f"k_{n}")
              for n, column in enumerate(self.key_columns))
        )  # fmt: skip
        params = [{f"k_{n}": value for n, value in enumerate(key)} for key in keys]
        conn.execute(self.table.delete().where(where), params)

    def _upsert(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        columns = list(rows[0])
        others = [c for c in columns if c not in self.key_columns]
        dialect = conn.dialect.name
        if dialect == "postgresql" and conn.dialect.driver == "psycopg":
            self._copy_upsert(conn, columns, others, rows)
            return
        if dialect in ("postgresql", "sqlite"):
            insert = (postgresql if dialect == "postgresql" else sqlite).insert(self.table)
            statement: Any = insert.on_conflict_do_update(
                index_elements=[self.table.c[c] for c in self.key_columns],
                set_={c: insert.excluded[c] for c in others},
            )
        elif dialect in ("mysql", "mariadb"):
            insert_my = mysql.insert(self.table)
            statement = insert_my.on_duplicate_key_update(
                {c: insert_my.inserted[c] for c in others}
            )
        else:  # any other dialect: delete the keys, insert the rows, in this transaction
            self._delete(conn, [tuple(row[c] for c in self.key_columns) for row in rows])
            statement = self.table.insert()
        conn.execute(statement, rows)

    def _copy_upsert(
        self, conn: Connection, columns: list[str], others: list[str], rows: list[dict[str, Any]]
    ) -> None:
        """PostgreSQL through psycopg: the rows COPYed into a temporary staging table, then
        one ``INSERT … SELECT … ON CONFLICT DO UPDATE`` from it. Measured (agent_bench): the
        executemany path sends one INSERT per row (psycopg's pipeline) and took a third of the
        sink's time; COPY is PostgreSQL's bulk path."""
        quote = conn.dialect.identifier_preparer.quote
        table = conn.dialect.identifier_preparer.format_table(self.table)
        # Named by the table and its columns: a staging table made before a migration (temp
        # tables live as long as the pooled connection) is never reused with another shape.
        shape = hashlib.sha256("\0".join([self.table.name, *columns]).encode()).hexdigest()[:12]
        staging = quote(f"govbus_stage_{shape}")
        names = ", ".join(quote(c) for c in columns)
        keys = ", ".join(quote(c) for c in self.key_columns)
        updates = ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in others)
        conflict = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        driver = conn.connection.driver_connection
        with driver.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} ON COMMIT DELETE ROWS AS "
                f"SELECT {names} FROM {table} WITH NO DATA"
            )
            with cursor.copy(f"COPY {staging} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([row[c] for c in columns])
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} "
                f"ON CONFLICT ({keys}) {conflict}"
            )


class SinkAgent:
    """Keeps ``mapping.sinks`` as ``session``'s department; checks everything in __init__."""

    def __init__(
        self,
        session: DepartmentSession,
        engine: Engine,
        mapping: MappingFile,
        *,
        history: Sequence[CatalogSpec] = (),
        health: Health | None = None,
    ) -> None:
        check_sinks(mapping, session.spec)
        self.mapping = mapping
        self.health = health or Health("sink", None)
        self.subscribers: list[Subscriber] = []
        for i, sink in enumerate(mapping.sinks):
            try:
                subscriber = Subscriber(
                    session,
                    sink.resource,
                    sink.purpose,
                    group_suffix=f"agent-{sink.table}",
                    # One sink per table and host: a restarted agent resumes at once.
                    instance_id=f"agent-{sink.table}@{socket.gethostname()}",
                    history=history,
                    view=sink.view,
                    verification_status=sink.verification_status,
                    commit_every=mapping.batch_size,
                    # One audit event per batch, not per 1,000 records: each event, offset
                    # commit and database transaction is a round trip the batch pays once.
                    audit_every=max(mapping.batch_size, 1),
                )
            except SubscribeError as exc:
                raise MappingError(sink.where, f"sinks[{i}] (table {sink.table}): {exc}") from None
            self.subscribers.append(subscriber)
        # Every subscription is allowed: now the tables (created or migrated, or refused).
        self.writers: list[TableWriter] = []
        self.added: dict[str, list[str]] = {}
        for sink, subscriber in zip(mapping.sinks, self.subscribers, strict=True):
            table, added = ensure_table(engine, sink, subscriber.resource)
            self.added[sink.table] = added
            self.writers.append(
                TableWriter(engine, sink, subscriber.resource, table, session.department_id)
            )
        self._stopping = threading.Event()
        self._errors: list[BaseException] = []

    def stop(self) -> None:
        self._stopping.set()
        for subscriber in self.subscribers:
            subscriber.stop()

    def run(self, *, timeout: float | None = None) -> dict[str, int]:
        """Keep every table until stopped (``timeout``: until that many seconds pass without a
        record on each); rows written per table. Raises the first fatal error of a table."""
        threads = [
            threading.Thread(
                target=self._keep, args=(subscriber, writer, timeout),
                name=f"agent-sink-{writer.sink.table}", daemon=True,
            )
            for subscriber, writer in zip(self.subscribers, self.writers, strict=True)
        ]  # fmt: skip
        self.health.ok()
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.5)
        if self._errors:
            raise self._errors[0]
        return {w.sink.table: w.written for w in self.writers}

    def _keep(self, subscriber: Subscriber, writer: TableWriter, timeout: float | None) -> None:
        def committed() -> None:
            writer.commit()
            self.health.ok()

        while not self._stopping.is_set():
            try:
                subscriber.run(writer.handle, timeout=timeout, before_commit=committed)
                if timeout is not None:
                    return
            except (sa.exc.SQLAlchemyError, KafkaException) as exc:
                writer.discard()
                message = f"table {writer.sink.table}: {type(exc).__name__}: {exc}"
                log.warning("%s; retried in %.0f s", message.splitlines()[0],
                            self.mapping.poll_interval)  # fmt: skip
                self.health.failed(message.splitlines()[0])
                self._stopping.wait(self.mapping.poll_interval)
            except BaseException as exc:  # a refusal or a bad record: the sink stops
                self.health.failed(f"table {writer.sink.table}: {exc}")
                self._errors.append(exc)
                self.stop()
                return
