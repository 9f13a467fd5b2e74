"""Lookups/s and latency of the lookup service beside an in-process raw read; download rows/s.

    python -m benchmarks.lookup_bench --keys 1000000

Against the configured cluster (e.g. GOVBUS_STATE_DIR/GOVBUS_BROKER_PORT of a local one, with
`govbus broker start`), in a namespace of its own that is removed afterwards:

1. reconciles a one-resource catalog (a 10-item population resource, 2 partitions) with the
   lookup service's user and the audit topic; produces ``--keys`` records (one per key);
2. raw baseline, in this process: a plain consumer fills the service's store
   (``govbus.lookup.store.ResourceState``) with every record: the store's memory per million
   keys (RSS growth) and the load rate; then random single reads from it with the decoding and
   the rights filter a lookup does (``get`` + ``View.shape``): reads/s and p50/p99, no HTTP,
   no audit;
3. starts one service instance (``benchmarks.lookup_server``: the code of `govbus lookup
   serve`) as a subprocess, waits until it has loaded every partition (its RSS then), and
   drives it from this process with an aiohttp client on uvloop on 127.0.0.1: the HTTP floor
   (``GET /health``: the server's and the client's HTTP cost alone), the maximum
   single-lookup rate (closed loop, ``--concurrency`` requests in flight, ``--requests`` in
   all), then an open loop at half that rate for ``--seconds``: p50/p99 latency at 50% load
   (and the same client on ``GET /health`` at that rate: its own tail), measured again with
   vegeta (the Go load generator an operator would use; on the PATH, or
   built once with ``go install``); then 100-key batches. Every lookup is audited (one event
   per query, acknowledged before the answer);
4. downloads the resource as its provider to CSV in a process of its own, as `govbus download`
   runs (``benchmarks.lookup_download``: ``govbus.lookup.download``): rows/s, beside
   the raw read of the same snapshot (consume and keep the newest value per key, no decoding or
   writing).

Client and server share the machine's cores: the HTTP figures are for both on one host.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import decimal
import gc
import json
import os
import random
import resource as rlimit
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp
import uvloop
from confluent_kafka import Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from govbus.broker import admin as kafka_admin
from govbus.catalog.yaml_io import dump_yaml
from govbus.lookup.apikeys import issue_keys, read_key
from govbus.lookup.download import SNAPSHOT_READ_CONFIG, latest_values, stated_offsets
from govbus.lookup.rights import View
from govbus.lookup.store import ResourceState
from govbus.reconcile.desired import desired_state
from govbus.reconcile.plan import Scope, apply, make_plan, read_actual
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary import wire
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.config import Settings, load_settings
from govbus.vocabulary.identifiers import uscc_check_char
from govbus.vocabulary.naming import Naming
from govbus.vocabulary.partitioning import partition_of
from govbus.vocabulary.secrets import PasswordStore
from govbus.vocabulary.session import DepartmentSession
from govbus.vocabulary.spec import CatalogSpec, Department, InfoItem, Resource, ResourceKey

REPO = Path(__file__).resolve().parent.parent
PARTITIONS = 2
ITEMS = (
    InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),
    InfoItem("姓名", "name", "C", 50),
    InfoItem("性别", "gender", "C", 1),
    InfoItem("出生日期", "birth", "D"),
    InfoItem("民族", "ethnicity", "C", 20),
    InfoItem("手机号码", "phone", "C", 11),
    InfoItem("住址", "address", "C", 200),
    InfoItem("婚姻状况", "marital", "C", 10),
    InfoItem("文化程度", "education", "C", 20),
    InfoItem("补贴金额", "subsidy", "Y"),
)


def _spec(sfx: str) -> CatalogSpec:
    body = "113204000000000" + "01"
    gaj = Department(f"b{sfx}-gaj", body + uscc_check_char(body), "市公安局", "city", "320400")
    res = Resource(
        code=f"10101/{gaj.code}-000001",
        name="人口基本信息",
        provider=gaj.code,
        abstract="benchmark",
        format="database",
        category=("人口",),
        items=ITEMS,
        key=ResourceKey(("citizen_id",), "natural-person"),
        share_type="unconditional",
        update_cycle="daily",
        publish_date=dt.date(2026, 1, 1),
    )
    return CatalogSpec((gaj,), (res,))


def citizen_id(n: int) -> str:
    born = dt.date(1940, 1, 1) + dt.timedelta(days=n // 1000)
    body = f"320402{born:%Y%m%d}{n % 1000:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


def _payload(n: int) -> dict[str, object]:
    return {
        "citizen_id": citizen_id(n),
        "name": "欧阳娜娜",
        "gender": "2",
        "birth": dt.date(1990, 1, 1),
        "ethnicity": "汉族",
        "phone": f"138{n % 10**8:08d}",
        "address": f"江苏省常州市天宁区青果巷{n % 997}号",
        "marital": "已婚",
        "education": "大学本科",
        "subsidy": decimal.Decimal("1234.50"),
    }


def produce(
    settings: Settings, user: str, password: str, topic: str, res: Resource, n: int
) -> float:
    producer = kafka_clients.producer(
        settings,
        user,
        password,
        **{
            "linger.ms": 50,
            "batch.size": 1_000_000,
        },
    )
    at = dt.datetime(2026, 1, 2, 9, 0, tzinfo=CHINA_TZ)
    started = time.perf_counter()
    for i in range(n):
        value = wire.encode_upsert(
            res,
            provider=res.provider,
            catalog_version=1,
            event_time=at,
            trace_id="bench",
            payload=_payload(i),
        )
        while True:
            try:
                producer.produce(topic, key=citizen_id(i).encode(), value=value)
                break
            except BufferError:
                producer.poll(0.1)
        if i % 100_000 == 0:
            producer.poll(0)
            print(f"  produced {i}", file=sys.stderr, flush=True)
    assert producer.flush(120) == 0, "records not acknowledged"
    return n / (time.perf_counter() - started)


def rss_mib(pid: int | None = None) -> float:
    path = f"/proc/{pid or os.getpid()}/status"
    for line in Path(path).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def p50_p99_ms(latencies: list[float]) -> tuple[float, float]:
    """The median and 99th percentile of latencies in s, in ms."""
    return pct(latencies, 0.5) * 1e3, pct(latencies, 0.99) * 1e3


def raw_baseline(
    settings: Settings, topic: str, spec: CatalogSpec, n: int, reads: int
) -> dict[str, float]:
    res = spec.resources[0]
    gc.collect()
    before = rss_mib()
    state = ResourceState(res, wire.SchemaCatalog.build(spec))
    consumer = Consumer(
        {
            **kafka_clients.admin_config(settings),
            "group.id": f"bench-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.max.bytes": 52428800,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    started, got, ends = time.perf_counter(), 0, 0
    while ends < PARTITIONS:
        for msg in kafka_clients.arrived(consumer, 5000, 5):
            if msg.error():
                ends += 1
                continue
            key = (msg.key() or b"").decode()
            state.put(int(msg.partition() or 0), key, msg.value(), int(msg.offset() or 0))
            got += 1
    load_rate = got / (time.perf_counter() - started)
    consumer.close()
    gc.collect()
    grown = rss_mib() - before
    view = View("full", tuple(i.code for i in res.items))
    keys = [citizen_id(random.randrange(n)) for _ in range(reads)]
    parts = [partition_of(k, PARTITIONS) for k in keys]
    lat = []
    started = time.perf_counter()
    for p, k in zip(parts, keys, strict=True):
        t = time.perf_counter()
        found = state.get(p, k)
        assert found is not None
        view.shape(found.payload)
        lat.append(time.perf_counter() - t)
    rate = reads / (time.perf_counter() - started)
    del state
    gc.collect()
    p50, p99 = p50_p99_ms(lat)
    return {
        "load_rate": load_rate,
        "mib": grown,
        "records": got,
        "rate": rate,
        "p50_ms": p50,
        "p99_ms": p99,
    }


async def _one(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], since: float | None = None
) -> float:
    """One GET's latency in s, from ``since`` (an open loop's scheduled send time) or now."""
    t = time.perf_counter() if since is None else since
    async with session.get(url, headers=headers) as resp:
        await resp.read()
        if resp.status != 200:
            raise SystemExit(f"lookup answered {resp.status}: {await resp.text()}")
    return time.perf_counter() - t


async def closed_loop(
    s: aiohttp.ClientSession,
    url: Callable[[], str],
    headers: dict[str, str],
    requests: int,
    concurrency: int,
) -> tuple[float, list[float]]:
    """``requests`` GETs of ``url()``, ``concurrency`` in flight: (requests/s, latencies in s)."""
    remaining = requests
    lat: list[float] = []

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            lat.append(await _one(s, url(), headers))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return requests / (time.perf_counter() - started), lat


async def open_loop(
    s: aiohttp.ClientSession,
    url: Callable[[], str],
    headers: dict[str, str],
    rate: float,
    seconds: float,
) -> tuple[float, list[float]]:
    """GETs of ``url()`` sent at ``rate`` for ``seconds`` whatever the answers' pace, each
    latency counted from the request's scheduled send time (a lag of this client's own loop
    counts too): (requests/s sent, latencies in s)."""
    count = int(rate * seconds)
    tasks = []
    t0 = time.perf_counter()
    for i in range(count):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_one(s, url(), headers, due)))
    sent = count / (time.perf_counter() - t0)
    return sent, list(await asyncio.gather(*tasks))


# The service's own latency histograms read at half load: from the handler's start to the
# answer, and of that the wait for the audit event's acknowledgement.
HISTOGRAMS = {
    "server": ("govbus_lookup_seconds", {"kind": "single"}),
    "audit": ("govbus_lookup_audit_seconds", {}),
}


def _buckets(text: str, histogram: str, labels: dict[str, str]) -> dict[float, float]:
    """Cumulative count per bucket bound of one histogram in a Prometheus text exposition."""
    return {
        float(sample.labels["le"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == f"{histogram}_bucket"
        and all(sample.labels.get(k) == v for k, v in labels.items())
    }


def histograms(text: str) -> dict[str, dict[float, float]]:
    """``HISTOGRAMS`` as a Prometheus text exposition of the service shows them."""
    return {k: _buckets(text, h, labels) for k, (h, labels) in HISTOGRAMS.items()}


async def server_buckets(s: aiohttp.ClientSession, base: str) -> dict[str, dict[float, float]]:
    """``HISTOGRAMS`` as the service's ``/metrics`` shows them now."""
    async with s.get(f"{base}/metrics") as resp:
        return histograms(await resp.text())


