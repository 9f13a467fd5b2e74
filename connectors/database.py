"""The front-end database (前置库): opened through SQLAlchemy, any dialect that is installed.

Tested: PostgreSQL (``postgresql+psycopg://``) and SQLite (``sqlite:///path``). The rest work
through their SQLAlchemy dialects (docs/agent.md): MySQL (``mysql+pymysql://``), Oracle
(``oracle+oracledb://``), 达梦 (``dm+dmPython://``, the vendor's ``sqlalchemy-dm``).

A column's SQL type is known to the agent by its category (``category``): text, integer,
number, date, datetime, boolean, binary, or any (SQLite columns declared without a type).
Which item data types a category may feed is ``FEEDS``.

SQLite stores whatever bytes it is given in a TEXT column; sqlite3 raises on the first value
that is not UTF-8 and so fails the whole query. The engine's connections return such a value
as bytes instead (``rows.decode_text``), so only that row is dead-lettered, naming its column.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from connectors.rows import decode_text
from govbus.vocabulary.errors import ServiceUnavailable, UserError

__all__ = ["FEEDS", "DatabaseError", "category", "open_database", "reflect"]


class DatabaseError(ServiceUnavailable):
    """The front-end database cannot be reached or refused a statement; says which and why."""


# Item data types (govbus/vocabulary/spec.py) a column of each category can feed.
FEEDS: dict[str, frozenset[str]] = {
    "text": frozenset("CMDTG"),  # D, T as ISO text; G as base64 (checked per record)
    "integer": frozenset("CMINBFYL"),  # text items get the digits, L items 0/1
    "number": frozenset("INBFY"),  # I only for whole values (checked per record)
    "date": frozenset("D"),
    "datetime": frozenset("T"),
    "boolean": frozenset("L"),
    "binary": frozenset("G"),
    "any": frozenset("CNYDTLMGBIF"),
}


def category(sql_type: sa.types.TypeEngine[Any]) -> str | None:
    """The category of a reflected column type; None for a type the agent does not read."""
    if isinstance(sql_type, sa.types.NullType):
        return "any"
    if isinstance(sql_type, sa.Boolean):
        return "boolean"
    if isinstance(sql_type, sa.DateTime):
        return "datetime"
    if isinstance(sql_type, sa.Date):
        return "date"
    if isinstance(sql_type, sa.Integer):
        return "integer"
    if isinstance(sql_type, sa.Numeric):
        return "number"
    if isinstance(sql_type, sa.String):
        return "text"
    if isinstance(sql_type, sa.LargeBinary):
        return "binary"
    return None


def open_database(url: str | None, what: str) -> Engine:
    """An engine on the front-end database ``url``; connects once to say early if it cannot."""
    if not url:
        raise UserError(
            f"{what}: no front-end database: give --database URL or 'database:' in the mapping "
            "(a SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/db)"
        )
    try:
        parsed = sa.make_url(url)
        engine = sa.create_engine(parsed, pool_pre_ping=True)
    except sa.exc.ArgumentError as exc:
        raise UserError(f"{what}: not a database URL ({exc})") from None
    except (sa.exc.NoSuchModuleError, ModuleNotFoundError) as exc:
        raise UserError(
            f"{what}: no SQLAlchemy dialect or driver for {sa.make_url(url).drivername} "
            f"({exc}); install it (docs/agent.md lists the dialects)"
        ) from None
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_text)
    try:
        with engine.connect():
            pass
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        shown = parsed.render_as_string(hide_password=True)
        raise DatabaseError(f"{what}: cannot connect to {shown}: {_first_line(exc)}") from None
    return engine


def _sqlite_text(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.text_factory = decode_text


def reflect(engine: Engine, name: str) -> sa.Table | None:
    """The table ``name`` as the database has it now, or None if there is none."""
    if not sa.inspect(engine).has_table(name):
        return None
    return sa.Table(name, sa.MetaData(), autoload_with=engine)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
