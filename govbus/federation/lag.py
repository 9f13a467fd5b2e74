"""Replication lag of a flow, measured from both clusters (article 13: seamless means timely).

MirrorMaker 2 copies partition p of a source topic to partition p of ``<source>.<topic>`` and
keeps each record's timestamp. Per partition:

- the target's newest copy has timestamp ``t`` (none: nothing copied yet);
- the first source record newer than ``t`` (``offsets_for_times(t + 1)``, else the start of
  the log) is the oldest one not yet copied; from it to the end of the log is the lag in
  records, and its age is the lag in seconds (0 when there is none).

Duplicates MM2 writes after a restart (at-least-once) do not fool it, and an idle flow that is
caught up reads 0 whatever the age of its last record. It reads with the flow's own principal
(READ on both sides), so the measurement needs no rights the flow does not have.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from govbus.vocabulary.naming import Naming

TIMEOUT = 10.0


@dataclass(frozen=True)
class TopicLag:
    topic: str
    records: int  # source records not yet copied
    seconds: float  # age of the oldest of them
    copied: int = 0  # the copy's end offsets, summed: grows while the flow makes progress


def _record_at(consumer: Consumer, topic: str, partition: int, offset: int) -> Any:
    consumer.assign([TopicPartition(topic, partition, offset)])
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            return msg
    return None


def _newest_timestamp(consumer: Consumer, topic: str, partition: int) -> int | None:
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), TIMEOUT)
    if high <= low:
        return None
    msg = _record_at(consumer, topic, partition, high - 1)
    return None if msg is None else int(msg.timestamp()[1])


def topic_lag(
    source: Consumer, target: Consumer, source_alias: str, topic: str, now_ms: int | None = None
) -> TopicLag:
    """The lag of one source topic's copy (see the module docstring)."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    meta = source.list_topics(topic, timeout=TIMEOUT).topics.get(topic)
    if meta is None or meta.error is not None:
        return TopicLag(topic, 0, 0.0)
    remote = Naming.mirrored_topic(source_alias, topic)
    remote_meta = target.list_topics(remote, timeout=TIMEOUT).topics.get(remote)
    remote_exists = remote_meta is not None and remote_meta.error is None
    records, oldest, copied_end = 0, None, 0
    for partition in sorted(meta.partitions):
        low, high = source.get_watermark_offsets(TopicPartition(topic, partition), TIMEOUT)
        copied = None
        if remote_exists:
            copied = _newest_timestamp(target, remote, partition)
            copied_end += target.get_watermark_offsets(TopicPartition(remote, partition), TIMEOUT)[
                1
            ]
        first_missing = low
        if copied is not None:
            found = source.offsets_for_times(
                [TopicPartition(topic, partition, copied + 1)], TIMEOUT
            )[0]
            first_missing = high if found.offset < 0 else max(found.offset, low)
        if first_missing >= high:
            continue
        records += high - first_missing
        msg = _record_at(source, topic, partition, first_missing)
        if msg is not None:
            ts = int(msg.timestamp()[1])
            oldest = ts if oldest is None else min(oldest, ts)
    seconds = 0.0 if oldest is None or records == 0 else max(0.0, (now_ms - oldest) / 1000)
    return TopicLag(topic, records, seconds, copied_end)
