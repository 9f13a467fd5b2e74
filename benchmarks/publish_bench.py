"""What the SDK's validation and Avro encoding cost against a raw Kafka client and against
confluent-kafka's own Avro serializers, in one run.

    python -m benchmarks.publish_bench [--records 100000] [--size 1024] [--partitions 3]
        [--rounds 3] [--max-workers N] [--latency-samples 200]

Uses GOVBUS_BOOTSTRAP_SERVERS (with GOVBUS_ADMIN_PASSWORD) if set, else a local broker of its
own (state under /tmp/govbus-publish-bench, port 16492, or GOVBUS_BENCH_STATE_DIR /
GOVBUS_BENCH_BROKER_PORT; stopped afterwards if started here).

Three paths, each timed ``--rounds`` times, alternating, medians printed:

- raw: a confluent-kafka producer sends pre-encoded values (the very bytes the SDK writes), a
  consumer reads them and does nothing;
- peer: what a user would pick instead, confluent-kafka's ``SerializingProducer`` with an
  ``AvroSerializer`` of the same envelope schema (Schema Registry client in mock mode, no
  server) and ``DeserializingConsumer`` with an ``AvroDeserializer``;
- SDK: ``Publisher.publish`` validating, encoding and keying equivalent records (also with
  ``workers`` = 2 .. ``--max-workers``, default the cores available), and ``Subscriber.run``
  (decoding, commits, usage audit) reading them.

Producers share settings (idempotent, acks=all, same linger and batch size). Besides the rates,
the calling thread's CPU time per record of raw, peer and SDK (one process, ``time.thread_time``:
steady on a shared machine, where the rates swing with the load). Consume time runs
from the first record received (group join excluded). The single-process cost per record is
broken down (validation, encoding, produce). Latency: one record every 50 ms, published ->
handed to the application, for raw (produce -> poll) and SDK (``Publisher.publish`` ->
``Subscriber`` handler), idle and under a background load of half the SDK's maximum rate (the
load from another process), p50/p99 of ``--latency-samples`` each.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import resource
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from confluent_kafka import (
    DeserializingConsumer,
    KafkaError,
    KafkaException,
    Message,
    SerializingProducer,
)
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import (
    MessageField,
    SerializationContext,
    StringDeserializer,
    StringSerializer,
)

from govbus.broker import admin as kafka_admin
from govbus.subscribe.consumer import Record, Subscriber
from govbus.vocabulary import acls as kafka_acls
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary import schemas, wire
from govbus.vocabulary.config import Settings, load_settings
from govbus.vocabulary.identifiers import citizen_id_check_digit, uscc_check_char
from govbus.vocabulary.naming import Naming
from govbus.vocabulary.session import DepartmentSession
from govbus.vocabulary.spec import CatalogSpec, Department, InfoItem, Resource, ResourceKey
from producers.publisher import Publisher, TraceIds
from producers.validate import avro_payload, record_key, validate_record

STATE_DIR = Path(os.environ.get("GOVBUS_BENCH_STATE_DIR", "/tmp/govbus-publish-bench"))
PORT = int(os.environ.get("GOVBUS_BENCH_BROKER_PORT", "16492"))
CODE = "11320400MB0152709" + uscc_check_char("11320400MB0152709")
ITEM_COUNT = 10
# Same for every producer: batching is where throughput comes from.
PRODUCER_CONFIG: dict[str, Any] = {
    # lz4, as every govbus producer (kafka_clients.producer): the peer's producer too, so the
    # three send the same bytes and differ in serialization only.
    "compression.type": "lz4",
    "linger.ms": 10,
    "batch.size": 1_000_000,
    "queue.buffering.max.messages": 500_000,
}
SAMPLE_EVERY = 0.05  # s between latency samples
SAMPLE_ITEM = "field_0"  # the item a latency sample carries its send time in


def line(name: str, value: str) -> None:
    print(f"{name + ':':<40} {value}", flush=True)


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


def make_records(res: Resource, n: int, offset: int = 0) -> list[dict[str, Any]]:
    per_item = res.items[1].length or 1
    out = []
    for i in range(offset, offset + n):
        body = f"320402{19700101 + i % 28:08d}{i % 1000:03d}"
        record: dict[str, Any] = {"citizen_id": body + citizen_id_check_digit(body)}
        for item in res.items[1:]:
            record[item.code] = (f"{item.code}-{i}-" * per_item)[:per_item]
        out.append(record)
    return out


def connect() -> tuple[Settings, Callable[[], None]]:
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


@dataclass(frozen=True)
class Bench:
    """Everything a benchmark step (or a load process) needs: picklable."""

    settings: Settings
    user: str
    password: str
    spec: CatalogSpec
    naming: Naming
    raw_topic: str
    peer_topic: str
    which: int = 0  # the resource: 0 for throughput, 1 for latency (a topic of its own)

    @property
    def res(self) -> Resource:
        return self.spec.resources[self.which]

    @property
    def sdk_topic(self) -> str:
        return self.naming.resource_topic(self.res.code)

    def session(self) -> DepartmentSession:
        return DepartmentSession(
            self.settings, self.user, self.password, self.spec, catalog_version=1,
            naming=self.naming,
        )  # fmt: skip

    def producer(self, **extra: Any) -> Any:
        return kafka_clients.producer(self.settings, self.user, self.password, **extra)

    def consumer(self, **extra: Any) -> Any:
        group = f"{self.user}.{uuid.uuid4().hex[:6]}"
        return kafka_clients.consumer(self.settings, self.user, self.password, group, **extra)

    def registry(self) -> SchemaRegistryClient:
        # new_client gives the mock for a mock:// URL (the constructor would try HTTP).
        return SchemaRegistryClient.new_client({"url": "mock://govbus-bench"})

    def peer_producer(self, registry: SchemaRegistryClient) -> SerializingProducer:
        schema = json.dumps(schemas.envelope_schema(self.res))
        conf = kafka_clients.client_config(
            self.settings, self.user, self.password,
            **{"enable.idempotence": True, "acks": "all", "partitioner": "murmur2_random",
               **PRODUCER_CONFIG},
        )  # fmt: skip
        conf.pop("logger")  # SerializingProducer passes the config to librdkafka as is
        conf["key.serializer"] = StringSerializer("utf_8")
        conf["value.serializer"] = AvroSerializer(registry, schema)
        return SerializingProducer(conf)


def envelope(res: Resource, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "provider": CODE,
        "resource_code": res.code,
        "catalog_version": 1,
        "op": "UPSERT",
        "event_time": dt.datetime.now(dt.UTC),
        "trace_id": str(uuid.uuid4()),
        "payload": payload,
    }


def _report(errors: list[KafkaError]) -> Callable[[KafkaError | None, Message], None]:
    def report(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    return report


def raw_produce(producer: Any, topic: str, items: list[tuple[bytes, bytes]]) -> float:
    errors: list[KafkaError] = []
    report = _report(errors)
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


def peer_produce(producer: SerializingProducer, topic: str, records: list[dict[str, Any]],
                 res: Resource) -> float:  # fmt: skip
    """What a user of confluent-kafka's serializers writes: a dict per record, Avro by the
    registry's schema (no validation beyond Avro's types)."""
    errors: list[KafkaError] = []
    report = _report(errors)
    start = time.perf_counter()
    for record in records:
        value = envelope(res, record)
        while True:
            try:
                producer.produce(topic, key=record["citizen_id"], value=value, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(120) or errors:
        raise KafkaException(errors[0] if errors else "peer produce: records not acknowledged")
    return time.perf_counter() - start


def sdk_produce(bench: Bench, records: list[dict[str, Any]], workers: int = 1) -> float:
    with Publisher(bench.session(), producer_config=PRODUCER_CONFIG) as publisher:
        start = time.perf_counter()
        report = publisher.publish(bench.res.code, records, workers=workers)
        seconds = time.perf_counter() - start
    assert report.delivered == len(records) and not report.dead_lettered, report
    return seconds


def consume(consumer: Any, topic: str, n: int, poll: Callable[[Any], list[Any]]) -> float:
    consumer.subscribe([topic])
    got, start = 0, 0.0
    deadline = time.monotonic() + 300
    try:
        while got < n and time.monotonic() < deadline:
            batch = poll(consumer)
            if batch and not start:
                start = time.perf_counter()
            got += len(batch)
    finally:
        consumer.close()
    if got < n:
        raise RuntimeError(f"consumed only {got} of {n} records from {topic}")
    return time.perf_counter() - start


def raw_consume(bench: Bench, topic: str, n: int) -> float:
    def poll(consumer: Any) -> list[Any]:
        batch = consumer.consume(10_000, 0.5)
        for msg in batch:
            if msg.error():
                raise KafkaException(msg.error())
        return list(batch)

    return consume(bench.consumer(**{"fetch.max.bytes": 52428800}), topic, n, poll)


def peer_consume(bench: Bench, registry: SchemaRegistryClient, n: int) -> float:
    extra: dict[str, Any] = {
        "group.id": f"{bench.user}.{uuid.uuid4().hex[:6]}", "enable.auto.commit": False,
        "auto.offset.reset": "earliest", "fetch.max.bytes": 52428800,
    }  # fmt: skip
    conf = kafka_clients.client_config(bench.settings, bench.user, bench.password, **extra)
    conf.pop("logger")
    conf["key.deserializer"] = StringDeserializer("utf_8")
    conf["value.deserializer"] = AvroDeserializer(registry)

    def poll(consumer: Any) -> list[Any]:
        # DeserializingConsumer has poll only (one record per call): what its users write.
        msg = consumer.poll(0.5)
        if msg is None:
            return []
        if msg.error():
            raise KafkaException(msg.error())
        return [msg]

    return consume(DeserializingConsumer(conf), bench.peer_topic, n, poll)


def sdk_consume(bench: Bench, n: int) -> float:
    subscriber = Subscriber(
        bench.session(), bench.res.code, "administrative-basis",
        group_suffix=uuid.uuid4().hex[:6],
    )  # fmt: skip
    first = 0.0

    def handler(_record: Record) -> None:
        nonlocal first
        first = first or time.perf_counter()

    got = subscriber.run(handler, max_records=n, timeout=60)
    if got < n:
        raise RuntimeError(f"the subscriber got only {got} of {n} records")
    return time.perf_counter() - first


def rates(name: str, n: int, nbytes: int, seconds: list[float]) -> float:
    med = statistics.median(seconds)
    per_s = n / med
    spread = ", ".join(f"{n / s:,.0f}" for s in seconds)
    line(name, f"{per_s:>10,.0f} records/s  {nbytes / med / 1e6:>7.1f} MB/s  (runs: {spread})")
    return per_s


def profile(bench: Bench, records: list[dict[str, Any]], registry: SchemaRegistryClient,
            raw_seconds: float) -> None:  # fmt: skip
    """The single-process cost per record, step by step (no broker involved but produce)."""
    res, n = bench.res, len(records)
    start = time.perf_counter()
    for position, record in enumerate(records, start=1):
        validate_record(res, record, position)
    validation = time.perf_counter() - start
    start = time.perf_counter()
    now, trace_id = dt.datetime.now(dt.UTC), TraceIds()
    for record in records:
        record_key(res, record)
        wire.encode_upsert(
            res, provider=CODE, catalog_version=1, event_time=now,
            trace_id=trace_id(), payload=avro_payload(res, record),
        )  # fmt: skip
    encoding = time.perf_counter() - start
    serializer = AvroSerializer(registry, json.dumps(schemas.envelope_schema(res)))
    ctx = SerializationContext(bench.peer_topic, MessageField.VALUE)
    start = time.perf_counter()
    for record in records:
        serializer(envelope(res, record), ctx)
    peer = time.perf_counter() - start
    us = 1e6 / n
    line("SDK validation", f"{validation * us:6.1f} µs/record")
    line("SDK key + envelope + Avro encoding", f"{encoding * us:6.1f} µs/record")
    line("produce (raw client, pre-encoded)", f"{raw_seconds * us:6.1f} µs/record")
    line("peer AvroSerializer (envelope + Avro)", f"{peer * us:6.1f} µs/record")


def profiled(bench: Bench, records: list[dict[str, Any]], top: int = 25) -> None:
    """One SDK publish of ``records`` under cProfile: the functions that cost most (own time)."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    sdk_produce(bench, records)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    print(f"== cProfile of one SDK publish of {len(records):,} records (top {top}, own time)")
    print("\n".join(out.getvalue().strip().splitlines()[2:]))


