"""Leadership: exactly one process of a node, or of a cluster, runs the background jobs.

On one machine a file lock in the data dir decides among the worker processes. In a
cluster on PostgreSQL a session-level advisory lock decides among all nodes; PostgreSQL
releases it when the holder's connection dies, so another node takes over.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from abc import ABC, abstractmethod
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# An arbitrary 64-bit key naming Portside's background-job lock.
ADVISORY_LOCK_KEY = 0x706F727473696465  # "portside"


class Leadership(ABC):
    """A lock that one process at a time holds."""

    @abstractmethod
    async def try_acquire(self) -> bool:
        """Take or keep the lock if possible; True while this process leads."""

    @abstractmethod
    async def release(self) -> None:
        """Give the lock up."""


class FileLeadership(Leadership):
    """Held by whichever process first takes an exclusive ``flock`` on a file; released when it exits."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    async def try_acquire(self) -> bool:
        """Take the lock if it is free."""
        if self._fd is not None:
            return True
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def release(self) -> None:
        """Unlock and close."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class PostgresLeadership(Leadership):
    """A PostgreSQL session advisory lock, held on a connection kept open for as long as we lead."""

    def __init__(self, engine: AsyncEngine, key: int = ADVISORY_LOCK_KEY) -> None:
        self._engine = engine
        self._key = key
        self._conn: AsyncConnection | None = None

    async def try_acquire(self) -> bool:
        """Check the held connection is alive, or try to take the lock on a fresh one."""
        if self._conn is not None:
            try:
                await self._conn.execute(text("SELECT 1"))
                return True
            except DBAPIError:
                await self._drop()
        conn = await self._engine.connect()
        try:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key})).scalar_one()
        except DBAPIError:
            await conn.close()
            return False
        if not got:
            await conn.close()
            return False
        self._conn = conn
        return True

    async def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.invalidate()
            self._conn = None

    async def release(self) -> None:
        """Unlock and return the connection."""
        if self._conn is not None:
            with contextlib.suppress(DBAPIError):
                await self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
