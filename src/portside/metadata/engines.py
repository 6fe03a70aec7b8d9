"""Database engines and connections: SQLite's pragmas and transaction mode, PostgreSQL's pool.

On SQLite every write transaction starts with ``BEGIN IMMEDIATE`` so that several server
processes sharing one file serialise cleanly instead of failing with "database is locked"
half-way through a transaction. Reads and writes both run on synchronous engines in the event
loop's own thread: an indexed statement costs SQLite microseconds, while handing it to
aiosqlite's thread and back cost about 0.6 ms of CPU on the benchmark machine (see
docs/performance.md). The write engine does not wait inside SQLite for the write lock (that
would stop the event loop); :func:`begin_inline_write` tells the caller to wait asynchronously.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from portside.metadata.fast_sqlite import StatementPlans


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time we store is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _sqlite_pragmas(
    begin_statement: str, busy_timeout_ms: int = 60000, synchronous: str = "FULL", *, on_driver: bool = False
) -> tuple[Any, Any]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before we acknowledge it, as Distribution's fsyncs are. NORMAL
        # only where the caller fsyncs the log itself before acknowledging (portside.metadata.wal_sync).
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Statement journals, sorts and transient indexes in memory: as files, SQLite creates and
        # deletes one in the temp directory for about every small image pushed, and on ext4 without
        # a journal each freed inode slows the filesystem's next file creations for minutes
        # (docs/performance.md). They hold a statement's worth of rows at most.
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()

    def on_begin(connection: Any) -> None:
        if on_driver:
            # Straight to sqlite3: SQLAlchemy's statement machinery cost more than BEGIN itself.
            try:
                connection.connection.dbapi_connection.execute(begin_statement)
            except sqlite3.Error as exc:
                # As SQLAlchemy would raise it (OperationalError for SQLITE_BUSY).
                raise DBAPIError.instance(begin_statement, None, exc, sqlite3.Error) from exc
        else:
            connection.exec_driver_sql(begin_statement)

    return on_connect, on_begin


def sqlite_file(url: str) -> str | None:
    """The database file of a SQLite URL; None for PostgreSQL or an in-memory database."""
    if not url.startswith("sqlite"):
        return None
    path = make_url(url).database
    return None if not path or path == ":memory:" else path


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
    on_connect, on_begin = _sqlite_pragmas("BEGIN", on_driver=True)
    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    return engine


def create_sync_write_engine(url: str) -> Engine:
    """A synchronous engine for SQLite write transactions in the event loop's thread.

    ``busy_timeout=0``: ``BEGIN IMMEDIATE`` fails at once while another connection (this
    process's or another's) holds the write lock, so the caller can wait without blocking the loop.
    ``synchronous=NORMAL``: a commit does not fsync the log; whoever commits on this engine must
    call :meth:`portside.metadata.wal_sync.WalSync.sync` before acknowledging anything.
    """
    engine = create_engine(
        url.replace("+aiosqlite", ""), pool_size=4, max_overflow=8, connect_args={"check_same_thread": False}
    )
    on_connect, on_begin = _sqlite_pragmas("BEGIN IMMEDIATE", busy_timeout_ms=0, synchronous="NORMAL", on_driver=True)
    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    return engine


def is_sqlite_busy(error: OperationalError) -> bool:
    """Whether ``error`` is SQLite's "database is locked": another writer holds the lock."""
    code = getattr(error.orig, "sqlite_errorcode", None)
    return code == sqlite3.SQLITE_BUSY or "database is locked" in str(error.orig)


