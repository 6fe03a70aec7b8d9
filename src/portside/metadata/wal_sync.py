"""Making SQLite commits durable after the write lock is released, with one fsync for many.

With ``synchronous=FULL`` every commit fsyncs the write-ahead log while it still holds the
database's only write lock. Measured under 8 concurrent small-image pushes on two workers, a write
transaction held that lock for 0.8 ms, half of it the fsync, and writers waited 2.9 ms on average
for it (docs/performance.md). So Portside's own write connections run with
``synchronous=NORMAL`` (a commit writes its log frames but does not fsync them) and each
transaction is acknowledged only after :meth:`WalSync.sync` has fsynced the log file: the same
durability as ``FULL`` (that is all ``FULL`` adds in WAL mode), but the lock is free meanwhile,
the event loop serves other requests, and one fsync covers every commit that came before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from portside.metadata.engines import sqlite_file


class WalSync:
    """fsync of one database's write-ahead log, shared by the commits waiting for it."""

    def __init__(self, database_path: str) -> None:
        self._wal_path = f"{database_path}-wal"
        self._requested = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._syncer: asyncio.Task[None] | None = None

    async def sync(self) -> None:
        """Return once everything committed before this call is on disk."""
        self._requested += 1
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((self._requested, waiter))
        if self._syncer is None or self._syncer.done():
            self._syncer = asyncio.get_running_loop().create_task(self._sync_while_asked())
        await waiter

    async def _sync_while_asked(self) -> None:
        while self._waiters:
            # Every request numbered up to here committed before it asked: this fsync covers it.
            covered = self._requested
            error: BaseException | None = None
            try:
                await asyncio.to_thread(self._fsync)
            except Exception as exc:  # reported to each waiter below
                error = exc
            done = [waiter for number, waiter in self._waiters if number <= covered]
            self._waiters = [(number, waiter) for number, waiter in self._waiters if number > covered]
            for waiter in done:
                if waiter.done():
                    continue  # its request was cancelled meanwhile
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)

    def _fsync(self) -> None:
        try:
            fd = os.open(self._wal_path, os.O_RDONLY)
        except FileNotFoundError:
            # No log: SQLite checkpointed it into the database file (and fsynced that) and removed it.
            return
        try:
            os.fsync(fd)
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)


def wal_sync_for(url: str) -> WalSync | None:
    """The log syncer for a SQLite file; None for PostgreSQL or an in-memory database."""
    path = sqlite_file(url)
    return None if path is None else WalSync(path)
