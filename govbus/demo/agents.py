"""The front-end agent part of the demo (article 16, 前置机共享): table to bus to table.

市公安局's business system writes 人口户籍基本信息 rows into its front-end database (前置库, a
SQLite file under the state directory); its source agent publishes the changes. 市民政局's sink
agent keeps the resource in its own front-end database. A row added on one side shows up on
the other, with its provenance.
"""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from connectors.database import open_database
from connectors.mapping import load_mapping
from connectors.sink import SinkAgent
from connectors.sink_tables import PROVENANCE, desired_table
from connectors.source import SourceAgent, prepare_sources
from govbus.demo.exchange import CONSUMER, PROVIDER, Printer, sample_records
from govbus.vocabulary.clock import CHINA_TZ
from govbus.vocabulary.config import Settings
from govbus.vocabulary.secrets import PasswordStore
from govbus.vocabulary.session import DepartmentSession
from govbus.vocabulary.spec import CatalogSpec, Resource

SOURCE_TABLE = "gaj_hjxx"
SINK_TABLE = "mzj_hjxx"


def _mapping(path: Path, resource: Resource, source_db: str, sink_db: str) -> None:
    columns = "\n".join(f"      - {{column: {i.code}, item: {i.code}}}" for i in resource.items)
    path.write_text(
        f"# demo: 市公安局's 前置库 table {SOURCE_TABLE} is {resource.name}\n"
        f"database: {source_db}\npoll_interval: 1\nsources:\n"
        f"  - table: {SOURCE_TABLE}\n    resource: {resource.code}\n    updated_at: gxsj\n"
        f"    columns:\n{columns}\n",
        encoding="utf-8",
    )
    path.with_name("mzj-agent.yaml").write_text(
        f"database: {sink_db}\nsinks:\n  - resource: {resource.code}\n"
        f"    table: {SINK_TABLE}\n    purpose: administrative-basis\n",
        encoding="utf-8",
    )


def _row(resource: Resource, record: dict[str, Any]) -> dict[str, Any]:
    """A sample record as the business system's row: dates, times and amounts typed."""
    row = dict(record)
    for item in resource.items:
        value = row.get(item.code)
        if isinstance(value, str) and item.data_type == "D":
            row[item.code] = dt.date.fromisoformat(value)
        elif isinstance(value, str) and item.data_type == "T":
            row[item.code] = dt.datetime.fromisoformat(value)
        elif isinstance(value, str) and item.data_type == "Y":
            row[item.code] = decimal.Decimal(value)
    return row


def run(settings: Settings, spec: CatalogSpec, catalog_version: int, out: Printer) -> None:
    passwords = PasswordStore(settings.state_dir)
    provider, consumer = spec.department_by_id(PROVIDER), spec.department_by_id(CONSUMER)
    assert provider is not None and consumer is not None
    resource = next(
        r for r in spec.resources if r.provider == provider.code and r.share_type == "unconditional"
    )
    root = Path(settings.state_dir) / "demo-agents"
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob("*.db"):
        old.unlink()  # each run starts with empty front-end databases
    source_db, sink_db = f"sqlite:///{root / 'gaj-qzk.db'}", f"sqlite:///{root / 'mzj-qzk.db'}"
    _mapping(root / "gaj-agent.yaml", resource, source_db, sink_db)

    # 市公安局's business system: its front-end table, three rows.
    shape = desired_table(load_mapping(root / "mzj-agent.yaml").sinks[0], resource)
    table = sa.Table(
        SOURCE_TABLE,
        sa.MetaData(),
        *(c.copy() for c in shape.columns if c.name not in PROVENANCE),
        sa.Column("gxsj", sa.DateTime(timezone=True), nullable=False),
    )
    business = sa.create_engine(source_db)
    table.metadata.create_all(business)
    rows = [_row(resource, r) for r in sample_records(resource, 4)]
    now = dt.datetime.now(CHINA_TZ)
    with business.begin() as conn:
        conn.execute(table.insert(), [{**r, "gxsj": now} for r in rows[:3]])

    def session(dept_id: str) -> DepartmentSession:
        return DepartmentSession(
            settings, dept_id, passwords(dept_id), spec, catalog_version=catalog_version
        )

    mapping = load_mapping(root / "gaj-agent.yaml")
    source_engine = open_database(source_db, "demo")
    source = SourceAgent(
        session(provider.id),
        source_engine,
        mapping,
        prepare_sources(source_engine, mapping, spec, provider.code),
    )
    sink_mapping = load_mapping(root / "mzj-agent.yaml")
    sink_engine = open_database(sink_db, "demo")
    try:
        first = source.run(once=True)
        SinkAgent(session(consumer.id), sink_engine, sink_mapping).run(timeout=3)
        # The business system adds a row: the source agent publishes it, the sink writes it.
        with business.begin() as conn:
            conn.execute(table.insert(), {**rows[3], "gxsj": now + dt.timedelta(seconds=1)})
        second = source.run(once=True)
        SinkAgent(session(consumer.id), sink_engine, sink_mapping).run(timeout=3)
    finally:
        source.close()
        source_engine.dispose()
        business.dispose()
    key = resource.key.items[0]
    name = next((i.code for i in resource.items if i.code.endswith("name")), key)
    with sink_engine.connect() as conn:
        copied = conn.execute(
            sa.text(f"SELECT {name}, govbus_provider FROM {SINK_TABLE} WHERE {key} = :k"),
            {"k": rows[3][key]},
        ).first()
    sink_engine.dispose()
    if copied is None:
        raise RuntimeError(f"the new row of {SOURCE_TABLE} did not reach {SINK_TABLE}")
    out(
        f"29. front-end agents (前置机, article 16): {provider.name}'s front-end table "
        f"{SOURCE_TABLE} → {resource.name} ({first.published} rows, then {second.published} new "
        f"row by watermark) → {consumer.name}'s front-end table {SINK_TABLE} shows the new row: "
        f"{name}={copied[0]!r}, provider {copied[1]} (`govbus agent source|sink`)"
    )
