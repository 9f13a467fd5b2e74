"""Observations/s through the verification app on one or more workers, beside raw consume.

    python -m benchmarks.verify_bench --records 20000 [--workers 2]

Against the configured cluster (e.g. GOVBUS_STATE_DIR/GOVBUS_BROKER_PORT of a local one, with
`govbus broker start`), in a namespace of its own that is removed afterwards:

1. reconciles a one-resource catalog with two holders and the verifier's needs;
2. pre-produces N authoritative records and N observations (every ``--mismatch-every``-th
   disagrees on one item);
3. reads the observation topic with a plain confluent-kafka consumer: the raw consume rate;
4. starts ``govbus stream-apps run govbus-verifier`` (``--workers`` subprocesses, default one)
   and times it from the first detect action visible to the last (startup and table recovery
   excluded; the worker also reads the N authoritative records, so it handles 2N events); with
   several workers, from the first detect after every worker holds input partitions (the
   group's rebalances as they join excluded);
5. once caught up, produces ``--latency-samples`` mismatching observations one at a time (the
   next once the previous was detected) and measures the time from each being produced to its
   detect action being visible: p50/p99 of an idle, caught-up worker;
6. stops the verifier and runs a no-op Faust agent (``benchmarks.noop_agent``: an app built
   like every stream app, one worker, in a group of its own) over the same observation topic:
   the events/s a Faust app reaches when it does nothing with them, the baseline a user
   choosing Faust would compare against, and the ratio verifier/no-op.
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import cast

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from govbus.broker import admin as kafka_admin
from govbus.catalog.yaml_io import dump_yaml
from govbus.reconcile.desired import desired_state
from govbus.reconcile.plan import Scope, apply, make_plan, read_actual
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.config import Settings, load_settings
from govbus.vocabulary.identifiers import uscc_check_char
from govbus.vocabulary.naming import Naming
from govbus.vocabulary.processes import stop_process
from govbus.vocabulary.secrets import PasswordStore
from govbus.vocabulary.session import DepartmentSession
from govbus.vocabulary.spec import CatalogSpec, Department, Holder, InfoItem, Resource, ResourceKey
from govbus.vocabulary.topology import StreamApp
from producers.observe import Observer
from producers.publisher import Publisher
from stream_apps.registry import AppContext
from stream_apps.verification.app import needs

REPO = Path(__file__).resolve().parent.parent


def _dept(sfx: str, label: str, n: int) -> Department:
    body = f"11320400{n:09d}"
    return Department(f"b{sfx}-{label}", body + uscc_check_char(body), label, "city", "320400")


def _spec(sfx: str) -> CatalogSpec:
    gaj, mzj = _dept(sfx, "gaj", 1), _dept(sfx, "mzj", 2)
    resource = Resource(
        code=f"10101/{gaj.code}-000001",
        name="人口基本信息",
        provider=gaj.code,
        abstract="benchmark",
        format="database",
        category=("人口",),
        items=(
            InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),
            InfoItem("姓名", "name", "C", 50, compare="text"),
            InfoItem("补贴金额", "amount", "Y", compare="numeric", tolerance=0.01),
            InfoItem("出生日期", "birth", "D", compare="date"),
        ),
        key=ResourceKey(("citizen_id",), "natural-person"),
        share_type="unconditional",
        update_cycle="daily",
        publish_date=dt.date(2026, 1, 1),
        holders=(Holder(mzj.code, ("name", "amount", "birth")),),
    )
    return CatalogSpec((gaj, mzj), (resource,))


def citizen_id(n: int) -> str:
    born = dt.date(1940, 1, 1) + dt.timedelta(days=n // 1000)
    body = f"320402{born:%Y%m%d}{n % 1000:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


def _admin_consumer(settings: Settings, group: str) -> Consumer:
    return Consumer(
        {**kafka_clients.admin_config(settings), "group.id": group,
         "auto.offset.reset": "earliest", "enable.auto.commit": False,
         "fetch.max.bytes": 52428800}
    )  # fmt: skip


def wait_caught_up(settings: Settings, group: str, topics: list[str], partitions: int) -> None:
    probe = _admin_consumer(settings, group)
    tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
    ends = {(tp.topic, tp.partition): probe.get_watermark_offsets(tp, 10)[1] for tp in tps}
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            done = probe.committed(tps, timeout=10)
            if all(tp.offset >= ends[(tp.topic, tp.partition)] for tp in done):
                return
            time.sleep(0.5)
    finally:
        probe.close()
    raise SystemExit(f"the worker did not consume its inputs within 300 s (group {group})")


def raw_consume_rate(settings: Settings, topic: str, partitions: int, total: int) -> float:
    consumer = _admin_consumer(settings, f"bench-raw-{uuid.uuid4().hex[:6]}")
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got, started = 0, time.perf_counter()
    while got < total:
        for msg in consumer.consume(1000, 1.0):
            if not msg.error():
                json.loads(cast(bytes, msg.value()))  # decode, as the app must
                got += 1
    rate = got / (time.perf_counter() - started)
    consumer.close()
    return rate


def members(admin: AdminClient, app: StreamApp) -> int:
    """Members of the app's group that hold input partitions (0 while it is forming)."""
    try:
        group = admin.describe_consumer_groups([app.app_id])[app.app_id].result(timeout=10)
    except KafkaException:  # the coordinator is loading, or the group moving
        return 0
    reads = set(app.reads)
    return sum(
        1 for m in group.members if any(tp.topic in reads for tp in m.assignment.topic_partitions)
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl-C a worker (it commits and leaves its group); killed after 30 s."""
    stop_process(proc, signal.SIGINT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--mismatch-every", type=int, default=10)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1000, help="events per verifier step")
    parser.add_argument("--workers", type=int, default=1, help="verifier worker processes")
    args = parser.parse_args(argv)
    n, k, parts = args.records, args.mismatch_every, args.partitions

    settings = load_settings()
    admin = kafka_clients.admin_client(settings)
    sfx = uuid.uuid4().hex[:8]
    naming = Naming(f"b{sfx}.")  # the benchmark's own namespace
    secrets = PasswordStore(settings.state_dir, naming)
    spec = _spec(sfx)
    resource = spec.resources[0]
    app = needs(spec, AppContext(naming, partitions=parts))
    obs_topic = naming.holder_observation_topic(f"b{sfx}-mzj")
    noop_user = naming.app_user("bench-noop")
    noop = StreamApp(noop_user, noop_user, "verify_bench's no-op baseline", reads=(obs_topic,))
    scope = Scope.namespace(naming, (f"b{sfx}-",))
    desired = desired_state(
        spec, partitions=parts, naming=naming, platform_apps=False, stream_apps=[app, noop]
    )
    apply(make_plan(desired, read_actual(admin, scope=scope)), admin, secrets)
    actions_topic = naming.dispute_actions_topic(app.user)
    worker: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = []
    baseline: subprocess.Popen[bytes] | None = None
    tmp = Path(tempfile.mkdtemp(prefix="verify-bench-"))
    try:
        good = {"name": "张三", "amount": decimal.Decimal("1000.00"), "birth": dt.date(1990, 1, 1)}
        started = time.perf_counter()
        with Publisher(
            DepartmentSession(
                settings,
                f"b{sfx}-gaj",
                secrets(f"b{sfx}-gaj"),
                spec,
                catalog_version=1,
                naming=naming,
            )
        ) as pub:
            pub.publish(resource.code, ({"citizen_id": citizen_id(i), **good} for i in range(n)))
        with Observer(
            DepartmentSession(settings, f"b{sfx}-mzj", secrets(f"b{sfx}-mzj"), spec, naming=naming)
        ) as obs:
            copies = (
                # "\u3000张三 " agrees with "张三" under the text rule (width and outer spaces);
                # "张 三" would not (an inner space), which made every copy a dispute.
                {"citizen_id": citizen_id(i), "name": "李四" if i % k == 0 else "\u3000张三 ",
                 "amount": "1,000.00", "birth": "1990年1月1日"}
                for i in range(n)
            )  # fmt: skip
            obs.observe(resource.code, copies)
        print(f"pre-produced {n} records and {n} observations in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        raw = raw_consume_rate(settings, obs_topic, parts, n)

        catalog = tmp / "catalog.yaml"
        dump_yaml(spec, catalog)
        cmd = [sys.executable, "-m", "govbus.cli", "--state-dir", str(settings.state_dir),
               "stream-apps", "run", "govbus-verifier", "--catalog", str(catalog),
               "--partitions", str(parts), "--option", f"batch={args.batch}",
               "--option", f"prefix={naming.prefix}"]  # fmt: skip
        env = {**os.environ}
        if settings.bootstrap_servers is None:
            env["GOVBUS_BOOTSTRAP_SERVERS"] = kafka_clients.bootstrap_of(settings)
        launched = time.perf_counter()
        workers = [
            subprocess.Popen(cmd, cwd=REPO, env=env, stdout=(tmp / f"worker{w}.log").open("wb"),
                             stderr=subprocess.STDOUT)
            for w in range(args.workers)
        ]  # fmt: skip
        worker = workers[0]
        # With several workers the group rebalances as each joins: the clock starts at the
        # first detect after every worker holds input partitions (None: not yet).
        steady: float | None = time.perf_counter() if args.workers == 1 else None

        expected = len(range(0, n, k))
        mismatching = {citizen_id(i) for i in range(0, n, k)}
        reader = _admin_consumer(settings, f"bench-actions-{uuid.uuid4().hex[:6]}")
        reader.assign([TopicPartition(actions_topic, p, 0) for p in range(parts)])
        seen: set[str] = set()
        first = last = 0.0
        timed = 0  # detections from ``first`` on
        while len(seen) < expected:
            for proc in workers:
                if proc.poll() is not None:
                    logs = "".join(p.read_text() for p in tmp.glob("worker*.log"))
                    raise SystemExit("a worker exited:\n" + logs[-3000:])
            if steady is None and members(admin, app) == args.workers:
                steady = time.perf_counter()
            for msg in reader.consume(1000, 1.0):
                if msg.error():
                    continue
                now = time.perf_counter()
                action = json.loads(cast(bytes, msg.value()))
                if action["action"] == "detect":
                    if steady is not None and now >= steady:
                        first = first or now
                        last = now
                        timed += 1
                    seen.add(action["dispute_id"])
                    if action["key"] not in mismatching:
                        raise SystemExit(f"an agreeing copy was disputed: {action}")
        window = last - first
        # Observations between the first and the last timed detect (mismatches are spread
        # evenly over the keys, and the keys over the partitions).
        through = (timed - 1) * k / window if window > 0 and timed > 1 else float("nan")

        # Caught up means every input consumed (the last detect may come before the last
        # event): wait until the worker's committed offsets reach the ends of its inputs.
        caught_up = time.perf_counter()
        wait_caught_up(settings, app.app_id, list(app.reads), parts)
        done = time.perf_counter()
        # Faust's committed offsets trail processing (measured: tens of seconds after a
        # backlog); counting until they reach the end gives a lower bound of the rate.
        whole = n / (done - first)
        print(f"committed offsets reached the ends {done - caught_up:.1f} s after the last detect")
        latencies = []
        with Observer(
            DepartmentSession(settings, f"b{sfx}-mzj", secrets(f"b{sfx}-mzj"), spec, naming=naming)
        ) as obs:
            # One at a time: each sample is produced once the previous one was detected, so
            # this is the latency of an idle, caught-up worker, not of a queue.
            for i in range(args.latency_samples):
                key = citizen_id(i * k + 1)  # agreed until now
                sent = time.perf_counter()
                obs.observe(resource.code, [{"citizen_id": key, "name": f"王{i}"}])
                deadline = time.monotonic() + 60
                found = False
                while not found and time.monotonic() < deadline:
                    # poll, not consume(n, timeout): that waits for n records or the timeout.
                    polled = reader.poll(0.05)
                    if polled is not None and not polled.error():
                        a = json.loads(cast(bytes, polled.value()))
                        if a["action"] == "detect" and a["key"] == key:
                            latencies.append(time.perf_counter() - sent)
                            found = True
        reader.close()
        cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
        for proc in workers:
            stop(proc)  # the no-op agent runs alone, as the verifier did

        # 6. The no-op agent over the same observation topic, in a group of its own.
        cmd = [sys.executable, "-m", "benchmarks.noop_agent", "--app-user", noop_user,
               "--prefix", naming.prefix, "--topic", obs_topic, "--count", str(n),
               "--batch", str(args.batch)]  # fmt: skip
        env["GOVBUS_STATE_DIR"] = str(settings.state_dir)
        report = tmp / "noop.json"
        cmd += ["--report", str(report)]
        noop_log = (tmp / "noop.log").open("wb")
        baseline = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=noop_log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 300
        while not report.exists():
            if baseline.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the no-op agent did not count its events:\n"
                                 + (tmp / "noop.log").read_text()[-3000:])  # fmt: skip
            time.sleep(0.2)
        time.sleep(0.1)  # written in one call; let it finish
        counted = json.loads(report.read_text())
        noop_rate = counted["after_first_batch"] / counted["seconds"]
        stop(baseline)

        print(
            f"observations: {n}, mismatching: {expected}, partitions: {parts}, "
            f"workers: {args.workers} (timed: {timed} detections after all had joined)"
        )
        print(f"worker startup to first detect: {first - launched:.1f} s")
        print(f"verifier throughput: {through:,.0f} observations/s "
              f"({2 * through:,.0f} events/s incl. authoritative records)")  # fmt: skip
        print(f"raw confluent-kafka consume rate of {obs_topic}: {raw:,.0f} messages/s")
        print(f"ratio verifier/raw: {through / raw:.2f}")
        print(f"no-op Faust agent over {obs_topic} (same worker settings, batch {args.batch}): "
              f"{noop_rate:,.0f} events/s")  # fmt: skip
        print(f"ratio verifier/no-op: {through / noop_rate:.2f} (observations/s; "
              f"{2 * through / noop_rate:.2f} counting the verifier's events)")  # fmt: skip
        print(f"counting until the offsets were committed: {whole:,.0f} observations/s "
              f"(ratio {whole / raw:.2f}; a lower bound)")  # fmt: skip
        print(f"produced -> detect visible (one at a time, {len(latencies)} samples): "
              f"p50 {cuts[49] * 1000:.0f} ms, p99 {cuts[98] * 1000:.0f} ms")  # fmt: skip
        print(f"aim >= 5,000 observations/s: {'met' if through >= 5000 else 'NOT met'}")
        return 0
    finally:
        procs: list[subprocess.Popen[bytes] | None] = [*workers, worker, baseline]
        for left_running in procs:
            if left_running is not None:
                stop(left_running)
        left = read_actual(admin, scope=scope)
        kafka_admin.delete_acls(admin, left.acls)
        for user in left.users:
            kafka_admin.delete_scram_user(admin, user)
        for topic in left.topics:
            kafka_admin.delete_topic(admin, topic)


if __name__ == "__main__":
    sys.exit(main())