def server_quantiles(
    before: dict[str, dict[float, float]],
    after: dict[str, dict[float, float]],
    out: dict[str, float],
    prefix: str,
) -> None:
    """p50/p99 bounds (ms) of ``HISTOGRAMS`` between two scrapes, as ``<prefix>_<name>_p<q>_ms``."""
    for k in HISTOGRAMS:
        for q in (50, 99):
            out[f"{prefix}_{k}_p{q}_ms"] = bucket_quantile(before[k], after[k], q / 100) * 1e3


def bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The upper bound of the bucket holding quantile ``q`` of the lookups between the two
    scrapes (a histogram gives a bound, not a value)."""
    counts = sorted((bound, after[bound] - before.get(bound, 0.0)) for bound in after)
    total = counts[-1][1] if counts else 0.0
    for bound, count in counts:
        if total and count >= q * total:
            return bound
    return float("nan")


async def http_phase(
    base: str, code: str, headers: dict[str, str], n: int, args: argparse.Namespace
) -> dict[str, float]:
    out: dict[str, float] = {}
    conn = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=30)) as s:

        def url() -> str:
            return f"{base}/v1/resources/{code}/records/{citizen_id(random.randrange(n))}"

        for _ in range(200):  # warm-up: connections, chain heads
            await _one(s, url(), headers)
        # 0. the HTTP floor: GET /health (aiohttp and the client, no lookup, no audit)
        out["floor_rate"], _ = await closed_loop(
            s, lambda: f"{base}/health", {}, args.requests // 4, args.concurrency
        )
        # 1. maximum: closed loop, `concurrency` in flight, `requests` in all
        out["max_rate"], lat = await closed_loop(s, url, headers, args.requests, args.concurrency)
        out["max_p50_ms"], out["max_p99_ms"] = p50_p99_ms(lat)
        # 2. half load: open loop at 50% of the maximum for `seconds`
        before = await server_buckets(s, base)
        rate = out["max_rate"] / 2
        out["half_rate"], lat = await open_loop(s, url, headers, rate, args.seconds)
        out["half_p50_ms"], out["half_p99_ms"] = p50_p99_ms(lat)
        server_quantiles(before, await server_buckets(s, base), out, "half")
        # the same client at that rate on GET /health: its own tail and the machine's
        _, lat = await open_loop(s, lambda: f"{base}/health", {}, rate, args.seconds)
        out["half_floor_p50_ms"], out["half_floor_p99_ms"] = p50_p99_ms(lat)
        # 3. batches of 100 keys
        batches = max(20, args.requests // 100)
        remaining = batches

        async def batcher() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                keys = [citizen_id(random.randrange(n)) for _ in range(100)]
                async with s.post(
                    f"{base}/v1/resources/{code}/lookup", json={"keys": keys}, headers=headers
                ) as resp:
                    body = await resp.json()
                    assert resp.status == 200 and len(body["records"]) == len(set(keys)), body

        started = time.perf_counter()
        await asyncio.gather(*(batcher() for _ in range(4)))
        out["batch_keys_rate"] = batches * 100 / (time.perf_counter() - started)
    return out


VEGETA = "github.com/tsenart/vegeta/v12@v12.13.0"


def vegeta_binary(cache_dir: Path) -> str | None:
    """vegeta, the open-loop HTTP load generator an operator would reach for: ``$GOVBUS_VEGETA``,
    on the PATH, or built once with ``go install`` into the cache; None without Go."""
    found = os.environ.get("GOVBUS_VEGETA") or shutil.which("vegeta")
    if found:
        return found
    target = cache_dir / "tools" / "bin" / "vegeta"
    go = shutil.which("go")
    if not target.exists() and go is not None:
        print(f"building {VEGETA} with go install ...", file=sys.stderr, flush=True)
        env = {**os.environ, "GOBIN": str(target.parent)}
        subprocess.run([go, "install", VEGETA], env=env, capture_output=True, timeout=900)
    return str(target) if target.exists() else None


def vegeta_half_load(
    vegeta: str, base: str, code: str, headers: dict[str, str], n: int, rate: float, seconds: float,
    connections: int, tmp: Path, *, floor: bool = False,
) -> dict[str, float]:  # fmt: skip
    """The half-load phase again, driven by vegeta (Go, outside this Python process) at ``rate``
    with at most ``connections`` connections: its p50/p99 and the service's own. ``floor``: the
    same load on ``GET /health`` instead (no lookup, no audit), the tail this machine gives any
    request of the service at that rate."""
    targets = tmp / "targets.txt"
    with targets.open("w", encoding="utf-8") as fh:
        for _ in range(20_000):
            if floor:
                fh.write(f"GET {base}/health\n\n")
                continue
            fh.write(f"GET {base}/v1/resources/{code}/records/{citizen_id(random.randrange(n))}\n")
            fh.writelines(f"{k}: {v}\n" for k, v in headers.items())
            fh.write("\n")

    def scrape() -> dict[str, dict[float, float]]:
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as r:
            return histograms(r.read().decode())

    limits = [f"-{flag}={connections}" for flag in ("workers", "max-workers", "connections",
                                                     "max-connections")]  # fmt: skip
    attack = [vegeta, "attack", f"-targets={targets}", f"-rate={rate:.0f}", f"-duration={seconds}s",
              *limits]  # fmt: skip
    before = scrape()
    results = subprocess.run(attack, capture_output=True, check=True, timeout=seconds + 120).stdout
    report = subprocess.run(
        [vegeta, "report", "-type=json"], input=results, capture_output=True, check=True
    )
    after = scrape()
    got = json.loads(report.stdout)
    if got["success"] < 1.0:
        raise SystemExit(f"vegeta: not every lookup answered 200: {got['status_codes']}")
    out = {
        "rate": got["rate"],
        "p50_ms": got["latencies"]["50th"] / 1e6,
        "p99_ms": got["latencies"]["99th"] / 1e6,
        "max_ms": got["latencies"]["max"] / 1e6,
    }
    if not floor:
        server_quantiles(before, after, out, "vegeta")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--reads", type=int, default=200_000, help="raw in-process reads")
    parser.add_argument("--requests", type=int, default=20_000, help="closed-loop lookups")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15.0, help="half-load duration")
    parser.add_argument("--port", type=int, default=35492 + 100)
    args = parser.parse_args(argv)
    n = args.keys

    settings = load_settings()
    admin = kafka_clients.admin_client(settings)
    sfx = uuid.uuid4().hex[:8]
    naming = Naming(f"b{sfx}.")
    secrets = PasswordStore(settings.state_dir, naming)
    spec = _spec(sfx)
    res, dept = spec.resources[0], spec.departments[0]
    scope = Scope.namespace(naming, (f"b{sfx}-",))
    # With the platform apps: the audit topic and the lookup service's user and bindings.
    desired = desired_state(spec, partitions=PARTITIONS, naming=naming)
    apply(make_plan(desired, read_actual(admin, scope=scope)), admin, secrets)
    topic = naming.resource_topic(res.code)
    tmp = Path(tempfile.mkdtemp(prefix="lookup-bench-"))
    server: subprocess.Popen[bytes] | None = None
    try:
        print(f"producing {n} records to {topic} ...", file=sys.stderr, flush=True)
        prod_rate = produce(settings, dept.id, secrets(dept.id), topic, res, n)
        print(f"produced: {prod_rate:,.0f} records/s", flush=True)

        raw = raw_baseline(settings, topic, spec, n, args.reads)
        print(
            f"raw store (in-process): loaded {raw['records']:,.0f} records at "
            f"{raw['load_rate']:,.0f}/s; memory {raw['mib']:,.0f} MiB = "
            f"{raw['mib'] / (raw['records'] / 1e6):,.0f} MiB per million keys",
            flush=True,
        )
        print(
            f"raw reads (get + decode + rights filter, no HTTP): {raw['rate']:,.0f}/s, "
            f"p50 {raw['p50_ms']:.3f} ms, p99 {raw['p99_ms']:.3f} ms",
            flush=True,
        )

        issue_keys(settings.state_dir, [dept.id])
        api_key = read_key(settings.state_dir, dept.id)
        catalog = tmp / "catalog.yaml"
        dump_yaml(spec, catalog)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        started = time.perf_counter()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.lookup_server",
                str(catalog),
                "--namespace",
                naming.prefix,
                "--port",
                str(args.port),
            ],
            env=env,
        )
        base = f"http://127.0.0.1:{args.port}"
        deadline = time.monotonic() + 600
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=5) as r:
                    if r.status == 200 and json.loads(r.read())["records"] >= n:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the lookup server did not load its partitions within 600 s")
            time.sleep(0.2)  # the figure's resolution
        load_s = time.perf_counter() - started
        server_rss = rss_mib(server.pid)
        print(
            f"service: start + load of {n:,} keys {load_s:.1f} s "
            f"({n / load_s:,.0f} records/s); RSS {server_rss:,.0f} MiB "
            f"({server_rss / (n / 1e6):,.0f} MiB per million keys, interpreter included)",
            flush=True,
        )
        headers = {
            "Authorization": f"Bearer {api_key}",
            "X-Govbus-Purpose": "work-reference",
            "X-Govbus-Case-Number": "BENCH-1",
            "X-Govbus-End-User": "bench",
        }
        # The client is the measuring instrument: on uvloop like the service, and with what
        # it holds so far frozen out of its garbage collector, so its own pauses are not
        # counted as the service's latency.
        gc.collect()
        gc.freeze()
        h = uvloop.run(http_phase(base, res.code, headers, n, args))
        gc.unfreeze()
        print(
            f"HTTP single lookups, max (closed loop, {args.concurrency} in flight, "
            f"{args.requests} requests): {h['max_rate']:,.0f}/s (p50 {h['max_p50_ms']:.1f} ms,"
            f" p99 {h['max_p99_ms']:.1f} ms)",
            flush=True,
        )
        print(
            f"HTTP single lookups at 50% load (open loop, {args.seconds:.0f} s): "
            f"{h['half_rate']:,.0f}/s, p50 {h['half_p50_ms']:.1f} ms, "
            f"p99 {h['half_p99_ms']:.1f} ms; in the service (its histogram: from the handler's "
            f"start to the answer) p50 <= {h['half_server_p50_ms']:g} ms, p99 <= "
            f"{h['half_server_p99_ms']:g} ms, of which the audit event's acknowledgement p50 <= "
            f"{h['half_audit_p50_ms']:g} ms, p99 <= {h['half_audit_p99_ms']:g} ms; the same "
            f"client at that rate on GET /health: p50 {h['half_floor_p50_ms']:.1f} ms, p99 "
            f"{h['half_floor_p99_ms']:.1f} ms",
            flush=True,
        )
        vegeta = vegeta_binary(settings.cache_dir)
        if vegeta is None:
            print("vegeta: not available (no Go to build it): half load measured above only")
        else:
            v = vegeta_half_load(
                vegeta, base, res.code, headers, n, h["max_rate"] / 2, args.seconds,
                args.concurrency, tmp,
            )  # fmt: skip
            print(
                f"HTTP single lookups at 50% load driven by vegeta ({VEGETA.split('@')[1]}, open "
                f"loop, {args.concurrency} connections, {args.seconds:.0f} s): {v['rate']:,.0f}/s, "
                f"p50 {v['p50_ms']:.1f} ms, p99 {v['p99_ms']:.1f} ms, max {v['max_ms']:.1f} ms; "
                f"in the service p50 <= {v['vegeta_server_p50_ms']:g} ms, p99 <= "
                f"{v['vegeta_server_p99_ms']:g} ms (audit acknowledgement p99 <= "
                f"{v['vegeta_audit_p99_ms']:g} ms)",
                flush=True,
            )
            f = vegeta_half_load(
                vegeta, base, res.code, headers, n, h["max_rate"] / 2, args.seconds,
                args.concurrency, tmp, floor=True,
            )  # fmt: skip
            print(
                f"floor at that rate, GET /health driven by vegeta alike (no lookup, no audit): "
                f"{f['rate']:,.0f}/s, p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms, max "
                f"{f['max_ms']:.1f} ms; ratio lookup p99 / floor p99 "
                f"{v['p99_ms'] / f['p99_ms']:.1f}",
                flush=True,
            )
        print(
            f"HTTP batch lookups (100 keys, 4 in flight): {h['batch_keys_rate']:,.0f} keys/s",
            flush=True,
        )
        print(
            f"HTTP floor, GET /health (same client, no lookup, no audit): "
            f"{h['floor_rate']:,.0f}/s; ratio lookups / floor "
            f"{h['max_rate'] / h['floor_rate']:.2f}",
            flush=True,
        )
        print(
            f"ratio HTTP max / raw in-process reads: {h['max_rate'] / raw['rate']:.3f}", flush=True
        )
        server.send_signal(signal.SIGINT)
        server.wait(60)
        server = None

        # 4. download as the provider, beside the raw read of the same snapshot
        session = DepartmentSession(
            settings, dept.id, secrets(dept.id), spec, catalog_version=1, naming=naming
        )
        consumer = session.consumer("bench-raw", **SNAPSHOT_READ_CONFIG)  # as the download
        started = time.perf_counter()
        offsets = stated_offsets(consumer, topic)
        latest = latest_values(consumer, topic, offsets)
        raw_s = time.perf_counter() - started
        consumer.close()
        rows = len(latest)
        del latest
        # In a process of its own, as `govbus download` runs.
        out = tmp / "people.csv"
        started = time.perf_counter()
        answer = subprocess.run(
            [sys.executable, "-m", "benchmarks.lookup_download", str(catalog), "--namespace",
             naming.prefix, "--department", dept.id, "--output", str(out)],
            env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        whole_s = time.perf_counter() - started
        got = json.loads(answer.stdout.strip().splitlines()[-1])
        download_rate = got["rows"] / got["seconds"]
        print(
            f"download CSV of {got['rows']:,} rows: {got['seconds']:.1f} s = "
            f"{download_rate:,.0f} rows/s ({out.stat().st_size / 2**20:,.0f} MiB; the process "
            f"with its start {whole_s:.1f} s); raw snapshot read (consume + newest per key, no "
            f"decode/write): {rows / raw_s:,.0f} rows/s; ratio download/raw "
            f"{download_rate / (rows / raw_s):.2f}",
            flush=True,
        )
        print(
            "download phases: "
            + ", ".join(f"{name} {s:.1f} s" for name, s in got["phases"].items()),
            flush=True,
        )
        print(
            "peak RSS of this process: "
            f"{rlimit.getrusage(rlimit.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB"
        )
    finally:
        if server is not None and server.poll() is None:
            server.kill()
        left = read_actual(admin, scope=scope)
        kafka_admin.delete_acls(admin, left.acls)
        for user in left.users:
            kafka_admin.delete_scram_user(admin, user)
        for t in left.topics:
            kafka_admin.delete_topic(admin, t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
