"""The front-end agents' throughput and latency against plain SQL and the SDK, in one run.

    python -m benchmarks.agent_bench [--rows 20000] [--items 10] [--poll-interval 1]
        [--batch 5000] [--rounds 3] [--latency-samples 30]

Needs a PostgreSQL server: GOVBUS_BENCH_PG_DSN (or GOVBUS_TEST_PG_DSN), any database on it;
two databases of the run's own are created there (a provider's and a consumer's 前置库) and
dropped at the end. The broker: GOVBUS_BOOTSTRAP_SERVERS (with GOVBUS_ADMIN_PASSWORD) if set,
else a local one (``publish_bench.connect``: GOVBUS_BENCH_STATE_DIR, GOVBUS_BENCH_BROKER_PORT).

What is timed, ``--rounds`` times alternating (medians printed), on ``--rows`` new rows of a
table of ``--items`` text items each round:

- COPY (once, every row, per ``--rows``): the rows streamed from the source database to a
  table of the sink database with
  ``COPY (SELECT …) TO STDOUT`` / ``COPY … FROM STDIN`` (psycopg): what a DBA would do
  between two databases without a bus (PostgreSQL has no cross-database INSERT … SELECT);
- SDK publish: ``Publisher.publish`` of the same records, already as dicts (the provider SDK's
  rate, the issue's yardstick: source+sink should reach ≥ 0.5× of it);
- the agents: the sink runs in a process of its own (as on the consumer's own 前置机; group
  joined, warmed up by one row); the business system inserts the round's rows (untimed).
  Each alone: the source publishes them (``run(once=True)``) while the sink process is
  stopped (SIGSTOP), then the sink catches up (timed until it committed the last row). On
  two machines the slower of the two sets the pace. Both at once on this machine: another
  ``--rows`` rows, from the source's ``run`` to the sink's commit of the last row.

Latency at idle: both agents running (``poll_interval`` ``--poll-interval``), one row
inserted with the current update time every ~0.7 s, timed until it is in the sink table
(polled every 10 ms); p50/p99 (aim: p99 ≤ poll interval + 1 s).
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import secrets
import signal
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

from benchmarks.publish_bench import connect, line
from connectors.database import open_database
from connectors.mapping import load_mapping
from connectors.sink import SinkAgent
from connectors.source import SourceAgent, prepare_sources
from govbus.broker import admin as kafka_admin
from govbus.vocabulary import acls as kafka_acls
from govbus.vocabulary import kafka as kafka_clients
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.identifiers import citizen_id_check_digit, uscc_check_char
from govbus.vocabulary.naming import Naming
from govbus.vocabulary.session import DepartmentSession
from govbus.vocabulary.spec import CatalogSpec, Department, InfoItem, Resource, ResourceKey
from producers.publisher import Publisher

PROVIDER = "11320400MB0152709" + uscc_check_char("11320400MB0152709")
CONSUMER = "11320400MB0147045" + uscc_check_char("11320400MB0147045")


def bench_resource(code: str, items: int) -> Resource:
    return Resource(
        code=code,
        name="前置机基准测试资源",
        provider=PROVIDER,
        abstract="benchmark",
        format="database",
        category=("民政",),
        items=(
            InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),
            *(InfoItem(f"字段{n}", f"field_{n}", "C", 60) for n in range(items)),
        ),
        key=ResourceKey(("citizen_id",), "natural-person"),
        share_type="unconditional",
        update_cycle="realtime",
        publish_date=dt.date(2026, 1, 1),
        share_methods=("front-end-agent",),
    )


def citizen(i: int) -> str:
    """A valid 公民身份号码, a different one for every ``i`` (1000 per birth day)."""
    born = dt.date(1950, 1, 1) + dt.timedelta(days=i // 1000)
    body = f"320402{born:%Y%m%d}{i % 1000:03d}"
    return body + citizen_id_check_digit(body)


def rows(first: int, n: int, items: int, at: dt.datetime) -> list[dict[str, Any]]:
    """Rows ``first``.. of the source table, each with its own citizen id."""
    return [
        {
            "id": i,
            "sfzh": citizen(i),
            **{f"f{n}": f"字段{n}-{i}-" + "x" * 40 for n in range(items)},
            "gxsj": at,
        }
        for i in range(first, first + n)
    ]


@contextmanager
def databases(server_dsn: str, names: list[str]) -> Iterator[list[str]]:
    url = sa.make_url(server_dsn)
    server = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        for name in names:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield [url.set(database=n).render_as_string(hide_password=False) for n in names]
    finally:
        with server.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        server.dispose()


def libpq(dsn: str) -> str:
    return sa.make_url(dsn).set(drivername="postgresql").render_as_string(hide_password=False)


def copy_between(source: str, sink: str, items: int) -> float:
    """COPY the source table into a plain table of the sink database; seconds."""
    columns = ", ".join(["sfzh", *(f"f{n}" for n in range(items))])
    with psycopg.connect(libpq(sink)) as dst:
        dst.execute(
            f"CREATE TABLE copied (sfzh varchar(18), "
            f"{', '.join(f'f{n} varchar(60)' for n in range(items))})"
        )
        dst.commit()
        start = time.perf_counter()
        with psycopg.connect(libpq(source)) as src, src.cursor() as out, dst.cursor() as into:
            query = f"COPY (SELECT {columns} FROM src_people) TO STDOUT"
            with out.copy(query) as reader, into.copy(f"COPY copied ({columns}) FROM STDIN") as w:
                for chunk in reader:
                    w.write(chunk)
        dst.commit()
        return time.perf_counter() - start


def mapping_text(database: str, code: str, items: int, poll: float, batch: int) -> str:
    columns = "\n".join(f"      - {{column: f{n}, item: field_{n}}}" for n in range(items))
    return (
        f"database: {database}\npoll_interval: {poll}\nbatch_size: {batch}\nsources:\n"
        f"  - table: src_people\n    resource: {code}\n    updated_at: gxsj\n    columns:\n"
        f"      - {{column: sfzh, item: citizen_id}}\n{columns}\n"
    )


def sink_text(database: str, code: str, poll: float, batch: int) -> str:
    return (
        f"database: {database}\npoll_interval: {poll}\nbatch_size: {batch}\nsinks:\n"
        f"  - resource: {code}\n    table: dst_people\n    purpose: work-reference\n"
    )


def keep_sink(
    session: DepartmentSession, mapping_path: str, written: Any, ready: Any, stop: Any
) -> None:
    """The sink agent in its own process: ``written`` follows its committed rows."""
    mapping = load_mapping(mapping_path)
    engine = open_database(mapping.database, "bench")
    sink = SinkAgent(session, engine, mapping)
    thread = threading.Thread(target=sink.run, name="sink", daemon=True)
    thread.start()
    ready.set()
    while not stop.wait(0.005):
        written.value = sink.writers[0].written
    sink.stop()
    thread.join(60)
    engine.dispose()


def record_of(row: dict[str, Any], items: int) -> dict[str, Any]:
    """The record the source publishes for ``row``."""
    return {"citizen_id": row["sfzh"], **{f"field_{k}": row[f"f{k}"] for k in range(items)}}


def quantiles(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[98]


def wait_for(check: Any, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.01)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--latency-samples", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of each path")
    args = parser.parse_args(argv)
    server = os.environ.get("GOVBUS_BENCH_PG_DSN") or os.environ.get("GOVBUS_TEST_PG_DSN")
    if not server:
        parser.error("set GOVBUS_BENCH_PG_DSN (or GOVBUS_TEST_PG_DSN) to a PostgreSQL DSN")

    settings, stop_broker = connect()
    admin = kafka_clients.admin_client(settings)
    tag = uuid.uuid4().hex[:8]
    naming = Naming(f"agentbench{tag}.")
    prov, cons = f"bench-{tag}-prov", f"bench-{tag}-cons"
    passwords = {prov: secrets.token_urlsafe(12), cons: secrets.token_urlsafe(12)}
    res = bench_resource(f"30201/{PROVIDER}-000001", args.items)
    sdk_res = bench_resource(f"30201/{PROVIDER}-000002", args.items)
    spec = CatalogSpec(
        (
            Department(prov, PROVIDER, "基准提供部门", "city", "320400"),
            Department(cons, CONSUMER, "基准使用部门", "city", "320400"),
        ),
        (res, sdk_res),
    )
    topics = [naming.resource_topic(r.code) for r in (res, sdk_res)]
    topics += [naming.dlq_topic(prov), naming.audit_topic]
    tmp = Path(os.environ.get("GOVBUS_BENCH_STATE_DIR", "/tmp/govbus-agent-bench"))
    tmp.mkdir(parents=True, exist_ok=True)

    def session(dept: str) -> DepartmentSession:
        return DepartmentSession(settings, dept, passwords[dept], spec, 1, naming=naming)

    names = [f"agentbench_{tag}_src", f"agentbench_{tag}_dst"]
    try:
        for user, password in passwords.items():
            kafka_admin.upsert_scram_user(admin, user, password)
        for topic in topics:
            kafka_admin.create_topic(admin, topic, partitions=3)
        bindings = [
            acl
            for user in (prov, cons)
            for topic in topics
            for acl in kafka_acls.producer_acls(user, topic) + kafka_acls.consumer_acls(user, topic)
        ] + [acl for user in (prov, cons) for acl in kafka_acls.group_prefix_acls(user, f"{user}.")]
        kafka_admin.create_acls(admin, bindings)
        with databases(server, names) as (source_db, sink_db):
            run(args, session, res, sdk_res, source_db, sink_db, tmp, prov, cons)
    finally:
        for topic in topics:
            kafka_admin.delete_topic(admin, topic)
        acls = [a for a in kafka_admin.list_acls(admin) if a.principal in
                (f"User:{prov}", f"User:{cons}")]  # fmt: skip
        kafka_admin.delete_acls(admin, acls)
        for user in passwords:
            kafka_admin.delete_scram_user(admin, user)
        stop_broker()
    return 0


def run(
    args: argparse.Namespace,
    session: Any,
    res: Resource,
    sdk_res: Resource,
    source_db: str,
    sink_db: str,
    tmp: Path,
    prov: str,
    cons: str,
) -> None:
    n, items = args.rows, args.items
    metadata = sa.MetaData()
    table = sa.Table(
        "src_people",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sfzh", sa.String(18), nullable=False),
        *(sa.Column(f"f{k}", sa.String(60)) for k in range(items)),
        sa.Column("gxsj", sa.DateTime(timezone=True), nullable=False),
        sa.Index("src_people_changes", "gxsj", "id"),  # the agent reads in this order
    )
    business = sa.create_engine(source_db)
    metadata.create_all(business)
    t0 = dt.datetime.now(CHINA_TZ) - dt.timedelta(hours=1)
    with business.begin() as conn:
        conn.execute(table.insert(), rows(1, 1, items, t0))  # the warm-up row
    line("rows", f"{n:,} x {items} text items (+ key) per row, PostgreSQL → PostgreSQL")

    source_map, sink_map = tmp / "source.yaml", tmp / "sink.yaml"
    source_map.write_text(
        mapping_text(source_db, res.code, items, args.poll_interval, args.batch), encoding="utf-8"
    )
    sink_map.write_text(
        sink_text(sink_db, res.code, args.poll_interval, args.batch), encoding="utf-8"
    )
    source_engine = open_database(source_db, "bench")
    sink_engine = open_database(sink_db, "bench")
    source_mapping = load_mapping(source_map)
    source = SourceAgent(
        session(prov),
        source_engine,
        source_mapping,
        prepare_sources(source_engine, source_mapping, session(prov).spec, PROVIDER),
    )
    # The sink in a process of its own, as on the consumer's own 前置机.
    context = multiprocessing.get_context("spawn")
    written, ready, stop_sink = context.Value("q", 0), context.Event(), context.Event()
    sink_process = context.Process(
        target=keep_sink, args=(session(cons), str(sink_map), written, ready, stop_sink),
        name="bench-sink", daemon=True,
    )  # fmt: skip
    sink_process.start()
    assert sink_process.pid is not None
    sink_pid = sink_process.pid
    if not ready.wait(120):
        raise TimeoutError("the sink process did not start")
    timing: dict[str, list[float]] = {"sdk": [], "source": [], "sink": [], "pipeline": []}
    publisher = Publisher(session(prov))
    try:
        publisher.publish(sdk_res.code, [record_of(rows(1, 1, items, t0)[0], items)])  # warm-up
        source.run(once=True)  # the warm-up row: the sink's group joins
        wait_for(lambda: written.value >= 1, "the warm-up row in the sink table")
        for r in range(args.rounds):  # alternating, so drifts of the machine hit both paths
            batch = rows(2 + 2 * r * n, n, items, t0 + dt.timedelta(seconds=r + 1))
            # The yardstick: the provider SDK publishing the same records (dicts).
            records = [record_of(row, items) for row in batch]
            start = time.perf_counter()
            publisher.publish(sdk_res.code, records)
            timing["sdk"].append(time.perf_counter() - start)
            # Each agent alone (as on two machines): the source with the sink process
            # stopped (SIGSTOP), then the sink catching up with what the source published.
            with business.begin() as conn:
                conn.execute(table.insert(), batch)
            os.kill(sink_pid, signal.SIGSTOP)
            try:
                start = time.perf_counter()
                published = source.run(once=True).published
                timing["source"].append(time.perf_counter() - start)
            finally:
                os.kill(sink_pid, signal.SIGCONT)
            start = time.perf_counter()
            wait_for(lambda r=r: written.value >= 1 + (2 * r + 1) * n, "the rows in the sink")
            timing["sink"].append(time.perf_counter() - start)
            assert published == n, f"published {published} of {n}"
            # Both at once, on this one machine: inserted rows → in the sink table.
            batch = rows(2 + (2 * r + 1) * n, n, items, t0 + dt.timedelta(seconds=r + 1))
            with business.begin() as conn:
                conn.execute(table.insert(), batch)
            start = time.perf_counter()
            published = source.run(once=True).published
            wait_for(lambda r=r: written.value >= 1 + (2 * r + 2) * n, "the rows in the sink")
            timing["pipeline"].append(time.perf_counter() - start)
            assert published == n, f"published {published} of {n}"
        total = 1 + 2 * args.rounds * n
        with sink_engine.connect() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM dst_people")).scalar_one()
        assert count == total, f"sink table has {count} rows, expected {total}"

        copy_seconds = copy_between(source_db, sink_db, items) / total * n  # per n rows

        # Latency at idle: the source polling in the background.
        source_thread = threading.Thread(target=source.run, name="bench-source", daemon=True)
        source_thread.start()
        samples: list[float] = []
        for i in range(args.latency_samples):
            key = citizen(total + 10 + i)
            row = rows(total + 10 + i, 1, items, dt.datetime.now(CHINA_TZ))[0]
            with business.begin() as conn:
                conn.execute(table.insert(), row)
            inserted = time.perf_counter()

            def arrived(key: str = key) -> bool:
                with sink_engine.connect() as conn:
                    found = conn.execute(
                        sa.text("SELECT 1 FROM dst_people WHERE citizen_id = :k"), {"k": key}
                    ).first()
                return found is not None

            wait_for(arrived, f"latency sample {i}", timeout=60)
            samples.append(time.perf_counter() - inserted)
            time.sleep(0.7 * (1 + (i % 3) / 3))  # land at different points of the poll cycle
        source.stopping.set()
        source_thread.join(30)
    finally:
        stop_sink.set()
        sink_process.join(60)
        publisher.close()
        source.close()
        source_engine.dispose()
        sink_engine.dispose()
        business.dispose()

    seconds = {k: statistics.median(v) for k, v in timing.items()}
    rate = {k: n / v for k, v in seconds.items()}
    copy_rate = n / copy_seconds
    # On two 前置机s the agents run side by side: the slower one sets the pace.
    apart = min(rate["source"], rate["sink"])
    print(f"== throughput (rows/s; median of {args.rounds} alternating rounds of {n:,} rows)")
    line("COPY source db → sink db (plain SQL)", f"{copy_rate:10,.0f}  ({copy_seconds:.2f} s)")
    line("SDK publish (Publisher.publish)", f"{rate['sdk']:10,.0f}  ({seconds['sdk']:.2f} s)")
    line("source agent alone (table → bus)", f"{rate['source']:10,.0f}  "
         f"({seconds['source']:.2f} s)")  # fmt: skip
    line("sink agent alone (bus → table)", f"{rate['sink']:10,.0f}  ({seconds['sink']:.2f} s)")
    line("source → bus → sink, one machine", f"{rate['pipeline']:10,.0f}  "
         f"({seconds['pipeline']:.2f} s)")  # fmt: skip
    for label, value in (("two machines (slower agent)", apart), ("one machine", rate["pipeline"])):
        verdict = "met" if value >= 0.5 * rate["sdk"] else "NOT met"
        line(f"agents / SDK publish, {label}", f"{value / rate['sdk']:.2f} (aim >= 0.5: {verdict})")
    line("agents (one machine) / COPY", f"{rate['pipeline'] / copy_rate:.3f}")
    p50, p99 = quantiles(samples)
    print(f"== latency at idle, row inserted → in the sink table ({len(samples)} samples)")
    line("p50 / p99", f"{p50 * 1e3:.0f} ms / {p99 * 1e3:.0f} ms (max {max(samples) * 1e3:.0f})")
    aim = args.poll_interval + 1
    verdict = "met" if p99 <= aim else "NOT met"
    line(f"p99 <= poll interval + 1 s = {aim:.1f} s", verdict)


if __name__ == "__main__":
    raise SystemExit(main())
