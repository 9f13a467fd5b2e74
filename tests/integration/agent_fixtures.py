"""The front-end agents' world, loaded from tests/conftest.py: an exchange, a catalog database,
front-end databases (SQLite files and PostgreSQL databases of the test's own) and a mapping.

``agent_world`` gives an ``AgentWorld``: the test's exchange (namespace on the session broker)
with two departments — 市民政局 (``prov``) provides 社会救助对象信息 (unconditional) and 低保
家庭信息 (conditional), 市人社局 (``cons``) reads — reconciled with the platform topics (the
consumer SDK writes its usage audit), the catalog stored in a SQLite catalog database, and
``settings`` / ``env`` that make the agents (in process or as a ``govbus`` subprocess) act in
that namespace with that catalog.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from govbus.catalog.store import CatalogStore
from govbus.cli.session import department_session
from govbus.reconcile.desired import desired_state
from govbus.vocabulary.session import DepartmentSession
from govbus.vocabulary.spec import CatalogSpec, InfoItem, Resource
from tests.factories import person_resource
from tests.integration.fixtures import Exchange, citizen_id, pg_database

REPO = Path(__file__).resolve().parents[2]
CST = dt.timezone(dt.timedelta(hours=8))
ITEMS = (
    InfoItem("公民身份号码", "citizen_id", "C", 18, required=True, sensitivity="sensitive"),
    InfoItem("姓名", "citizen_name", "C", 50, required=True),
    InfoItem("出生日期", "birth_date", "D"),
    InfoItem("性别", "gender", "C", 4),
    InfoItem("月救助金额（元）", "subsidy", "Y"),
)
# The front-end table of 市民政局's business system: its own column names and codes.
SOURCE_MAPPING = """\
# 市民政局 前置库 → 社会救助对象信息
department: {prov}
database: {database}
poll_interval: 0.5
batch_size: {batch}
sources:
  - table: mz_people
    resource: {code}
    updated_at: gxsj
    soft_delete: {{column: sfsc, value: 1}}
    columns:
      - {{column: sfzh, item: citizen_id, trim: true, case: upper}}
      - {{column: xm, item: citizen_name, trim: true}}
      - {{column: csrq, item: birth_date, date_format: "%Y%m%d"}}
      - {{column: xb, item: gender, code_table: {{"1": 男, "2": 女}}}}
      - {{column: jzje, item: subsidy}}
"""
SINK_MAPPING = """\
department: {cons}
database: {database}
poll_interval: 0.5
batch_size: {batch}
sinks:
  - resource: {code}
    table: rs_assistance
    purpose: administrative-basis
"""


def people_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "mz_people",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sfzh", sa.String(20)),  # padded with spaces by the business system
        sa.Column("xm", sa.String(50)),
        sa.Column("csrq", sa.String(8)),
        sa.Column("xb", sa.String(1)),
        sa.Column("jzje", sa.Numeric(10, 2)),
        sa.Column("gxsj", sa.DateTime(timezone=True)),
        sa.Column("sfsc", sa.Integer, nullable=False, server_default="0"),
    )


def person_row(n: int, at: dt.datetime, **changes: Any) -> dict[str, Any]:
    """Row ``n`` of mz_people as the business system writes it (codes, 8-digit dates)."""
    row = {
        "id": n,
        "sfzh": f" {citizen_id(n)} ",
        "xm": f"救助对象{n}",
        "csrq": "19900101",
        "xb": "1" if n % 2 else "2",
        "jzje": Decimal("800.50") + n,
        "gxsj": at,
        "sfsc": 0,
    }
    row.update(changes)
    return row


@dataclasses.dataclass
class AgentWorld:
    ex: Exchange
    tmp: Path
    settings: Any
    resource: Resource
    conditional: Resource
    pg_dsn: str

    @property
    def prov(self) -> str:
        return self.ex.id("prov")

    @property
    def cons(self) -> str:
        return self.ex.id("cons")

    def session(self, dept_id: str, grants: str = "none") -> DepartmentSession:
        return department_session(self.settings, dept_id, None, grants=grants)  # type: ignore[arg-type]

    @property
    def env(self) -> dict[str, str]:
        """The environment of a `govbus agent` subprocess acting in this world."""
        return {
            **os.environ,
            "GOVBUS_STATE_DIR": str(self.settings.state_dir),
            "GOVBUS_NAMESPACE": self.ex.naming.prefix,
            "GOVBUS_BOOTSTRAP_SERVERS": self.settings.bootstrap_servers or "",
            "GOVBUS_CATALOG_DSN": self.settings.catalog_dsn,
            # This world's state directory has no CA of its own: name the session broker's.
            "GOVBUS_SSL_CA_LOCATION": str(self.settings.ssl_ca_location or ""),
        }

    def mapping(self, name: str, template: str, database: str, batch: int = 1000) -> Path:
        path = self.tmp / name
        path.write_text(
            template.format(
                prov=self.prov, cons=self.cons, code=self.resource.code, database=database,
                batch=batch,
            ),
            encoding="utf-8",
        )  # fmt: skip
        return path

    def sqlite(self, name: str) -> str:
        return f"sqlite:///{self.tmp / name}"

    def agent(self, *argv: str, crash: str | None = None, timeout: float = 300) -> Any:
        """Run `govbus agent ...` to its end (or its crash point): the CompletedProcess."""
        env = self.env
        env.pop("GOVBUS_AGENT_CRASH", None)
        if crash:
            env["GOVBUS_AGENT_CRASH"] = crash
        return subprocess.run(
            [sys.executable, "-m", "govbus.cli", "agent", *argv],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip


@pytest.fixture
def agent_world(exchange: Exchange, tmp_path: Path, pg_dsn: str) -> Iterator[AgentWorld]:
    prov = exchange.department("prov", 1)
    cons = exchange.department("cons", 2)
    common: dict[str, Any] = {
        "provider": prov.code,
        "category": ("民政", "社会救助"),
        "abstract": "享受社会救助的对象",
        "update_cycle": "daily",
        "share_methods": ("front-end-agent", "system-integration"),
    }
    resource = person_resource(
        ITEMS, code=f"30201/{prov.code}-000001", name="社会救助对象信息", **common
    )
    conditional = person_resource(
        ITEMS[:2],
        code=f"30201/{prov.code}-000002",
        name="低保家庭信息",
        share_type="conditional",
        share_conditions="仅用于社会救助审核",
        purposes=("administrative-basis",),
        **common,
    )
    exchange.spec = CatalogSpec((prov, cons), (resource, conditional))
    catalog = tmp_path / "catalog.db"
    store = CatalogStore(f"sqlite:///{catalog}")
    store.migrate()
    store.apply(exchange.spec, "test", "front-end agent tests")
    store.dispose()
    exchange.reconcile(desired_state(exchange.spec, partitions=1, naming=exchange.naming))
    settings = dataclasses.replace(
        exchange.settings,
        catalog_dsn=f"sqlite:///{catalog}",
        namespace=exchange.naming.prefix,
        state_dir=exchange.state_dir,
    )
    yield AgentWorld(exchange, tmp_path, settings, resource, conditional, pg_dsn)


@pytest.fixture
def pg_frontend(pg_dsn: str) -> Iterator[str]:
    """A PostgreSQL database of the test's own: a department's 前置库."""
    with pg_database(pg_dsn) as dsn:
        yield dsn
