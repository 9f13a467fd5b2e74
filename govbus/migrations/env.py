"""Alembic environment: migrates the connection ``CatalogStore.migrate`` hands over.

Alembic is configured in code (no alembic.ini): the store puts its open connection in
``config.attributes["connection"]``; run by hand, ``sqlalchemy.url`` is used instead.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

# ... and the web console's accounts (0004).
from govbus.accounts import model as _accounts_model  # noqa: F401
from govbus.catalog.model import Base

# Imported for their tables: one Alembic history covers the catalog, the share requests and
# the violation ledger (0005) ...
from govbus.share import model as _share_model  # noqa: F401
from govbus.supervise import model as _supervise_model  # noqa: F401


def _migrate(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode recreates the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: pass a connection or set sqlalchemy.url")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            _migrate(conn)
    finally:
        engine.dispose()


run()
