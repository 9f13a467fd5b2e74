"""The front-end agents against the real broker, SQLite and PostgreSQL front-end databases.

市民政局's business system writes mz_people (its own column names, codes and 8-digit dates) in
its 前置库; the source agent publishes it as 社会救助对象信息 through the provider SDK. 市人社局's
sink agent keeps what it may read in its own 前置库 (PostgreSQL) through the consumer SDK.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.database import open_database
from connectors.mapping import MappingError, load_mapping
from connectors.service import serve
from connectors.sink import SinkAgent
from connectors.source import SourceAgent, prepare_sources
from govbus.cli import main
from govbus.subscribe.audit import read_audit
from tests.integration.agent_fixtures import (
    CST,
    SINK_MAPPING,
    SOURCE_MAPPING,
    AgentWorld,
    people_table,
    person_row,
)
from tests.integration.fixtures import citizen_id, pg_database

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

T0 = dt.datetime(2026, 11, 30, 9, 0, tzinfo=CST)


def _source(world: AgentWorld, database: str, batch: int = 1000) -> SourceAgent:
    mapping = load_mapping(world.mapping("source.yaml", SOURCE_MAPPING, database, batch))
    session = world.session(world.prov)
    engine = open_database(mapping.database, "test")
    dept = session.spec.department_by_id(world.prov)
    assert dept is not None
    prepared = prepare_sources(engine, mapping, session.spec, dept.code)
    return SourceAgent(session, engine, mapping, prepared)


def _sink(world: AgentWorld, database: str, template: str = SINK_MAPPING) -> SinkAgent:
    mapping = load_mapping(world.mapping("sink.yaml", template, database))
    session = world.session(world.cons, grants="own")
    return SinkAgent(session, open_database(mapping.database, "test"), mapping)


def _sink_rows(database: str) -> dict[str, dict[str, Any]]:
    engine = sa.create_engine(database)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT * FROM rs_assistance")).mappings().all()
    finally:
        engine.dispose()
    return {r["citizen_id"]: dict(r) for r in rows}


def test_changes_and_deletes_flow_from_one_front_end_table_to_another(
    agent_world: AgentWorld,
) -> None:
    source_db = agent_world.sqlite("mz.db")
    engine = sa.create_engine(source_db)
    people = people_table(sa.MetaData())
    people.metadata.create_all(engine)
    # Five rows; 2 and 3 share an update time, and the batch of 2 ends between them.
    at = [T0, T0 + dt.timedelta(seconds=1), T0 + dt.timedelta(seconds=1), T0, T0]
    at[3] = at[4] = T0 + dt.timedelta(seconds=2)
    with engine.begin() as conn:
        conn.execute(people.insert(), [person_row(n, at[n - 1]) for n in range(1, 6)])
    source = _source(agent_world, source_db, batch=2)
    try:
        first = source.run(once=True)
        assert (first.read, first.published, first.dead_lettered) == (5, 5, 0)
        # Nothing changed: nothing read again (the watermark holds across equal times).
        assert source.run(once=True).read == 0

        with pg_database(agent_world.pg_dsn) as sink_db:
            sink = _sink(agent_world, sink_db)
            assert sink.run(timeout=5) == {"rs_assistance": 5}
            rows = _sink_rows(sink_db)
            assert sorted(rows) == [citizen_id(n) for n in range(1, 6)]
            one = rows[citizen_id(1)]
            assert one["citizen_name"] == "救助对象1"  # trimmed
            assert one["gender"] == "男" and rows[citizen_id(2)]["gender"] == "女"  # code table
            assert one["birth_date"] == dt.date(1990, 1, 1)  # date_format
            assert one["subsidy"] == Decimal("801.50")
            prov = agent_world.ex.dept("prov")
            assert one["govbus_provider"] == prov.code
            assert one["govbus_catalog_version"] == 1
            assert one["govbus_event_time"] is not None
            assert one["govbus_under_verification"] is None  # not read for this sink

            # The business system changes row 1, soft-deletes row 2, adds row 6.
            later = T0 + dt.timedelta(minutes=1)
            with engine.begin() as conn:
                conn.execute(people.update().where(people.c.id == 1).values(xm="改名1", gxsj=later))
                conn.execute(people.update().where(people.c.id == 2).values(sfsc=1, gxsj=later))
                conn.execute(people.insert(), [person_row(6, later)])
            second = source.run(once=True)
            assert (second.read, second.published, second.deleted) == (3, 2, 1)
            assert _sink(agent_world, sink_db).run(timeout=5) == {"rs_assistance": 3}
            rows = _sink_rows(sink_db)
            assert sorted(rows) == sorted(citizen_id(n) for n in (1, 3, 4, 5, 6))
            assert rows[citizen_id(1)]["citizen_name"] == "改名1"
    finally:
        source.close()
        engine.dispose()

    # The consumer's reads were audited with the purpose.
    audit = read_audit(agent_world.ex.settings, agent_world.cons, agent_world.ex.naming)
    events = [e for _, e in audit if e.resource == agent_world.resource.code]
    assert sum(e.record_count for e in events) >= 8
    assert {e.purpose for e in events} == {"administrative-basis"}


def test_delete_log_on_postgresql_and_full_resync(agent_world: AgentWorld) -> None:
    template = SOURCE_MAPPING.replace(
        "    soft_delete: {{column: sfsc, value: 1}}\n",
        "    delete_log: {{table: mz_people_deleted, time: scsj}}\n",
    )
    with pg_database(agent_world.pg_dsn) as source_db:
        engine = sa.create_engine(source_db)
        metadata = sa.MetaData()
        people = people_table(metadata)
        deleted = sa.Table(
            "mz_people_deleted",
            metadata,
            sa.Column("sfzh", sa.String(18), primary_key=True),
            sa.Column("scsj", sa.DateTime(timezone=True), primary_key=True),
        )
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(people.insert(), [person_row(n, T0) for n in range(1, 4)])
        mapping = load_mapping(agent_world.mapping("source.yaml", template, source_db))
        session = agent_world.session(agent_world.prov)
        dept = agent_world.ex.dept("prov")
        db = open_database(source_db, "test")
        agent = SourceAgent(
            session, db, mapping, prepare_sources(db, mapping, session.spec, dept.code)
        )
        try:
            assert agent.run(once=True).published == 3
            # Row 2 deleted by the business system, which logs it.
            with engine.begin() as conn:
                conn.execute(people.delete().where(people.c.id == 2))
                conn.execute(deleted.insert().values(sfzh=citizen_id(2), scsj=T0))
            done = agent.run(once=True)
            assert (done.read, done.deleted) == (1, 1)
        finally:
            agent.close()
        resync = SourceAgent(
            session, db, mapping, prepare_sources(db, mapping, session.spec, dept.code),
            full_resync=True,
        )  # fmt: skip
        try:
            again = resync.run(once=True)
            assert (again.read, again.published, again.deleted) == (2, 2, 0)
        finally:
            resync.close()
            db.dispose()
            engine.dispose()
    topic = agent_world.ex.naming.resource_topic(agent_world.resource.code)
    messages = agent_world.ex.messages(agent_world.prov, topic, 6)
    assert len(messages) == 6  # 3 upserts, 1 tombstone, 2 republished
    tombstones = [m.key().decode() for m in messages if m.value() is None]
    assert tombstones == [citizen_id(2)]


def test_bad_rows_are_dead_lettered_with_table_key_and_column(agent_world: AgentWorld) -> None:
    source_db = agent_world.sqlite("mz.db")
    engine = sa.create_engine(source_db)
    people = people_table(sa.MetaData())
    people.metadata.create_all(engine)
    bad_id = citizen_id(2)[:17] + ("0" if citizen_id(2)[17] != "0" else "1")
    with engine.begin() as conn:
        conn.execute(
            people.insert(),
            [
                person_row(1, T0),
                person_row(2, T0, sfzh=bad_id),  # check digit wrong: validation refuses it
                person_row(3, T0, xb="9"),  # not in the code table
                person_row(4, T0),
            ],
        )
        # Row 4's name as GBK bytes in a UTF-8 database (what a legacy system writes).
        conn.execute(
            sa.text("UPDATE mz_people SET xm = CAST(:raw AS TEXT) WHERE id = 4"),
            {"raw": "张三".encode("gbk")},
        )
    source = _source(agent_world, source_db)
    try:
        done = source.run(once=True)
    finally:
        source.close()
        engine.dispose()
    assert (done.read, done.published, done.dead_lettered) == (4, 1, 3)
    dlq = agent_world.ex.naming.dlq_topic(agent_world.prov)
    letters = [json.loads(v) for v in agent_world.ex.consume(agent_world.prov, dlq, 3)]
    by_id = {letter["origin"]["primary_key"]["id"]: letter for letter in letters}
    assert sorted(by_id) == [2, 3, 4]
    assert all(letter["origin"]["table"] == "mz_people" for letter in letters)
    assert by_id[2]["errors"][0]["rule"] == "citizen-id"
    assert by_id[2]["errors"][0]["item"] == "citizen_id"
    assert by_id[3]["errors"][0]["rule"] == "transform"
    assert "code '9' is not in the column's code_table" in by_id[3]["errors"][0]["message"]
    encoding = by_id[4]["errors"][0]
    assert encoding["rule"] == "text-encoding" and encoding["item"] == "citizen_name"
    assert "column xm holds bytes that are not utf-8 text" in encoding["message"]
    assert "table mz_people, id=4" in encoding["message"]


def test_dropped_column_stops_the_agent_before_anything_is_published(
    agent_world: AgentWorld, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source_db = agent_world.sqlite("mz.db")
    engine = sa.create_engine(source_db)
    people = people_table(sa.MetaData())
    people.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(people.insert(), [person_row(1, T0)])
        conn.execute(sa.text("ALTER TABLE mz_people DROP COLUMN csrq"))
    engine.dispose()
    path = agent_world.mapping("source.yaml", SOURCE_MAPPING, source_db)
    for name, value in agent_world.env.items():
        if name.startswith("GOVBUS_"):
            monkeypatch.setenv(name, value)
    # `agent check` says the same, without a broker.
    assert main(["agent", "check", "--department", agent_world.prov, "--mapping", str(path)]) == 1
    checked = capsys.readouterr().err
    assert "has no column csrq (dropped or renamed?)" in checked
    code = main(["agent", "source", "--department", agent_world.prov, "--mapping", str(path),
                 "--once"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1, err
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "csrq" in text)
    assert f"{path}:{line}:9: sources[0] (table mz_people) column csrq" in err
    assert "has no column csrq (dropped or renamed?)" in err and "nothing was published" in err
    topic = agent_world.ex.naming.resource_topic(agent_world.resource.code)
    assert agent_world.ex.messages(agent_world.prov, topic, 1, seconds=5) == []


def test_sink_refuses_what_the_department_may_not_read(agent_world: AgentWorld) -> None:
    template = SINK_MAPPING.replace("{code}", agent_world.conditional.code)
    with pytest.raises(MappingError) as refused:
        _sink(agent_world, agent_world.sqlite("rs.db"), template)
    message = str(refused.value)
    assert "sink.yaml:6:5: sinks[0] (table rs_assistance)" in message
    assert "holds no valid approved share request" in message


def test_health_and_metrics_endpoint(agent_world: AgentWorld) -> None:
    source_db = agent_world.sqlite("mz.db")
    engine = sa.create_engine(source_db)
    people = people_table(sa.MetaData())
    people.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(people.insert(), [person_row(n, T0) for n in range(1, 4)])
    engine.dispose()
    source = _source(agent_world, source_db)
    server = serve(source.health, 0, "127.0.0.1")
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with pytest.raises(urllib.error.HTTPError) as before:
            urllib.request.urlopen(f"{base}/health", timeout=10)
        assert before.value.code == 503  # no round yet
        source.run(once=True)
        with urllib.request.urlopen(f"{base}/health", timeout=10) as answer:
            health = json.loads(answer.read())
        assert health["status"] == "ok" and health["rounds"] >= 1
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as answer:
            text = answer.read().decode()
    finally:
        server.shutdown()
        source.close()
    labels = f'department="{agent_world.prov}",stage="published",table="mz_people"'
    published = next(
        line
        for line in text.splitlines()
        if line.startswith(f"govbus_agent_rows_total{{{labels}}}")
    )
    assert float(published.rsplit(" ", 1)[1]) >= 3
    assert (
        f'govbus_agent_lag_seconds{{department="{agent_world.prov}",table="mz_people"}} 0.0' in text
    )