# --- latency ------------------------------------------------------------------------------------


WARM_UP = 6.0  # s of load before the first sample: the consumer has joined its group by then


def _load(bench: Bench, mode: str, rate: float, samples: int, tag: str) -> None:
    """Load process: ``rate`` records/s of background load and, after WARM_UP s, a sample
    every SAMPLE_EVERY s carrying ``tag`` and its send time (time.monotonic: one clock for
    every process of the machine)."""
    res = bench.res
    pool = make_records(res, 1000, offset=10_000_000)
    sample = make_records(res, 1, offset=20_000_000)[0]
    tick = 0.005
    per_tick = rate * tick
    publisher = Publisher(bench.session()) if mode == "sdk" else None
    producer = bench.producer() if mode == "raw" else None
    encoded = [(record_key(res, r), wire.encode_single_object(res, envelope(res, r))) for r in pool]
    sample_value = wire.encode_single_object(res, envelope(res, sample))
    # Connect (and get the idempotent producer id) before anything is timed.
    if producer is not None:
        producer.produce(bench.raw_topic, value=encoded[0][1], key=encoded[0][0])
        producer.flush(30)
    elif publisher is not None:
        publisher.publish(res.code, pool[:1])
    sent = owed = 0.0
    i = 0
    start = time.monotonic()
    next_sample = start + WARM_UP
    while sent < samples:
        owed += per_tick
        batch = int(owed)
        owed -= batch
        if batch:
            if producer is not None:
                for _ in range(batch):
                    key, value = encoded[i % len(encoded)]
                    producer.produce(bench.raw_topic, value=value, key=key)
                    i += 1
                producer.poll(0)
            elif publisher is not None:
                publisher.publish(res.code, [pool[(i + j) % len(pool)] for j in range(batch)])
                i += batch
        now = time.monotonic()
        if now >= next_sample:
            next_sample += SAMPLE_EVERY
            sent += 1
            if producer is not None:
                stamp = f"{tag}:{time.monotonic()!r}".encode()
                producer.produce(
                    bench.raw_topic, value=sample_value, key=b"sample", headers=[("sent", stamp)]
                )
                producer.poll(0)
            elif publisher is not None:
                publisher.publish(
                    res.code, [{**sample, SAMPLE_ITEM: f"{tag}:{time.monotonic()!r}"}]
                )
        pause = start + tick * (i + 1) / max(per_tick, 1e-9) if per_tick >= 1 else now + tick
        time.sleep(max(0.0, min(pause, next_sample) - time.monotonic()))
    if producer is not None:
        producer.flush(30)
    if publisher is not None:
        publisher.close()


