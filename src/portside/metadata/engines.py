"""Database engines and connections: SQLite's pragmas and transaction mode, PostgreSQL's pool.

On SQLite every write transaction starts with ``BEGIN IMMEDIATE`` so that several server
processes sharing one file serialise cleanly instead of failing with "database is locked"
half-way through a transaction; reads run on a synchronous engine in the event loop's thread.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time we store is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _sqlite_pragmas(begin_statement: str) -> tuple[Any, Any]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before we acknowledge it, as Distribution's fsyncs are.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin_statement)

    return on_connect, on_begin


def create_engine_for(url: str, *, for_writes: bool) -> AsyncEngine:
    """An async engine configured for durability and multi-process use."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, pool_size=8, max_overflow=8)
        on_connect, on_begin = _sqlite_pragmas("BEGIN IMMEDIATE" if for_writes else "BEGIN")
        event.listen(engine.sync_engine, "connect", on_connect)
        event.listen(engine.sync_engine, "begin", on_begin)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def create_sync_read_engine(url: str) -> Engine:
    """A synchronous engine on the same SQLite file, for reads in the event loop's thread."""
    engine = create_engine(
        url.replace("+aiosqlite", ""), pool_size=4, max_overflow=8, connect_args={"check_same_thread": False}
    )
    on_connect, on_begin = _sqlite_pragmas("BEGIN")
    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    return engine


class Reader(Protocol):
    """What read methods need of a connection."""

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        """Run a statement; the result is fully buffered."""


class SyncReader:
    """A synchronous connection behind the async ``execute`` the read methods use."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        """Run the statement now, in this thread."""
        return self._conn.execute(statement, parameters)
