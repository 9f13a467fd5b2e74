"""The Kafka consumer of every govbus stream app: Faust's aiokafka consumer with five changes.

1. **Fetch wait.** A fetch waits at most ``fetch_max_wait`` s at the broker (the app's
   attribute; Faust's driver hard-codes 1.5 s, which an idle worker pays per record).
2. **No committed offset: seek to the start.** aiokafka's ``seek_to_committed`` seeks only
   partitions whose committed offset is above 0 (``if offset and offset > 0``) and leaves the
   others where the consumer happens to be. Faust calls it after each rebalance, having cleared
   the records it had fetched but not yet processed, so for a group that had not committed yet
   those records were never fetched again. Seen (issue 17): a disputes worker lost the first
   90 of 1,210 actions, all committed past, when a second worker joined before its first
   commit. Here such an input partition is sought to ``auto_offset_reset`` (earliest).
3. **A stalled input partition is sought back to its committed offset.** Faust drops a fetched
   record whose offset is below its read offset for the partition ("DROPPED MESSAGE" in its dev
   log) and never acknowledges it, and it commits only the first run of consecutive
   acknowledged offsets: one such hole stops the partition's commits for good (faust#596).
   Seen (issue 17): after a SIGKILL rebalance the survivor received offsets 0-127 of a taken
   over partition again after seeking it to its committed 68, dropped them all, and its
   committed offset stayed at 68 of 1,027 with records waiting and both ends alive. The lag
   timer (runtime.record_lag) asks ``StallWatch`` each round; a partition with records past its
   committed offset whose committed offset has not moved for ``STALL_SECONDS`` is sought back
   there, Faust's acknowledgement bookkeeping for it forgotten: the records from the committed
   offset on are processed again (at least once; the apps' outputs are idempotent), counted in
   ``govbus_stream_reseeks_total``.
4. **A jump in offsets is fetched again before it counts as a gap.** When a record's offset
   is more than one past the partition's last read offset, Faust takes the offsets between
   for a gap (compaction, transaction markers) and acknowledges them unprocessed. Records it
   had fetched and cleared at a rebalance look the same: seen (issue 17), commands 37-89 of a
   disputes partition committed and never applied. The first time a jump is seen the
   partition is sought back to the offset after the last one read; records that exist come
   again, a real gap comes back the same and is left to Faust. A compacted topic pays one
   extra fetch per gap it reads.
5. **A seek back to committed offsets also puts the changelogs back where recovery reads.**
   Faust's ``getmany``, finding the flow stopped (a rebalance began) after its fetch returned,
   throws the fetched records away and seeks the partitions back to their committed offsets
   (``perform_seek``). Changelog partitions have none, so they stayed past records fetched and
   thrown away. Seen (issue 14's CI run, then reproduced): right after a rebalance, recovery
   sought a table's changelog partitions to 0, the fetch in flight read offsets 0-30 and was
   thrown away, the partitions stood at 31 = their end, and recovery waited for offsets 0-30
   for ever ("No event received for active tp ... since recovery start"), the worker taking
   nothing else. Here a changelog partition recovery reads whose position is past the record
   after the last one recovery applied goes back to that last one, as recovery's own seek
   does (``rewind_to``; logged at info).

The classes subclass Faust's driver (faust.transport.drivers.aiokafka) and call its code;
what they override is named in each method.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Set
from typing import Any, cast

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

log = logging.getLogger(__name__)

__all__ = [
    "FETCH_MAX_WAIT",
    "STALL_SECONDS",
    "SafeConsumer",
    "StallWatch",
    "recovery_applied",
    "rewind_to",
]

# How long a fetch request waits at the broker for data (aiokafka's fetch_max_wait_ms). Faust's
# driver hard-codes 1.5 s (faust/transport/drivers/aiokafka.py), and aiokafka leaves a partition
# out of the next fetch while its buffered records are not yet drained (fetcher.py), so a record
# arriving on that partition waits for the fetch in flight: up to 1.5 s on an idle worker
# (measured: produce -> detect p99 0.8-1.2 s). 50 ms bounds that wait; an idle worker then sends
# ~20 small fetch requests a second per broker.
FETCH_MAX_WAIT = 0.05

# How long an input partition may keep records waiting past an unmoving committed offset before
# it is sought back there. The apps commit every second (runtime.make_app); a batch of the
# verifier takes well under a second; recovery is not judged (the lag timer skips a rebalancing
# worker).
STALL_SECONDS = 15.0


class StallWatch:
    """Which input partitions have records waiting past a committed offset that has not moved
    for ``after`` seconds (pure: the caller brings the offsets and the time)."""

    def __init__(self, after: float = STALL_SECONDS) -> None:
        self.after = after
        self._since: dict[TP, tuple[int, float]] = {}

    def stalled(self, tp: TP, committed: int, end: int, now: float) -> bool:
        """True once per stall: the caller seeks ``tp`` back, and the clock starts again."""
        if end <= committed:
            self._since.pop(tp, None)
            return False
        seen = self._since.get(tp)
        if seen is None or seen[0] != committed:
            self._since[tp] = (committed, now)
            return False
        if now - seen[1] < self.after:
            return False
        self._since[tp] = (committed, now)
        return True

    def forget(self, keep: set[TP]) -> None:
        """Drop the partitions this worker no longer holds."""
        for tp in set(self._since) - keep:
            del self._since[tp]


def recovery_applied(
    assigned: Iterable[TP],
    active: tuple[Set[TP], Mapping[TP, int | None]],
    standby: tuple[Set[TP], Mapping[TP, int | None]],
) -> dict[TP, int]:
    """The last offset recovery applied (-1: none) of each of the ``assigned`` changelog
    partitions it reads: ``active`` and ``standby`` are its partitions and offsets (None: not
    worked out yet; recovery seeks such a partition itself later, so it is left out)."""
    out: dict[TP, int] = {}
    for tp in assigned:
        for tps, offsets in (active, standby):
            if tp in tps:
                offset = offsets.get(tp)
                if offset is not None:
                    out[tp] = int(offset)
                break
    return out


def rewind_to(last_applied: int, position: int) -> int | None:
    """Where to seek a changelog partition recovery reads, or None to leave it: a position past
    the record after the last one recovery applied (-1: none) means records were fetched and
    not applied; back to that last one (0 for none), as recovery's own seek does (recovery.py,
    ``_seek_offsets``; the last applied record comes once more, which a table applies alike)."""
    return max(last_applied, 0) if position > last_applied + 1 else None


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread (it owns the aiokafka consumer)."""

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Read when the consumer starts and builds its fetcher; no public setting for it.
        wait = getattr(self.app, "fetch_max_wait", FETCH_MAX_WAIT)
        consumer._fetch_max_wait_ms = int(wait * 1000)
        return consumer

    async def seek_to_committed(self) -> Mapping[TP, int]:
        """(Overrides Faust's.) Every partition to the group's committed offset; an input
        partition without one to ``auto_offset_reset`` (change 2); a changelog partition
        recovery reads back to recovery's position when it stands past records recovery did
        not apply (change 5; the group never commits changelogs)."""
        return cast(Mapping[TP, int], await self.call_thread(self._seek_to_committed_or_reset))

    async def _seek_to_committed_or_reset(self) -> Mapping[TP, int]:
        consumer = self._ensure_consumer()
        committed: Mapping[TP, int] = await consumer.seek_to_committed()
        changelogs = self.app.tables.changelog_topics
        unset = [tp for tp, offset in committed.items()
                 if (offset is None or offset <= 0) and tp.topic not in changelogs]  # fmt: skip
        if unset:
            if self.app.conf.consumer_auto_offset_reset == "latest":
                await consumer.seek_to_end(*unset)
            else:
                await consumer.seek_to_beginning(*unset)
        recovery = cast(Any, self.app.tables).recovery  # TableManager's, not in its type
        applied = recovery_applied(
            [tp for tp in committed if tp.topic in changelogs],
            (recovery.active_tps, recovery.active_offsets),
            (recovery.standby_tps, recovery.standby_offsets),
        )
        for tp, last in applied.items():
            try:
                position = await asyncio.wait_for(consumer.position(tp), 5)
            except TimeoutError:
                position = last + 2  # unknown: rewind, which at worst reads a few again
            offset = rewind_to(last, position)
            if offset is not None:
                log.info(
                    "changelog %s stood at %d, past records recovery did not apply (last "
                    "applied %d): sought back to %d", tp, position, last, offset,
                )  # fmt: skip
                consumer.seek(tp, offset)
        return committed


class SafeConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer on ``_ConsumerThread``, able to ``reseek`` a partition."""

    _thread: _ConsumerThread

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per partition, the last jump fetched again (change 4): jumps come in offset order,
        # so one per partition tells a jump seen again from a new one.
        self._jump_checked: dict[TP, tuple[int, int]] = {}

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Any]]:
        """(Overrides Faust's.) Its records, but a jump in a partition's offsets is fetched
        again once before Faust may take it for a gap (change 4)."""
        sought: set[TP] = set()
        async for tp, message in super().getmany(timeout):
            if tp in sought:
                continue  # the rest of its records come again from the seek
            last = self._read_offset.get(tp)
            if last and message.offset - last > 1 and self._may_have_gaps(tp):
                jump = (last, message.offset)
                if self._jump_checked.get(tp) != jump:
                    self._jump_checked[tp] = jump
                    sought.add(tp)
                    # From the first missing offset; the read offset stays at ``last``, so
                    # a real gap comes back as the same jump (and ``last`` is not read twice).
                    await self._seek_in_thread(tp, last + 1, read_offset=last)
                    continue
            yield tp, message

    def _may_have_gaps(self, tp: TP) -> bool:
        """An input partition whose acknowledgements Faust tracks (its gaps are filled); not a
        changelog, which recovery reads and positions itself."""
        return tp.topic not in self.app.tables.changelog_topics and bool(
            self.app.topics.acks_enabled_for(tp.topic)
        )

    async def reseek(self, tp: TP, offset: int) -> int:
        """Fetch ``tp`` again from ``offset`` (its committed offset), forgetting what Faust
        noted of it past there: acknowledged offsets and gaps (change 3). Returns how many
        records that reads again (those up to the last one read)."""
        last = self._read_offset.get(tp)
        for noted in (self._acked, self._acked_index, self._gap):
            noted.pop(tp, None)
        await self._seek_in_thread(tp, offset)
        return max(0, last + 1 - offset) if last is not None else 0

    async def _seek_in_thread(self, tp: TP, offset: int, read_offset: int | None = None) -> None:
        """As Faust's ``seek``, but on the consumer thread, which owns the aiokafka consumer
        (Faust's calls it from the event loop's thread). Faust processes a fetched record
        whose offset is at least the read offset (``offset`` unless given)."""
        thread = self._thread
        await thread.call_thread(thread._ensure_consumer().seek, tp, offset)
        read = offset if read_offset is None else read_offset
        self._read_offset[tp] = read if read else None

    def committed_offset(self, tp: TP) -> int | None:
        """The group's committed offset of ``tp`` as this worker knows it: read from the broker
        when the partition was assigned, then each commit of Faust's. None: none, or 0 (Faust
        keeps 0 as None)."""
        return self._committed_offset.get(tp)
