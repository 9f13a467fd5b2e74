"""What TLS costs: connection set-up and publish throughput, TLS (SASL_SSL, the only listener
govbus offers) against SASL_PLAINTEXT, on the same broker in the same run.

    python -m benchmarks.tls_bench [--records 100000] [--size 512] [--connects 20] [--rounds 3]

Starts a one-node cluster of its own (state under /tmp/govbus-tls-bench, port 16692, or
GOVBUS_BENCH_STATE_DIR / GOVBUS_BENCH_BROKER_PORT) with, for this benchmark only, a second
listener on port+2 that speaks SASL_PLAINTEXT (``LocalCluster(bench_plaintext_port=...)``; the
CLI never opens one). Both paths use the raw confluent-kafka client govbus's SDK is built on,
as the admin (SCRAM-SHA-512 either way):

- connect: a new client up to its first metadata answer (TCP + TLS handshake + SASL), median
  of ``--connects``;
- publish: ``--records`` records of ``--size`` bytes, idempotent, acks=all, one producer that
  connected before the clock starts (so the handshake is out), median of ``--rounds``,
  alternating TLS and plain, after a 1,000-record warm-up of each (the first idempotent
  producer waits for the coordinator to load).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from govbus.broker import admin as kafka_admin
from govbus.broker.cluster import LocalCluster
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.config import load_settings


def _plain(conf: dict[str, Any], port: int) -> dict[str, Any]:
    out = {k: v for k, v in conf.items() if not k.startswith("ssl.")}
    out["security.protocol"] = "SASL_PLAINTEXT"
    out["bootstrap.servers"] = f"127.0.0.1:{port}"
    return out


def _connect_seconds(conf: dict[str, Any], n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        AdminClient(conf).list_topics(timeout=30)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _publish_rate(conf: dict[str, Any], topic: str, records: int, size: int) -> float:
    producer = Producer({**conf, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5, "batch.size": 1_000_000})  # fmt: skip
    producer.list_topics(topic, timeout=30)  # connected before the clock starts
    value = os.urandom(size)
    start = time.perf_counter()
    for i in range(records):
        while True:
            try:
                producer.produce(topic, key=str(i).encode(), value=value)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(120):
        raise RuntimeError("records not acknowledged within 120 s")
    return records / (time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--connects", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    state = Path(os.environ.get("GOVBUS_BENCH_STATE_DIR", "/tmp/govbus-tls-bench"))
    port = int(os.environ.get("GOVBUS_BENCH_BROKER_PORT", "16692"))
    settings = load_settings(env={"GOVBUS_STATE_DIR": str(state), "GOVBUS_BROKER_PORT": str(port),
                                  **{k: v for k, v in os.environ.items()
                                     if k == "GOVBUS_CACHE_DIR"}})  # fmt: skip
    plain_port = port + 2
    cluster = LocalCluster(settings, bench_plaintext_port=plain_port)
    print(f"starting a one-node cluster on {port} (TLS) and {plain_port} (plain) ...", flush=True)
    cluster.start(timeout=180)
    try:
        settings = replace(settings, bootstrap_servers=cluster.bootstrap_servers)
        tls_conf = kafka_clients.admin_config(settings)
        tls_conf.pop("logger", None)
        plain_conf = _plain(tls_conf, plain_port)
        topic = f"bench.tls.{uuid.uuid4().hex[:6]}"
        kafka_admin.create_topic(kafka_clients.admin_client(settings), topic, partitions=3)
        connect = {"tls": _connect_seconds(tls_conf, args.connects),
                   "plain": _connect_seconds(plain_conf, args.connects)}  # fmt: skip
        for conf in (tls_conf, plain_conf):  # warm-up: the transaction coordinator's first load
            _publish_rate(conf, topic, 1000, args.size)
        rates: dict[str, list[float]] = {"tls": [], "plain": []}
        for _ in range(args.rounds):
            for name, conf in (("tls", tls_conf), ("plain", plain_conf)):
                rates[name].append(_publish_rate(conf, topic, args.records, args.size))
        tls_rate, plain_rate = (statistics.median(rates[k]) for k in ("tls", "plain"))
        mb = args.size / 1e6
        print(
            f"connect to first metadata (median of {args.connects}): TLS "
            f"{connect['tls'] * 1000:.1f} ms, plain {connect['plain'] * 1000:.1f} ms, "
            f"ratio {connect['tls'] / connect['plain']:.2f}x"
        )
        print(
            f"publish {args.records:,} x {args.size} B (median of {args.rounds}): TLS "
            f"{tls_rate:,.0f} rec/s ({tls_rate * mb:,.1f} MB/s), plain {plain_rate:,.0f} rec/s "
            f"({plain_rate * mb:,.1f} MB/s), TLS/plain {tls_rate / plain_rate:.2f}"
        )
        print(f"rounds: TLS {[round(r) for r in rates['tls']]}, plain "
              f"{[round(r) for r in rates['plain']]}")  # fmt: skip
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
