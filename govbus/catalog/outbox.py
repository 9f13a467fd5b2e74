"""Publishes the catalog events ``CatalogStore.apply`` wrote to the outbox table (at least once).

The transactional outbox: a version and its events commit together, so the database never
holds a version whose events are lost. The relay reads unpublished rows in id order, produces
them with an idempotent acks=all producer, waits until the broker has acknowledged every one
(flush), and only then marks them published. A crash between producing and marking publishes
the rows again on the next run: consumers may see duplicates, never gaps. Events are keyed by
resource code (``department:<code>`` for departments), so each key goes to one partition and
rows produced in id order keep their order per key; the topic is compacted, so the last event
per key (the newest version) is kept for new consumers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient

from govbus.broker import admin as kafka_admin
from govbus.catalog.model import OutboxRow
from govbus.catalog.store import CatalogStore
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.clock import utc
from govbus.vocabulary.config import Settings
from govbus.vocabulary.errors import ServiceUnavailable

__all__ = ["OutboxRelay", "RelayError"]

FLUSH_TIMEOUT = 60.0


class RelayError(ServiceUnavailable):
    """Events were not acknowledged by the broker; they stay unpublished and are retried."""


class OutboxRelay:
    def __init__(
        self,
        store: CatalogStore,
        producer: Callable[[], Producer] | Mapping[str, Any],
        topic: str | None = None,
        flush_timeout: float = FLUSH_TIMEOUT,
    ) -> None:
        """``producer``: a factory returning a confluent-kafka Producer, or a Producer config
        (made idempotent with acks=all here). Relays the outbox rows written for ``topic``
        (default: the store's catalog topic, ``store.naming.catalog_topic``)."""
        if isinstance(producer, Mapping):
            config = {**producer, "enable.idempotence": True, "acks": "all"}
            self._factory: Callable[[], Producer] = lambda: Producer(config)
        else:
            self._factory = producer
        self.store = store
        self.topic = topic or store.naming.catalog_topic
        self.flush_timeout = flush_timeout
        self._producer: Producer | None = None

    @classmethod
    def for_settings(
        cls,
        store: CatalogStore,
        settings: Settings,
        username: str | None = None,
        password: str | None = None,
        topic: str | None = None,
    ) -> OutboxRelay:
        """A relay producing as ``username`` (default: the admin principal of ``settings``)."""
        user = username or settings.admin_username
        secret = password if password is not None else kafka_clients.admin_password_of(settings)
        return cls(store, lambda: kafka_clients.producer(settings, user, secret), topic)

    def ensure_topic(self, admin: AdminClient, partitions: int = 3, replication: int = -1) -> None:
        """Create the compacted catalog topic unless it exists."""
        kafka_admin.create_topic(
            admin,
            self.topic,
            partitions=partitions,
            replication=replication,
            config={"cleanup.policy": "compact"},
            exist_ok=True,
        )

    def run_once(self, max_batch: int = 500) -> int:
        """Publish up to ``max_batch`` unpublished events in order; return how many."""
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        with self.store.connect() as conn, conn.begin():
            # FOR UPDATE (PostgreSQL): a second relay waits instead of interleaving the order.
            rows = conn.execute(
                sa.select(OutboxRow.id, OutboxRow.key, OutboxRow.value)
                .where(OutboxRow.topic == self.topic, OutboxRow.published_at.is_(None))
                .order_by(OutboxRow.id)
                .limit(max_batch)
                .with_for_update()
            ).all()
            if not rows:
                return 0
            self._produce(rows)
            self._mark_published(conn, [row.id for row in rows])
        return len(rows)

    def run_all(self, max_batch: int = 500) -> int:
        """Publish until the outbox is empty; return how many were published."""
        total = 0
        while n := self.run_once(max_batch):
            total += n
        return total

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(self.flush_timeout)
            self._producer = None

    def _produce(self, rows: Sequence[sa.Row[Any]]) -> None:
        if self._producer is None:
            self._producer = self._factory()
        producer = self._producer
        failed: list[str] = []

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                failed.append(f"{msg.key()!r}: {err.str()}")

        for row in rows:
            value = json.dumps(row.value, ensure_ascii=False).encode("utf-8")
            while True:
                try:
                    producer.produce(
                        self.topic,
                        key=row.key.encode("utf-8"),
                        value=value,
                        # Lets consumers drop the duplicates a republish can cause.
                        headers=[("govbus-outbox-id", str(row.id).encode("ascii"))],
                        on_delivery=delivered,
                    )
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    producer.poll(0.5)
        unacknowledged = producer.flush(self.flush_timeout)
        if unacknowledged or failed:
            # A producer that failed deliveries may be fenced; start the retry with a new one.
            self._producer = None
            detail = "; ".join(failed[:5]) + (
                f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
            )
            raise RelayError(
                f"topic {self.topic!r}: {len(failed)} event(s) failed and {unacknowledged} were "
                f"not acknowledged within {self.flush_timeout}s ({detail or 'timeout'}); "
                f"outbox rows {rows[0].id}..{rows[-1].id} stay unpublished and are retried on the "
                "next run"
            )

    def _mark_published(self, conn: sa.Connection, ids: list[int]) -> None:
        conn.execute(
            sa.update(OutboxRow).where(OutboxRow.id.in_(ids)).values(published_at=utc(None))
        )
