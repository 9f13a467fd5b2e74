"""The front-end agents' throughput and latency against plain SQL and the SDK, in one run.

    python -m benchmarks.agent_bench [--rows 20000] [--items 10] [--poll-interval 1]
        [--batch 5000] [--latency-samples 30]

Needs a PostgreSQL server: GOVBUS_BENCH_PG_DSN (or GOVBUS_TEST_PG_DSN), any database on it;
two databases of the run's own are created there (a provider's and a consumer's 前置库) and
dropped at the end. The broker: GOVBUS_BOOTSTRAP_SERVERS (with GOVBUS_ADMIN_PASSWORD) if set,
else a local one (``publish_bench.connect``: GOVBUS_BENCH_STATE_DIR, GOVBUS_BENCH_BROKER_PORT).

What is timed, on the same ``--rows`` rows of a table of ``--items`` text items:

- COPY: the rows streamed from the source database to a table of the sink database with
  ``COPY (SELECT …) TO STDOUT`` / ``COPY … FROM STDIN`` (psycopg): what a DBA would do
  between two databases without a bus (PostgreSQL has no cross-database INSERT … SELECT);
- SDK publish: ``Publisher.publish`` of the same records, already as dicts (the provider SDK's
  rate, the issue's yardstick: source+sink should reach ≥ 0.5× of it);
- source → bus → sink: a running sink agent (group joined, warmed up by one row), then the
  source agent publishes the rows (``run(once=True)``); timed until the sink committed the
  last row to its table. Source alone (its ``run`` time) is printed too.

Latency at idle: both agents running (``poll_interval`` ``--poll-interval``), one row
inserted with the current update time every ~0.7 s, timed until it is in the sink table
(polled every 10 ms); p50/p99 (aim: p99 ≤ poll interval + 1 s).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
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
    )
    business = sa.create_engine(source_db)
    metadata.create_all(business)
    t0 = dt.datetime.now(CHINA_TZ) - dt.timedelta(hours=1)
    with business.begin() as conn:
        conn.execute(table.insert(), rows(1, 1, items, t0))  # the warm-up row
    line("rows", f"{n:,} x {items} text items (+ key) per row, PostgreSQL → PostgreSQL")

    # The yardstick: the provider SDK publishing the same records (dicts).
    records = [
        {"citizen_id": r["sfzh"], **{f"field_{k}": r[f"f{k}"] for k in range(items)}}
        for r in rows(2, n, items, t0)
    ]
    with Publisher(session(prov)) as publisher:
        publisher.publish(sdk_res.code, records[:1])  # warm-up: connection, producer id
        start = time.perf_counter()
        publisher.publish(sdk_res.code, records)
        sdk_seconds = time.perf_counter() - start

    source_map, sink_map = tmp / "source.yaml", tmp / "sink.yaml"
    source_map.write_text(
        mapping_text(source_db, res.code, items, args.poll_interval, args.batch), encoding="utf-8"
    )
    sink_map.write_text(
        sink_text(sink_db, res.code, args.poll_interval, args.batch), encoding="utf-8"
    )
    source_engine = open_database(source_db, "bench")
    sink_engine = open_database(sink_db, "bench")
    source_mapping, sink_mapping = load_mapping(source_map), load_mapping(sink_map)
    source = SourceAgent(
        session(prov),
        source_engine,
        source_mapping,
        prepare_sources(source_engine, source_mapping, session(prov).spec, PROVIDER),
    )
    sink = SinkAgent(session(cons), sink_engine, sink_mapping)
    writer = sink.writers[0]
    sink_thread = threading.Thread(target=sink.run, name="bench-sink", daemon=True)
    sink_thread.start()
    try:
        source.run(once=True)  # the warm-up row: the sink's group joins
        wait_for(lambda: writer.written >= 1, "the warm-up row in the sink table")
        with business.begin() as conn:
            conn.execute(table.insert(), rows(2, n, items, t0 + dt.timedelta(seconds=1)))
        start = time.perf_counter()
        published = source.run(once=True).published
        source_seconds = time.perf_counter() - start
        wait_for(lambda: writer.written >= n + 1, "every row in the sink table")
        pipeline_seconds = time.perf_counter() - start
        assert published == n, f"published {published} of {n}"
        with sink_engine.connect() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM dst_people")).scalar_one()
        assert count == n + 1, f"sink table has {count} rows, expected {n + 1}"

        copy_seconds = copy_between(source_db, sink_db, items)

        # Latency at idle: the source polling in the background.
        source_thread = threading.Thread(target=source.run, name="bench-source", daemon=True)
        source_thread.start()
        samples: list[float] = []
        for i in range(args.latency_samples):
            key = citizen(n + 10 + i)
            row = rows(n + 10 + i, 1, items, dt.datetime.now(CHINA_TZ))[0]
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
        sink.stop()
        sink_thread.join(60)
        source.close()
        source_engine.dispose()
        sink_engine.dispose()
        business.dispose()

    sdk_rate, copy_rate = n / sdk_seconds, n / copy_seconds
    pipe_rate, source_rate = n / pipeline_seconds, n / source_seconds
    print("== throughput (rows/s)")
    line("COPY source db → sink db (plain SQL)", f"{copy_rate:10,.0f}  ({copy_seconds:.2f} s)")
    line("SDK publish (Publisher.publish)", f"{sdk_rate:10,.0f}  ({sdk_seconds:.2f} s)")
    line("source agent alone (table → bus)", f"{source_rate:10,.0f}  ({source_seconds:.2f} s)")
    line("source → bus → sink (agents)", f"{pipe_rate:10,.0f}  ({pipeline_seconds:.2f} s)")
    verdict = "met" if pipe_rate >= 0.5 * sdk_rate else "NOT met"
    line("agents / SDK publish (aim >= 0.5)", f"{pipe_rate / sdk_rate:.2f} ({verdict})")
    line("agents / COPY", f"{pipe_rate / copy_rate:.3f}")
    p50, p99 = quantiles(samples)
    print(f"== latency at idle, row inserted → in the sink table ({len(samples)} samples)")
    line("p50 / p99", f"{p50 * 1e3:.0f} ms / {p99 * 1e3:.0f} ms (max {max(samples) * 1e3:.0f})")
    aim = args.poll_interval + 1
    verdict = "met" if p99 <= aim else "NOT met"
    line(f"p99 <= poll interval + 1 s = {aim:.1f} s", verdict)


if __name__ == "__main__":
    raise SystemExit(main())
