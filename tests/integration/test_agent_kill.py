"""Kill tests of the front-end agents: `govbus agent` subprocesses killed (SIGKILL) at the two
points where a crash could lose or duplicate rows, then started again.

- the source, after the broker acknowledged a batch and before its watermark is stored: the
  restart publishes that batch again (never a loss);
- the sink, after the database commit and before the Kafka offsets are committed: the restart
  reads that batch again and upserts it (never a loss, never a duplicate row).

The crash points are ``GOVBUS_AGENT_CRASH`` (connectors/service.py). Both front-end databases
are PostgreSQL databases of the test's own.
"""

from __future__ import annotations

import datetime as dt
import re
import signal

import pytest
import sqlalchemy as sa

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

ROWS = 30
BATCH = 10


def test_killed_source_and_sink_lose_nothing_and_duplicate_nothing(
    agent_world: AgentWorld,
) -> None:
    t0 = dt.datetime(2026, 11, 30, 9, 0, tzinfo=CST)
    with pg_database(agent_world.pg_dsn) as source_db, pg_database(agent_world.pg_dsn) as sink_db:
        engine = sa.create_engine(source_db)
        people = people_table(sa.MetaData())
        people.metadata.create_all(engine)
        with engine.begin() as conn:  # three rows per update time: batches end inside a time
            conn.execute(
                people.insert(),
                [person_row(n, t0 + dt.timedelta(seconds=n // 3)) for n in range(1, ROWS + 1)],
            )
        engine.dispose()
        source_map = agent_world.mapping("source.yaml", SOURCE_MAPPING, source_db, BATCH)
        source = ["source", "--department", agent_world.prov, "--mapping", str(source_map),
                  "--once"]  # fmt: skip

        # Killed after the second batch was acknowledged, before its watermark was stored.
        killed = agent_world.agent(*source, crash="source-after-publish:2")
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        restarted = agent_world.agent(*source)
        assert restarted.returncode == 0, restarted.stderr
        # The first batch's watermark was stored: the restart publishes batches 2 and 3.
        assert f"{2 * BATCH} row(s) read, {2 * BATCH} published" in restarted.stderr

        topic = agent_world.ex.naming.resource_topic(agent_world.resource.code)
        messages = agent_world.ex.messages(agent_world.prov, topic, ROWS + BATCH)
        keys = [m.key().decode() for m in messages]
        assert len(keys) == ROWS + BATCH  # the second batch twice: republished, not lost
        assert set(keys) == {citizen_id(n) for n in range(1, ROWS + 1)}

        sink_map = agent_world.mapping("sink.yaml", SINK_MAPPING, sink_db, BATCH)
        sink = ["sink", "--department", agent_world.cons, "--mapping", str(sink_map),
                "--timeout", "8"]  # fmt: skip
        # Killed after its first database commit, before the offsets were committed.
        killed = agent_world.agent(*sink, crash="sink-after-db-commit:1")
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        written_before = _count(sink_db)
        assert 0 < written_before <= ROWS
        # The sink is a static group member (its table and host): the restart takes the
        # killed member's partition at once. Were it a dynamic member, it would get nothing
        # until the killed one's session timed out (45 s), and end after 8 s without records.
        restarted = agent_world.agent(*sink)
        assert restarted.returncode == 0, restarted.stderr
        written = re.search(r"(\d+) row\(s\) written to rs_assistance", restarted.stderr)
        assert written, restarted.stderr
        # Every record came again (no offset was committed before the kill): nothing lost.
        assert int(written[1]) >= ROWS

        engine = sa.create_engine(sink_db)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.text("SELECT citizen_id, citizen_name FROM rs_assistance")
                ).all()
        finally:
            engine.dispose()
        assert len(rows) == ROWS  # none duplicated
        assert {r.citizen_id: r.citizen_name for r in rows} == {
            citizen_id(n): f"救助对象{n}" for n in range(1, ROWS + 1)
        }


def _count(database: str) -> int:
    engine = sa.create_engine(database)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM rs_assistance")).scalar_one())
    finally:
        engine.dispose()
