"""Records/s mirrored between two local platforms by MirrorMaker 2, beside the raw produce rate
and a hand-written consume→produce bridge, and the end-to-end lag at half the mirrored rate.

    python -m benchmarks.federation_bench --records 100000 --port 36900

In a temporary state directory (removed afterwards) it starts two platforms, ``bench-a`` (the
source) and ``bench-b``, on ``--port`` and ``--port + 10``, and in the same run:

1. produces N records of ``--size`` bytes to one 3-partition topic of bench-a with the raw
   confluent-kafka producer (idempotent, acks=all): the raw produce rate;
2. makes an active agreement bench-a → bench-b, applies its users and ACLs (govbus.federation
   needs) and starts the flow's MirrorMaker 2 as ``govbus federation run`` does (FlowRunner,
   the least-privilege principal); times it from the first copy visible on bench-b to the
   last (JVM start-up excluded): records/s mirrored;
3. copies the same N records with a plain confluent-kafka consume→produce loop (what a user
   might write instead of running MirrorMaker), timed the same way;
4. produces for ``--lag-seconds`` at half the mirrored rate, each record stamped when sent,
   and reads the copies on bench-b: end-to-end lag p50/p99 (send → copy read).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from govbus.broker import admin as kafka_admin
from govbus.broker.cluster import LocalCluster
from govbus.federation.agreements import Agreement, AgreementBook, OfferedResource
from govbus.federation.needs import needs_of
from govbus.federation.runner import FlowRunner
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.config import Settings, load_settings
from govbus.vocabulary.platforms import Platform, settings_for, write_platform
from govbus.vocabulary.secrets import PasswordStore

TOPIC = "gov.bench.resource"
PARTITIONS = 3


def _start(root: Settings, pid: str, port: int) -> Settings:
    platform = Platform(pid, pid, "district" if pid.endswith("a") else "city", port)
    write_platform(root, platform)
    settings = settings_for(root, platform)
    LocalCluster(settings).start(timeout=180)
    return settings


def _produce(settings: Settings, n: int, size: int, prefix: str = "r") -> float:
    producer = kafka_clients.producer(
        settings,
        settings.admin_username,
        kafka_clients.admin_password_of(settings),
        **{"linger.ms": 5, "batch.num.messages": 10000, "queue.buffering.max.messages": 500000},
    )
    payload = b"x" * size
    start = time.perf_counter()
    for i in range(n):
        while True:
            try:
                producer.produce(TOPIC, key=f"{prefix}{i}".encode(), value=payload)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0
    return n / (time.perf_counter() - start)


def _end_total(consumer: Consumer, topic: str) -> int:
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1]
            for p in range(PARTITIONS)
        )
    except Exception:  # the copy does not exist yet
        return 0


def _time_copy(settings: Settings, topic: str, want: int, timeout: float = 900) -> float:
    """records/s from the first copy visible on ``topic`` until ``want`` are there."""
    consumer = Consumer({**kafka_clients.admin_config(settings), "group.id": "admin.bench"})
    first = None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            total = _end_total(consumer, topic)
            now = time.perf_counter()
            if total > 0 and first is None:
                first, first_count = now, total
            if total >= want:
                assert first is not None
                return (want - first_count) / max(now - first, 1e-6)
            time.sleep(0.05)
    finally:
        consumer.close()
    raise SystemExit(f"{topic}: {want} copies not seen within {timeout:.0f} s")


def _bridge(src: Settings, dst: Settings, n: int) -> float:
    """A plain consume→produce loop (librdkafka both ways) into ``bridge.<topic>``."""
    admin = kafka_clients.admin_client(dst)
    kafka_admin.create_topic(admin, f"bridge.{TOPIC}", partitions=PARTITIONS)
    consumer = Consumer(
        {
            **kafka_clients.admin_config(src),
            "group.id": "admin.bridge",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    producer = kafka_clients.producer(
        dst,
        dst.admin_username,
        kafka_clients.admin_password_of(dst),
        **{"linger.ms": 5, "batch.num.messages": 10000, "queue.buffering.max.messages": 500000},
    )
    consumer.subscribe([TOPIC])
    copied = 0
    first = None
    while copied < n:
        for msg in consumer.consume(1000, 1.0):
            if msg.error():
                continue
            first = first or time.perf_counter()
            while True:
                try:
                    producer.produce(
                        f"bridge.{TOPIC}",
                        key=msg.key(),
                        value=msg.value(),
                        partition=msg.partition() or 0,
                        headers=msg.headers(),
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
            copied += 1
        producer.poll(0)
    assert producer.flush(120) == 0
    consumer.commit(asynchronous=False)
    consumer.close()
    assert first is not None
    return n / (time.perf_counter() - first)


def _lag(
    src: Settings, dst: Settings, remote: str, rate: float, seconds: float, size: int
) -> list[float]:
    consumer = Consumer(
        {
            **kafka_clients.admin_config(dst),
            "group.id": "admin.lag",
            "auto.offset.reset": "latest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([remote])
    while not consumer.assignment():
        consumer.poll(0.2)
    for tp in consumer.assignment():  # from the current end: only the records sent below
        _low, high = consumer.get_watermark_offsets(tp, 10)
        consumer.seek(TopicPartition(tp.topic, tp.partition, high))
    lags: list[float] = []
    total = int(rate * seconds)
    sent = threading.Event()

    def send() -> None:
        producer = kafka_clients.producer(
            src, src.admin_username, kafka_clients.admin_password_of(src), **{"linger.ms": 0}
        )
        payload = b"y" * (size - 20)
        start = time.perf_counter()
        for i in range(total):
            due = start + i / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            producer.produce(
                TOPIC,
                key=f"lag{i}".encode(),
                value=f"{time.time():.6f}".encode().ljust(20) + payload,
            )
            producer.poll(0)
        producer.flush(60)
        sent.set()

    thread = threading.Thread(target=send)
    thread.start()
    deadline = time.monotonic() + seconds + 120
    while len(lags) < total and time.monotonic() < deadline:
        for msg in consumer.consume(500, 0.5):
            if msg.error() or not (msg.key() or b"").startswith(b"lag"):
                continue
            lags.append(time.time() - float((msg.value() or b"0")[:20]))
    thread.join()
    consumer.close()
    return lags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=512, help="bytes per record (512)")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("GOVBUS_BENCH_PORT", "19900"))
    )
    parser.add_argument("--lag-seconds", type=float, default=30.0)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="federation-bench-"))
    root = load_settings(
        env={
            "GOVBUS_STATE_DIR": str(tmp),
            **{k: v for k, v in os.environ.items() if k == "GOVBUS_CACHE_DIR"},
        }
    )
    clusters: list[LocalCluster] = []
    runner: FlowRunner | None = None
    try:
        print(
            f"starting platforms bench-a (:{args.port}) and bench-b (:{args.port + 10}) ...",
            flush=True,
        )
        src = _start(root, "bench-a", args.port)
        clusters.append(LocalCluster(src))
        dst = _start(root, "bench-b", args.port + 10)
        clusters.append(LocalCluster(dst))
        kafka_admin.create_topic(kafka_clients.admin_client(src), TOPIC, partitions=PARTITIONS)

        raw = _produce(src, args.records, args.size)
        print(
            f"raw produce (confluent-kafka, acks=all): {args.records} records of "
            f"{args.size} B: {raw:,.0f} records/s",
            flush=True,
        )

        now = dt.datetime.now(dt.UTC).isoformat()
        agreement = Agreement(
            id="bench",
            source="bench-a",
            target="bench-b",
            resources=(
                OfferedResource("bench/0001", "bench", "bench", "bench", "unconditional", TOPIC),
            ),
            catalog=False,
            offered_at=now,
            offered_by="bench",
            accepted_at=now,
            accepted_by="bench",
            share_type="unconditional",
        )
        AgreementBook(root.state_dir).add(agreement)
        for on in (src, dst):
            needs = needs_of(on.platform, [agreement], on.naming)
            admin = kafka_clients.admin_client(on)
            for user in needs.users:
                kafka_admin.upsert_scram_user(admin, user, PasswordStore(on.state_dir)(user))
            kafka_admin.create_acls(admin, list(needs.acls))
        runner = FlowRunner(dst, report=lambda line: print(line, flush=True), lag_interval=3600)
        remote = dst.naming.mirrored_topic("bench-a", TOPIC)
        runner.step()
        mirrored = _time_copy(dst, remote, args.records)
        print(
            f"MirrorMaker 2 (3 tasks, least-privilege principal): {mirrored:,.0f} records/s "
            f"({mirrored / raw:.2f}× the raw produce rate)",
            flush=True,
        )

        bridged = _bridge(src, dst, args.records)
        print(
            f"hand-written consume→produce bridge (confluent-kafka): {bridged:,.0f} records/s "
            f"(MirrorMaker 2 / bridge = {mirrored / bridged:.2f})",
            flush=True,
        )

        rate = mirrored / 2
        lags = sorted(_lag(src, dst, remote, rate, args.lag_seconds, args.size))
        if not lags:
            raise SystemExit("no copy arrived during the lag run")
        p50 = statistics.median(lags)
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        print(
            f"end-to-end lag at {rate:,.0f} records/s (half the mirrored rate) for "
            f"{args.lag_seconds:.0f} s: {len(lags)} records, p50 {p50 * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms"
        )
    finally:
        if runner is not None:
            runner.stop()
        for cluster in clusters:
            cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
