"""How long a department's usage audit chain head takes to read as the platform's history grows.

    python -m benchmarks.audit_head_bench --events 300000 --partitions 6

The usage audit topic is kept forever and every department writes to it; a consumer session,
the lookup service (at a department's first query) and a download read their chain's head back
from it (``govbus.subscribe.audit.last_event``). Against the configured cluster, in a topic of
its own removed afterwards: ``--events`` events of other departments spread over
``--partitions`` partitions, the measured department's own chain with one event early in its
partition (``--behind`` of its partition's events written after it), then, each timed:

- **its partition** (``last_event``): the head read as govbus does it, in the partition the
  department's key is in, for a chain with events and for one without any;
- **every partition** (the read before it, kept here as the baseline): each partition read back
  until the chain's event is found or the partition's start;
- **raw client**: every event of the topic read once with a plain consumer, no parsing: what
  reading the whole history costs at all.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from govbus.broker import admin as kafka_admin
from govbus.subscribe.audit import (
    HEAD_READER_CONFIG,
    PARTITIONS_HEADER,
    AuditEvent,
    _newest_in,
    _partitions,
    last_event,
)
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.config import load_settings
from govbus.vocabulary.partitioning import partition_of

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=CHINA_TZ)


def every_partition(consumer: Consumer, department: str, topic: str) -> AuditEvent | None:
    """The read before the ``govbus-partitions`` header: every partition read back."""
    found = [
        e
        for p in _partitions(consumer, topic)
        if (e := _newest_in(consumer, topic, p, department, None, 50)[0]) is not None
    ]
    return max(found, key=lambda e: e.window_end, default=None)


def raw_read(consumer: Consumer, topic: str) -> int:
    """Every record of the topic read once; how many."""
    parts = _partitions(consumer, topic)
    consumer.assign([TopicPartition(topic, p, 0) for p in parts])
    done: set[int] = set()
    n = 0
    while len(done) < len(parts):
        for msg in kafka_clients.arrived(consumer, 10_000, 10.0):
            if msg.error() is not None:
                done.add(int(msg.partition() or 0))
            else:
                n += 1
    consumer.unassign()
    return n


def timed(what: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    got = what()
    return time.perf_counter() - started, got


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000, help="other departments' events")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--behind", type=int, default=1_000, help="events in its partition after its own"
    )
    args = parser.parse_args(argv)
    settings = load_settings()
    admin = kafka_clients.admin_client(settings)
    password = kafka_clients.admin_password_of(settings)
    sfx = uuid.uuid4().hex[:8]
    topic = f"bench{sfx}.govbus.audit"
    dept, absent = f"bench{sfx}-reader", f"bench{sfx}-newcomer"
    count = args.partitions
    kafka_admin.create_topic(admin, topic, partitions=count)
    producer = kafka_clients.producer(
        settings, settings.admin_username, password, **{"linger.ms": 20}
    )
    head_reader = kafka_clients.consumer(
        settings, settings.admin_username, password, f"bench{sfx}", **HEAD_READER_CONFIG
    )
    raw = kafka_clients.consumer(
        settings, settings.admin_username, password, f"bench{sfx}-raw",
        **{"enable.partition.eof": True},
    )  # fmt: skip
    try:
        headers: list[tuple[str, str | bytes | None]] = [(PARTITIONS_HEADER, str(count).encode())]
        home = partition_of(dept, count)

        def put(department: str, n: int) -> None:
            at = T0 + dt.timedelta(seconds=n)
            body = AuditEvent(
                department=department, resource="R", purpose="administrative-basis",
                grant=None, record_count=1, ranges={}, window_start=at, window_end=at,
            ).sealed().to_json()  # fmt: skip
            while True:
                try:
                    producer.produce(
                        topic, key=department.encode(), value=body,
                        partition=partition_of(department, count), headers=headers,
                    )  # fmt: skip
                    return
                except BufferError:
                    producer.poll(0.1)

        print(f"writing {args.events:,} events of other departments to {count} partitions ...",
              file=sys.stderr, flush=True)  # fmt: skip
        in_home = 0
        own_written = False
        for n in range(args.events):
            other = f"bench{sfx}-d{n % 5000}"
            put(other, n)
            if partition_of(other, count) == home:
                in_home += 1
            if not own_written and n >= args.events - args.behind * count:
                put(dept, n)  # its one event, about --behind of its partition's after it
                own_written, in_home = True, 0
            if n % 100_000 == 0 and n:
                print(f"  {n:,}", file=sys.stderr, flush=True)
        assert producer.flush(60) == 0
        assert own_written, "--events must exceed --behind x --partitions"
        print(
            f"audit topic: {args.events + 1:,} events in {count} partitions; the department's "
            f"one event has {in_home:,} events of others after it in its partition",
            flush=True,
        )
        raw_s, total = timed(lambda: raw_read(raw, topic))
        print(f"raw client, the whole topic read once: {raw_s:.2f} s ({total / raw_s:,.0f} "
              "events/s)", flush=True)  # fmt: skip
        for who, label in ((dept, "a chain with an event"), (absent, "a chain without events")):
            new_s, new = timed(lambda: last_event(head_reader, who, topic))  # noqa: B023
            old_s, old = timed(lambda: every_partition(head_reader, who, topic))  # noqa: B023
            assert new == old, f"{label}: the reads disagree"
            print(
                f"{label}: its partition {new_s:.3f} s; every partition {old_s:.2f} s; ratio "
                f"{old_s / new_s:,.0f}x; raw whole-topic read / its partition "
                f"{raw_s / new_s:,.1f}x",
                flush=True,
            )
    finally:
        head_reader.close()
        raw.close()
        kafka_admin.delete_topic(admin, topic)
    return 0


if __name__ == "__main__":
    sys.exit(main())