def _stamp(value: str | bytes | None, tag: str) -> float | None:
    """The send time in a sample of this phase, else None."""
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else value
    mark, sep, sent = text.partition(":")
    return float(sent) if sep and mark == tag else None


def latency(bench: Bench, mode: str, rate: float, samples: int) -> list[float]:
    """Seconds from send to hand-over of ``samples`` samples, under ``rate`` records/s."""
    bench = replace(bench, which=1)  # the latency resource, its own topics
    found: list[float] = []
    tag = uuid.uuid4().hex[:8]
    ctx = multiprocessing.get_context("spawn")
    loader = ctx.Process(target=_load, args=(bench, mode, rate, samples, tag), daemon=True)
    limit = WARM_UP + samples * SAMPLE_EVERY * 4 + 60
    if mode == "raw":
        consumer = bench.consumer(**{"auto.offset.reset": "latest"})
        consumer.subscribe([bench.raw_topic])
        loader.start()
        deadline = time.monotonic() + limit
        while len(found) < samples and time.monotonic() < deadline:
            msg = consumer.poll(1.0)  # what a user of the raw client writes
            if msg is None or msg.error():
                continue
            now = time.monotonic()
            for name, value in msg.headers() or ():
                sent = _stamp(value, tag) if name == "sent" else None
                if sent is not None:
                    found.append(now - sent)
        consumer.close()
    else:
        subscriber = Subscriber(
            bench.session(), bench.res.code, "administrative-basis",
            group_suffix=uuid.uuid4().hex[:6],
        )  # fmt: skip

        def handler(record: Record) -> None:
            sent = _stamp((record.value or {}).get(SAMPLE_ITEM), tag)
            if sent is not None:
                found.append(time.monotonic() - sent)
                if len(found) >= samples:
                    subscriber.stop()

        loader.start()
        subscriber.run(handler, timeout=limit)
    loader.join(60)
    if len(found) < samples:
        raise RuntimeError(f"latency {mode}: {len(found)} of {samples} samples arrived")
    return found


