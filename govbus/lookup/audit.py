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
restarted instance continues its chains.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer

from govbus.lookup.request import QueryContext
from govbus.lookup.rights import View
from govbus.lookup.store import Found
from govbus.subscribe.audit import CHAIN_HEADER, GENESIS, AuditEvent, GrantRef, last_event
from govbus.vocabulary import metrics
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.errors import ServiceUnavailable

PUMP_EVERY = 0.001  # seconds between polls for acknowledgements while events are in flight


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
        self._locks: dict[str, asyncio.Lock] = {}
        self._in_flight = 0  # events produced and not yet acknowledged
        self._pump: asyncio.Task[None] | None = None

    async def _pump_acknowledgements(self) -> None:
        """Serve the producer's delivery reports on the event loop while events are in flight.

        Why not a thread blocked in ``poll``: confluent-kafka takes the GIL for each delivery
        report, and a thread waiting for the GIL gets it only when the event loop's thread lets
        go (up to the 5 ms switch interval when it is busy): a batch of reports took tens of
        ms to come through at 1,000 lookups/s, the lookups' p99 (docs/lookup.md)."""
        try:
            while self._in_flight:
                self.producer.poll(0)
                await asyncio.sleep(PUMP_EVERY)
        finally:
            self._pump = None  # the next event starts another

    def close(self) -> None:
        self.producer.flush(30)  # events of queries cut short by the stop (none was answered)
        self.consumer.close()

    async def _head(self, department: str) -> str:
        head = self._heads.get(department)
        if head is not None:
            return head
        lock = self._locks.setdefault(department, asyncio.Lock())
        async with lock:
            if department not in self._heads:
                loop = asyncio.get_running_loop()
                event = await loop.run_in_executor(None, self._last_event, department)
                self._heads[department] = event.hash if event is not None else GENESIS
        return self._heads[department]

    def _last_event(self, department: str) -> AuditEvent | None:
        return last_event(self.consumer, department, self.topic, chain=self.chain)

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
        prev = await self._head(department)
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

        def delivered(err: KafkaError | None, _msg: object) -> None:
            self._in_flight -= 1  # called by poll, on the event loop (_pump_acknowledgements)
            if not done.done() and not loop.is_closed():  # closed: flushed by close()
                done.set_result(err)

        produced = time.monotonic()
        self.producer.produce(
            self.topic,
            key=department.encode(),
            value=event.to_json(),
            headers=[(CHAIN_HEADER, self.chain.encode())],
            on_delivery=delivered,
        )
        self._in_flight += 1
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._pump_acknowledgements())
        err = await done
        metrics.LOOKUP_AUDIT_LATENCY.observe(time.monotonic() - produced)
        if err is not None:
            self._heads.pop(department, None)  # re-read the real head before the next event
            raise AuditUnavailable(
                f"the usage audit event of this query was not written to {self.topic} "
                f"({err.str()}); the query is not answered (article 18)"
            )
        return event