class InlineConnections:
    """Connections of an in-loop engine, kept open between transactions.

    Checking a connection out of SQLAlchemy's pool and returning it cost about as much CPU as a
    short SQLite transaction itself (about 12% of a small-image push in-process). The event loop's
    thread runs one statement at a time, so a few idle connections are enough; one that failed is
    closed instead of kept.
    """

    def __init__(self, engine: Engine, keep: int = 4) -> None:
        self.engine = engine
        self._keep = keep
        self._idle: list[Connection] = []

    def take(self) -> Connection:
        """An idle connection, or a new one from the engine's pool."""
        return self._idle.pop() if self._idle else self.engine.connect()

    def give_back(self, conn: Connection, reusable: bool) -> None:
        """Keep ``conn`` for the next transaction if it ended cleanly and fewer than ``keep`` are idle."""
        if reusable and len(self._idle) < self._keep and not conn.invalidated and not conn.in_transaction():
            self._idle.append(conn)
        else:
            conn.close()

    def dispose(self) -> None:
        """Close the idle connections and the engine's pool."""
        while self._idle:
            self._idle.pop().close()
        self.engine.dispose()


def _connections(source: Engine | InlineConnections) -> InlineConnections:
    return source if isinstance(source, InlineConnections) else InlineConnections(source, keep=0)


@contextlib.asynccontextmanager
async def begin_inline_write(
    source: Engine | InlineConnections, plans: StatementPlans | None = None, timeout_seconds: float = 60.0
) -> AsyncIterator[SyncConnection]:
    """A write transaction in this thread, committed when the block ends.

    While another connection writes, waits with ``asyncio.sleep`` (1 ms doubling to 20 ms) so
    the event loop goes on serving; gives up with the "database is locked" error after
    ``timeout_seconds``, as the thread-based engine's busy timeout would.
    """
    connections = _connections(source)
    deadline = time.monotonic() + timeout_seconds
    pause = 0.001
    conn = connections.take()
    while True:
        try:
            transaction = conn.begin()
            break
        except OperationalError as exc:
            # A refused BEGIN leaves the connection as it was (no transaction): it is kept for
            # the next try rather than returned to the pool and checked out again.
            if not is_sqlite_busy(exc) or time.monotonic() >= deadline:
                connections.give_back(conn, reusable=False)
                raise
        try:
            await asyncio.sleep(pause)
        except BaseException:
            connections.give_back(conn, reusable=True)
            raise
        pause = min(pause * 2, 0.02)
    ended = False
    try:
        yield SyncConnection(conn, plans)
    except BaseException:
        transaction.rollback()
        raise
    else:
        transaction.commit()
        ended = True
    finally:
        connections.give_back(conn, reusable=ended)


@contextlib.contextmanager
def begin_inline_read(
    source: Engine | InlineConnections, plans: StatementPlans | None = None
) -> Iterator[SyncConnection]:
    """A read transaction in this thread, ended (rolled back) when the block ends."""
    connections = _connections(source)
    conn = connections.take()
    ended = False
    try:
        # Begun here, not on the first statement: prebuilt statements bypass SQLAlchemy's
        # autobegin, and all reads of one block must see one snapshot.
        transaction = conn.begin()
        yield SyncConnection(conn, plans)
        transaction.rollback()
        ended = True
    finally:
        connections.give_back(conn, reusable=ended)


class Reader(Protocol):
    """What read methods need of a connection."""

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        """Run a statement; the result is fully buffered."""


class Writer(Reader, Protocol):
    """What write methods need of a connection inside a write transaction."""


class SyncConnection:
    """A synchronous connection behind the async ``execute`` that read and write methods use.

    With ``plans``, prebuilt statements run on the sqlite3 connection underneath, in the same
    transaction (see :mod:`portside.metadata.fast_sqlite`); everything else through SQLAlchemy.
    """

    def __init__(self, conn: Connection, plans: StatementPlans | None = None) -> None:
        self._conn = conn
        self._plans = plans
        self._driver: Any = conn.connection.dbapi_connection

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        """Run the statement now, in this thread."""
        plan = None if self._plans is None else self._plans.plan_for(statement)
        if plan is not None and (result := plan.run(self._driver, parameters)) is not None:
            return result
        return self._conn.execute(statement, parameters)
