"""The two designs of the lookup measured side by side (issue 14 asked for it before choosing).

    python -m benchmarks.lookup_designs --keys 50000

Against the configured cluster, in a namespace of its own removed afterwards: one resource
topic (2 partitions) with ``--keys`` records, then, one after the other, each design in a
process of its own on 127.0.0.1:

- **Faust**: a Faust table filled by an agent, served by Faust's web server
  (``benchmarks.faust_table_server``; no authentication, rights or audit);
- **plain**: the lookup service (``benchmarks.lookup_server``, the code of `govbus lookup
  serve`): a confluent-kafka consumer filling the store, aiohttp, with API key, rights filter
  and one acknowledged audit event per lookup.

For each: seconds from start until every key is loaded (records/s), RSS, and single lookups
(closed loop, ``--concurrency`` in flight, ``--requests`` in all): lookups/s, p50, p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
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

from benchmarks.lookup_bench import (
    PARTITIONS,
    _spec,
    citizen_id,
    closed_loop,
    pct,
    produce,
    rss_mib,
)
from govbus.broker import admin as kafka_admin
from govbus.catalog.yaml_io import dump_yaml
from govbus.lookup.apikeys import issue_keys, read_key
from govbus.reconcile.desired import desired_state
from govbus.reconcile.plan import Scope, apply, make_plan, read_actual
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.config import load_settings
from govbus.vocabulary.naming import Naming
from govbus.vocabulary.processes import stop_process
from govbus.vocabulary.secrets import PasswordStore
from govbus.vocabulary.topology import StreamApp

REPO = Path(__file__).resolve().parent.parent


def _wait(check: Callable[[], bool], proc: subprocess.Popen[bytes], what: str) -> float:
    started = time.perf_counter()
    deadline = time.monotonic() + 900
    while True:
        try:
            if check():
                return time.perf_counter() - started
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit(f"{what}: not loaded within 900 s (exit {proc.poll()})")
        time.sleep(0.5)


def _json(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        data: dict[str, object] = json.loads(resp.read())
        return data


async def _drive(
    urls: Callable[[], str], headers: dict[str, str], requests: int, concurrency: int
) -> tuple[float, float, float]:
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(30)) as s:
        await closed_loop(s, urls, headers, 100, 1)  # warm-up
        rate, lat = await closed_loop(s, urls, headers, requests, concurrency)
    return rate, pct(lat, 0.5) * 1e3, pct(lat, 0.99) * 1e3


def _stop(proc: subprocess.Popen[bytes]) -> None:
    stop_process(proc, signal.SIGINT, 60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--port", type=int, default=35492 + 110)
    args = parser.parse_args(argv)
    n = args.keys
    settings = load_settings()
    admin = kafka_clients.admin_client(settings)
    sfx = uuid.uuid4().hex[:8]
    naming = Naming(f"b{sfx}.")
    secrets = PasswordStore(settings.state_dir, naming)
    spec = _spec(sfx)
    res, dept = spec.resources[0], spec.departments[0]
    topic = naming.resource_topic(res.code)
    faust_user = naming.app_user("bench-faust-table")
    faust_app = StreamApp(
        faust_user,
        faust_user,
        "lookup_designs: the Faust design",
        reads=(topic,),
        tables=("records",),
    )
    desired = desired_state(spec, partitions=PARTITIONS, naming=naming, stream_apps=[faust_app])
    scope = Scope.namespace(naming, (f"b{sfx}-",))
    apply(make_plan(desired, read_actual(admin, scope=scope)), admin, secrets)
    tmp = Path(tempfile.mkdtemp(prefix="lookup-designs-"))
    catalog = tmp / "catalog.yaml"
    dump_yaml(spec, catalog)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        rate = produce(settings, dept.id, secrets(dept.id), topic, res, n)
        print(f"{n:,} records produced ({rate:,.0f}/s)", flush=True)

        def key_url(base: str, path: str) -> Callable[[], str]:
            return lambda: f"{base}{path}{citizen_id(random.randrange(n))}"

        # Faust
        port = args.port
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.faust_table_server",
                "--app-user",
                faust_user,
                "--prefix",
                naming.prefix,
                "--topic",
                topic,
                "--catalog",
                str(catalog),
                "--port",
                str(port),
                "--partitions",
                str(PARTITIONS),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        load = _wait(lambda: _json(f"{base}/count")["count"] == n, proc, "Faust table")
        rss = rss_mib(proc.pid)
        f_rate, f50, f99 = asyncio.run(
            _drive(key_url(base, "/get/"), {}, args.requests, args.concurrency)
        )
        print(
            f"Faust table + Faust web: loaded {n:,} keys in {load:.1f} s ({n / load:,.0f}/s, "
            f"start included); RSS {rss:,.0f} MiB; lookups {f_rate:,.0f}/s, p50 {f50:.1f} ms,"
            f" p99 {f99:.1f} ms (no auth, rights or audit)",
            flush=True,
        )
        _stop(proc)

        # plain
        issue_keys(settings.state_dir, [dept.id])
        headers = {
            "Authorization": f"Bearer {read_key(settings.state_dir, dept.id)}",
            "X-Govbus-Purpose": "work-reference",
            "X-Govbus-Case-Number": "BENCH-1",
            "X-Govbus-End-User": "bench",
        }
        port = args.port + 1
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.lookup_server",
                str(catalog),
                "--namespace",
                naming.prefix,
                "--port",
                str(port),
            ],
            env=env,
        )
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        load = _wait(lambda: _json(f"{base}/health")["records"] == n, proc, "lookup service")
        rss = rss_mib(proc.pid)
        p_rate, p50, p99 = asyncio.run(
            _drive(
                key_url(base, f"/v1/resources/{res.code}/records/"),
                headers,
                args.requests,
                args.concurrency,
            )
        )
        print(
            f"plain consumer + aiohttp (the lookup service): loaded {n:,} keys in {load:.1f} s "
            f"({n / load:,.0f}/s, start included); RSS {rss:,.0f} MiB; lookups {p_rate:,.0f}/s,"
            f" p50 {p50:.1f} ms, p99 {p99:.1f} ms (API key, rights filter, audit event "
            "acknowledged per lookup)",
            flush=True,
        )
        _stop(proc)
        print(f"ratio plain/Faust lookups/s: {p_rate / f_rate:.2f}", flush=True)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        left = read_actual(admin, scope=scope)
        kafka_admin.delete_acls(admin, left.acls)
        for user in left.users:
            kafka_admin.delete_scram_user(admin, user)
        for t in left.topics:
            kafka_admin.delete_topic(admin, t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