def quantiles(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100)
    return cuts[49], cuts[98]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=1024, help="target encoded value bytes")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each path")
    cores = len(os.sched_getaffinity(0))
    parser.add_argument("--max-workers", type=int, default=cores, help=f"default {cores}")
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument(
        "--profile", action="store_true", help="print cProfile's top functions of one SDK publish"
    )
    parser.add_argument(
        "--produce-only", action="store_true", help="stop after the produce figures and profile"
    )
    args = parser.parse_args(argv)

    settings, stop = connect()
    admin = kafka_clients.admin_client(settings)
    tag = uuid.uuid4().hex[:8]
    user, password = f"bench-{tag}", secrets.token_urlsafe(12)
    res = bench_resource(args.size)
    lat_res = replace(res, code=f"10101/{CODE}-000002", name="基准测试资源（时延）")
    spec = CatalogSpec((Department(user, CODE, "基准测试部门", "city", "320400"),), (res, lat_res))
    naming = Naming(f"bench{tag}.")  # the benchmark's own namespace
    bench = Bench(settings, user, password, spec, naming, f"bench{tag}.raw", f"bench{tag}.peer")
    lat_raw = f"bench{tag}.raw-latency"
    topics = [
        *(bench.raw_topic, bench.peer_topic, lat_raw, bench.sdk_topic),
        *(naming.resource_topic(lat_res.code), naming.dlq_topic(user), naming.audit_topic),
    ]
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
        encoded = [
            (record_key(res, r), wire.encode_single_object(res, envelope(res, r))) for r in records
        ]
        nbytes = sum(len(v) for _, v in encoded)
        n = args.records
        line("records", f"{n:,} x {nbytes / n:,.0f} bytes (encoded value)")
        line("producer settings", f"idempotent, acks=all, {PRODUCER_CONFIG}")
        line("cores available", str(cores))
        registry = bench.registry()
        producer = bench.producer(**PRODUCER_CONFIG)
        peer = bench.peer_producer(registry)
        # Warm-up, untimed: connections, the idempotent producer id, the schema registered.
        raw_produce(producer, bench.raw_topic, encoded[:1])
        peer_produce(peer, bench.peer_topic, records[:1], res)
        sdk_produce(bench, records[:1])
        timing: dict[str, list[float]] = {"raw": [], "peer": [], "sdk": []}
        cpu: dict[str, list[float]] = {"raw": [], "peer": [], "sdk": []}
        workers = list(range(2, args.max_workers + 1))
        for w in workers:
            timing[f"sdk{w}"] = []
        for _ in range(args.rounds):  # alternating, so drifts of the machine hit every path
            paths: list[tuple[str, Callable[[], float]]] = [
                ("raw", lambda: raw_produce(producer, bench.raw_topic, encoded)),
                ("peer", lambda: peer_produce(peer, bench.peer_topic, records, res)),
                ("sdk", lambda: sdk_produce(bench, records)),
            ]
            for path, run in paths:
                before = time.thread_time()
                timing[path].append(run())
                cpu[path].append(time.thread_time() - before)
            for w in workers:
                timing[f"sdk{w}"].append(sdk_produce(bench, records, workers=w))
        print("== produce (median of runs)")
        raw_p = rates("raw (pre-encoded)", n, nbytes, timing["raw"])
        peer_p = rates("peer (SerializingProducer+AvroSer.)", n, nbytes, timing["peer"])
        sdk_p = rates("SDK (validate+Avro), 1 process", n, nbytes, timing["sdk"])
        per_workers = {1: sdk_p}
        for w in workers:
            per_workers[w] = rates(f"SDK --workers {w}", n, nbytes, timing[f"sdk{w}"])
        line("ratio SDK/raw, SDK/peer, peer/raw", f"{sdk_p / raw_p:.2f}, {sdk_p / peer_p:.2f}, "
             f"{peer_p / raw_p:.2f}")  # fmt: skip
        for w, rate in per_workers.items():
            line(f"workers {w}: rate, vs 1 process", f"{rate:,.0f} records/s, {rate / sdk_p:.2f}x")
        # The calling thread's CPU time per record (client threads excluded): what one process
        # can do per core, and steadier than the rates when other processes share the cores.
        per = {path: statistics.median(values) / n * 1e6 for path, values in cpu.items()}
        line("calling thread CPU, µs/record", f"raw {per['raw']:.1f}, peer {per['peer']:.1f}, "
             f"SDK {per['sdk']:.1f}")  # fmt: skip
        line("SDK vs peer by that CPU (aim >= 1.5)", f"{per['peer'] / per['sdk']:.2f}x")
        print("== single-process cost per record")
        profile(
            bench,
            records[: min(n, 20_000)],
            registry,
            statistics.median(timing["raw"]) / n * min(n, 20_000),
        )
        if args.profile:
            profiled(bench, records)
        if args.produce_only:
            return 0

        print("== consume (median of runs; every path read its own topic of the same records)")
        total = n * args.rounds + 1  # each topic holds every round's records and the warm-up
        cons: dict[str, list[float]] = {"raw": [], "peer": [], "sdk": []}
        for _ in range(args.rounds):
            cons["raw"].append(raw_consume(bench, bench.raw_topic, total) * n / total)
            cons["peer"].append(peer_consume(bench, registry, total) * n / total)
            cons["sdk"].append(sdk_consume(bench, total) * n / total)
        raw_c = rates("raw", n, nbytes, cons["raw"])
        peer_c = rates("peer (DeserializingConsumer+AvroDe.)", n, nbytes, cons["peer"])
        sdk_c = rates("SDK (Subscriber: decode, commit, audit)", n, nbytes, cons["sdk"])
        line("ratio SDK/raw, SDK/peer, peer/raw", f"{sdk_c / raw_c:.2f}, {sdk_c / peer_c:.2f}, "
             f"{peer_c / raw_c:.2f}")  # fmt: skip

        load = 0.5 * min(sdk_p, sdk_c)
        print(f"== latency, sent -> handed to the application ({args.latency_samples} samples, "
              f"one every {SAMPLE_EVERY * 1000:.0f} ms; load = half the SDK's max, {load:,.0f} "
              "records/s)")  # fmt: skip
        bench_lat = replace(bench, raw_topic=lat_raw)
        results: dict[tuple[str, str], tuple[float, float]] = {}
        for name, rate in (("idle", 0.0), ("50% load", load)):
            for mode in ("raw", "sdk"):
                results[(mode, name)] = quantiles(
                    latency(bench_lat, mode, rate, args.latency_samples)
                )
        for name in ("idle", "50% load"):
            (r50, r99), (s50, s99) = results[("raw", name)], results[("sdk", name)]
            line(
                f"{name}: raw produce -> poll", f"p50 {r50 * 1e3:6.1f} ms  p99 {r99 * 1e3:6.1f} ms"
            )
            line(
                f"{name}: SDK publish -> handler",
                f"p50 {s50 * 1e3:6.1f} ms  p99 {s99 * 1e3:6.1f} ms",
            )
            verdict = "met" if s99 <= 2 * r99 else "NOT met"
            line(f"{name}: p99 SDK/raw (aim <= 2)", f"{s99 / r99:.2f} ({verdict})")
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
