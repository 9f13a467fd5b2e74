"""What the SDK's validation and Avro encoding cost against a raw Kafka client, in one run.

    python -m benchmarks.publish_bench [--records 100000] [--size 1024] [--partitions 3]

Uses GOVBUS_BOOTSTRAP_SERVERS (with GOVBUS_ADMIN_PASSWORD) if set, else a local broker of its
own (state under /tmp/govbus-publish-bench, port 16492; stopped afterwards if started here).

Produce: a raw confluent-kafka producer sends pre-encoded values (the very bytes the SDK
writes, so both move the same data) vs ``Publisher.publish`` validating, encoding and keying
equivalent records; same producer settings (idempotent, acks=all, same linger and batch size).
Consume: a raw consumer reading one topic vs the same plus ``wire.decode_single_object`` on
the other. Consume time runs from the first record received (group join excluded).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import secrets
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message

from govbus.broker import admin as kafka_admin
from govbus.vocabulary import acls as kafka_acls
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary import wire
from govbus.vocabulary.config import Settings, load_settings
from govbus.vocabulary.identifiers import citizen_id_check_digit, uscc_check_char
from govbus.vocabulary.naming import Naming
from govbus.vocabulary.session import DepartmentSession
from govbus.vocabulary.spec import CatalogSpec, Department, InfoItem, Resource, ResourceKey
from producers.publisher import Publisher
from producers.validate import record_key

STATE_DIR = Path("/tmp/govbus-publish-bench")
PORT = 16492
CODE = "11320400MB0152709" + uscc_check_char("11320400MB0152709")
ITEM_COUNT = 10
# Same for both producers: batching is where throughput comes from.
PRODUCER_CONFIG: dict[str, Any] = {
    "linger.ms": 10,
    "batch.size": 1_000_000,
    "queue.buffering.max.messages": 500_000,
}


def line(name: str, value: str) -> None:
    print(f"{name + ':':<36} {value}", flush=True)


def bench_resource(size: int) -> Resource:
    per_item = max(1, (size - 130) // ITEM_COUNT)  # ~130 bytes of envelope and citizen id
    items = (
        InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),
        *(InfoItem(f"字段{n}", f"field_{n}", "C", per_item) for n in range(ITEM_COUNT)),
    )
    return Resource(
        code=f"10101/{CODE}-000001",
        name="基准测试资源",
        provider=CODE,
        abstract="benchmark",
        format="database",
        category=("人口", "户籍"),
        items=items,
        key=ResourceKey(("citizen_id",), "natural-person"),
        share_type="unconditional",
        update_cycle="daily",
        publish_date=dt.date(2024, 1, 1),
    )


def make_records(res: Resource, n: int) -> list[dict[str, Any]]:
    per_item = res.items[1].length or 1
    out = []
    for i in range(n):
        body = f"320402{19700101 + i % 28:08d}{i % 1000:03d}"
        record: dict[str, Any] = {"citizen_id": body + citizen_id_check_digit(body)}
        for item in res.items[1:]:
            record[item.code] = (f"{item.code}-{i}-" * per_item)[:per_item]
        out.append(record)
    return out


def connect(args: argparse.Namespace) -> tuple[Settings, Callable[[], None]]:
    if os.environ.get("GOVBUS_BOOTSTRAP_SERVERS"):
        return load_settings(), lambda: None
    from govbus.broker.cluster import LocalCluster

    settings = load_settings(
        env={
            "GOVBUS_STATE_DIR": str(STATE_DIR),
            "GOVBUS_BROKER_PORT": str(PORT),
            **{k: v for k, v in os.environ.items() if k == "GOVBUS_CACHE_DIR"},
        }
    )
    cluster = LocalCluster(settings)
    running = all(s.listening for s in cluster.status()) if cluster.is_formatted() else False
    if not running:
        line("broker", f"starting a local broker on port {PORT} ({STATE_DIR})")
        cluster.start(timeout=180)
    settings = replace(settings, bootstrap_servers=cluster.bootstrap_servers)
    return settings, (lambda: None) if running else cluster.stop


def raw_produce(producer: Any, topic: str, items: list[tuple[bytes, bytes]]) -> float:
    errors: list[KafkaError] = []

    def report(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    start = time.perf_counter()
    for key, value in items:
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(120) or errors:
        raise KafkaException(errors[0] if errors else "raw produce: records not acknowledged")
    return time.perf_counter() - start


def consume(
    settings: Settings, user: str, password: str, topic: str, n: int, decode: Callable[[bytes], Any]
) -> float:
    consumer = kafka_clients.consumer(
        settings, user, password, f"{user}.{uuid.uuid4().hex[:6]}", **{"fetch.max.bytes": 52428800}
    )
    consumer.subscribe([topic])
    got, start = 0, 0.0
    deadline = time.monotonic() + 300
    try:
        while got < n and time.monotonic() < deadline:
            batch = consumer.consume(10_000, 0.5)
            if batch and not start:
                start = time.perf_counter()
            for msg in batch:
                if msg.error():
                    raise KafkaException(msg.error())
                decode(msg.value())
                got += 1
    finally:
        consumer.close()
    if got < n:
        raise RuntimeError(f"consumed only {got} of {n} records from {topic}")
    return time.perf_counter() - start


def rates(name: str, n: int, nbytes: int, seconds: float) -> float:
    per_s = n / seconds
    line(name, f"{per_s:>10,.0f} records/s  {nbytes / seconds / 1e6:>8.1f} MB/s  ({seconds:.2f} s)")
    return per_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=1024, help="target encoded value bytes")
    parser.add_argument("--partitions", type=int, default=3)
    args = parser.parse_args(argv)

    settings, stop = connect(args)
    admin = kafka_clients.admin_client(settings)
    tag = uuid.uuid4().hex[:8]
    user, password = f"bench-{tag}", secrets.token_urlsafe(12)
    res = bench_resource(args.size)
    spec = CatalogSpec((Department(user, CODE, "基准测试部门", "city", "320400"),), (res,))
    naming = Naming(f"bench{tag}.")  # the benchmark's own namespace
    raw_topic, sdk_topic = f"bench{tag}.raw", naming.resource_topic(res.code)
    dlq = naming.dlq_topic(user)
    topics = [raw_topic, sdk_topic, dlq]
    try:
        kafka_admin.upsert_scram_user(admin, user, password)
        for topic in topics:
            kafka_admin.create_topic(admin, topic, partitions=args.partitions)
        kafka_admin.create_acls(
            admin,
            [
                acl
                for topic in topics
                for acl in kafka_acls.producer_acls(user, topic)
                + kafka_acls.consumer_acls(user, topic)
            ]
            + kafka_acls.group_prefix_acls(user, f"{user}."),
        )

        records = make_records(res, args.records)
        envelope = {
            "provider": CODE,
            "resource_code": res.code,
            "catalog_version": 1,
            "op": "UPSERT",
            "event_time": dt.datetime.now(dt.UTC),
            "trace_id": str(uuid.uuid4()),
        }
        encoded = [
            (record_key(res, r), wire.encode_single_object(res, {**envelope, "payload": r}))
            for r in records
        ]
        nbytes = sum(len(v) for _, v in encoded)
        line("records", f"{args.records:,} x {nbytes / args.records:,.0f} bytes (encoded value)")
        line("producer settings", f"idempotent, acks=all, {PRODUCER_CONFIG}")

        producer = kafka_clients.producer(settings, user, password, **PRODUCER_CONFIG)
        # Warm-up, untimed: connections and the idempotent producer id.
        raw_produce(producer, raw_topic, encoded[:1])
        raw_p = rates("produce raw (pre-encoded)", args.records, nbytes, raw_produce(
            producer, raw_topic, encoded
        ))  # fmt: skip
        with Publisher(
            DepartmentSession(settings, user, password, spec, catalog_version=1, naming=naming),
            producer_config=PRODUCER_CONFIG,
        ) as publisher:
            publisher.publish(res.code, records[:1])  # warm-up, untimed
            start = time.perf_counter()
            report = publisher.publish(res.code, records)
            seconds = time.perf_counter() - start
        assert report.delivered == args.records and not report.dead_lettered, report
        sdk_p = rates("produce SDK (validate+Avro)", args.records, nbytes, seconds)
        line("produce ratio SDK/raw", f"{sdk_p / raw_p:.2f}")

        raw_c = rates("consume raw", args.records, nbytes, consume(
            settings, user, password, raw_topic, args.records + 1, lambda _v: None
        ))  # fmt: skip
        catalog = wire.SchemaCatalog.build(spec)
        sdk_c = rates("consume SDK (decode)", args.records, nbytes, consume(
            settings, user, password, sdk_topic, args.records + 1,
            lambda v: wire.decode_single_object(v, catalog),
        ))  # fmt: skip
        line("consume ratio SDK/raw", f"{sdk_c / raw_c:.2f}")
        # ru_maxrss is KiB on Linux.
        line("peak RSS", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")
    finally:
        for topic in topics:
            kafka_admin.delete_topic(admin, topic)
        acls = [a for a in kafka_admin.list_acls(admin) if a.principal == f"User:{user}"]
        kafka_admin.delete_acls(admin, acls)
        kafka_admin.delete_scram_user(admin, user)
        stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
