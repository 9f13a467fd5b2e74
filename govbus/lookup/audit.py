"""One usage audit event per lookup (article 18), in a hash chain per department and instance.

The event (govbus.subscribe.audit.AuditEvent) names the department, the resource, the purpose,
the grant relied on, how many records were returned and their offsets, and in ``query``: the
case number (办件编号), the end user (经办人), the keys asked as HMAC-SHA256 hex (never in clear;
a plain SHA-256 of a 公民身份号码 could be reversed by trying the few billion valid numbers,
the HMAC key is a platform secret, so only the platform can check "was this key asked"), how
many keys were found, the items returned and the view (full, granted, public).

Each instance writes its own chain per department (``chain = "lookup:<instance>"``): two
instances answering one department at once would otherwise fork one chain. An answer leaves
only after its audit event is acknowledged by the broker (acks=all): no query goes unrecorded.
The chain head is read back from the topic the first time a department asks (last_event), so a
restarted instance continues its chains; the events' partition and headers (``placement``) are
taken then too, so that read looks in one partition.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import threading
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer

from govbus.lookup.request import QueryContext
from govbus.lookup.rights import View
from govbus.lookup.store import Found
from govbus.subscribe.audit import GENESIS, AuditEvent, GrantRef, last_event, placement
from govbus.vocabulary import metrics
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.errors import ServiceUnavailable


class AuditUnavailable(ServiceUnavailable):
    """The audit event of a query was not acknowledged: the query is not answered."""


def hashed_key(secret: bytes, key: str) -> str:
    return hmac.new(secret, key.encode("utf-8"), hashlib.sha256).hexdigest()


class QueryAuditor:
    """Writes lookup events with ``producer``; reads chain heads with ``consumer``."""

    def __init__(
        self, producer: Producer, consumer: Consumer, topic: str, instance: str, secret: str
    ) -> None:
        self.producer = producer
        self.consumer = consumer
        self.topic = topic
        self.chain = f"lookup:{instance}"
        self.instance = instance
        self.secret = secret.encode("utf-8")
        self._heads: dict[str, str] = {}
        self._placed: dict[str, dict[str, Any]] = {}  # department -> partition and headers
        self._locks: dict[str, asyncio.Lock] = {}
        # Heads are read in the event loop's thread pool, two departments' at once at times;
        # the one consumer assigns a partition per read, so one read at a time.
        self._reading = threading.Lock()
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="lookup-audit", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)

    def close(self) -> None:
        self._stop.set()
        self._poller.join()
        self.producer.flush(30)
        self.consumer.close()

    async def _head(self, department: str) -> tuple[str, dict[str, Any]]:
        """The department's chain head and where its next event goes (``placement``)."""
        head = self._heads.get(department)
        if head is not None:
            return head, self._placed[department]
        lock = self._locks.setdefault(department, asyncio.Lock())
        async with lock:
            if department not in self._heads:
                loop = asyncio.get_running_loop()
                event, placed = await loop.run_in_executor(None, self._read_head, department)
                self._heads[department] = event.hash if event is not None else GENESIS
                self._placed[department] = placed
        return self._heads[department], self._placed[department]

    def _read_head(self, department: str) -> tuple[AuditEvent | None, dict[str, Any]]:
        with self._reading:
            return (
                last_event(self.consumer, department, self.topic, chain=self.chain),
                placement(self.consumer, department, self.topic, self.chain),
            )

    async def record(
        self,
        department: str,
        resource: str,
        context: QueryContext,
        keys: Sequence[str],
        found: Sequence[Found],
        view: View,
        started: dt.datetime,
        kind: str = "lookup",
    ) -> AuditEvent:
        """Append the query's event to the department's chain of this instance; returns once
        the broker acknowledged it (AuditUnavailable if it did not)."""
        prev, placed = await self._head(department)
        ranges: dict[int, tuple[int, int]] = {}
        for f in found:
            first, last = ranges.get(f.partition, (f.offset, f.offset))
            ranges[f.partition] = (min(first, f.offset), max(last, f.offset))
        grant = view.grant
        query: dict[str, Any] = {
            "kind": kind,
            "case_number": context.case_number,
            "end_user": context.end_user,
            "keys_hmac_sha256": [hashed_key(self.secret, k) for k in keys],
            "found": len(found),
            "items": list(view.items),
            "view": view.kind,
            "instance": self.instance,
        }
        event = AuditEvent(
            department=department,
            resource=resource,
            purpose=context.purpose,
            grant=GrantRef(grant.resource, grant.expires_at) if grant is not None else None,
            record_count=len(found),
            ranges=ranges,
            window_start=started,
            window_end=dt.datetime.now(CHINA_TZ),
            prev_hash=prev,
            chain=self.chain,
            query=query,
        ).sealed()
        self._heads[department] = event.hash  # the next query links to this one at once
        loop = asyncio.get_running_loop()
        done: asyncio.Future[KafkaError | None] = loop.create_future()

        def settle(err: KafkaError | None) -> None:
            if not done.done():
                done.set_result(err)

        def delivered(err: KafkaError | None, _msg: object) -> None:
            loop.call_soon_threadsafe(settle, err)

        produced = time.monotonic()
        self.producer.produce(
            self.topic,
            key=department.encode(),
            value=event.to_json(),
            on_delivery=delivered,
            **placed,
        )
        err = await done
        metrics.LOOKUP_AUDIT_LATENCY.observe(time.monotonic() - produced)
        if err is not None:
            # Re-read the real head (and the partition count) before the next event.
            self._heads.pop(department, None)
            self._placed.pop(department, None)
            raise AuditUnavailable(
                f"the usage audit event of this query was not written to {self.topic} "
                f"({err.str()}); the query is not answered (article 18)"
            )
        return event
