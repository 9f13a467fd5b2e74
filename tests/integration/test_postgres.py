"""The test PostgreSQL is real: a server that speaks SQL, keeps Chinese text and rolls back.

The catalog's own tests run on it too; these check the ground they stand on.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(pg_dsn: str) -> sa.Engine:
    try:
        eng = sa.create_engine(pg_dsn)
        with eng.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        from tests.conftest import unavailable

        unavailable(f"PostgreSQL at {pg_dsn} is not reachable: {exc}")
    return eng


def test_server_is_postgresql(engine: sa.Engine) -> None:
    assert engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        version = conn.execute(sa.text("show server_version_num")).scalar_one()
    assert int(version) >= 130000


def test_chinese_text_round_trips_and_rollback_discards(engine: sa.Engine) -> None:
    meta = sa.MetaData()
    table = sa.Table(
        "t_smoke",
        meta,
        sa.Column("code", sa.String(18), primary_key=True),
        sa.Column("name", sa.Text),
    )
    meta.drop_all(engine)
    meta.create_all(engine)
    try:
        with engine.begin() as conn:
            conn.execute(table.insert(), {"code": "11320400014135543X", "name": "常州市公安局"})
        with engine.connect() as conn:
            conn.execute(table.insert(), {"code": "113204000141355440", "name": "未提交"})
            conn.rollback()
        with engine.connect() as conn:
            rows = conn.execute(sa.select(table.c.code, table.c.name)).all()
        assert rows == [("11320400014135543X", "常州市公安局")]
    finally:
        meta.drop_all(engine)
