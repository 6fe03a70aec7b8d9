"""SQLite in the event loop's thread: write transactions that wait without blocking, and the hot-read cache."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from portside.metadata import migrate
from portside.metadata.engines import (
    InlineConnections,
    begin_inline_read,
    begin_inline_write,
    create_engine_for,
    create_sync_read_engine,
    create_sync_write_engine,
)
from portside.metadata.read_cache import ChangeStamp, DataVersion, ReadCache, read_cache_for
from portside.metadata.records import BlobRecord, ManifestRecord
from portside.metadata.store import MetadataStore
from portside.metadata.wal_sync import WalSync

pytestmark = pytest.mark.anyio


def _database(tmp_path: Path) -> Path:
    path = tmp_path / "portside.db"
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE counter (n INTEGER)")
    connection.execute("INSERT INTO counter VALUES (0)")
    connection.close()
    return path


def _manifest(content: bytes) -> ManifestRecord:
    return ManifestRecord(
        digest="sha256:" + "a" * 64,
        media_type="application/json",
        content=content,
        artifact_type=None,
        subject_digest=None,
        annotations={},
    )


async def test_an_inline_write_waits_for_another_writer_while_the_loop_runs_on(tmp_path: Path) -> None:
    path = _database(tmp_path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    engine = create_sync_write_engine(f"sqlite+aiosqlite:///{path}")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    async def release_later() -> None:
        await asyncio.sleep(0.2)
        other.execute("UPDATE counter SET n = n + 1")
        other.execute("COMMIT")

    ticking = asyncio.create_task(ticker())
    releasing = asyncio.create_task(release_later())
    started = time.monotonic()
    async with begin_inline_write(engine) as conn:
        await conn.execute(text("UPDATE counter SET n = n + 10"))
    waited = time.monotonic() - started
    ticking.cancel()
    await releasing
    # It waited for the other writer's commit, and the event loop kept running meanwhile.
    assert waited >= 0.19
    assert ticks >= 10
    assert other.execute("SELECT n FROM counter").fetchone()[0] == 11
    other.close()
    engine.dispose()


async def test_an_inline_write_gives_up_after_its_timeout_with_database_is_locked(tmp_path: Path) -> None:
    path = _database(tmp_path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    engine = create_sync_write_engine(f"sqlite+aiosqlite:///{path}")
    with pytest.raises(OperationalError, match="database is locked"):
        async with begin_inline_write(engine, timeout_seconds=0.1) as conn:
            await conn.execute(text("UPDATE counter SET n = 1"))
    other.execute("ROLLBACK")
    other.close()
    engine.dispose()


async def test_inline_connections_are_kept_after_clean_transactions_and_closed_after_failed_ones(
    tmp_path: Path,
) -> None:
    path = _database(tmp_path)
    connections = InlineConnections(create_sync_write_engine(f"sqlite+aiosqlite:///{path}"), keep=1)
    async with begin_inline_write(connections) as conn:
        await conn.execute(text("UPDATE counter SET n = n + 1"))
    kept = connections.take()
    connections.give_back(kept, reusable=True)
    # A clean commit returns the connection for the next transaction, with nothing left open.
    async with begin_inline_write(connections) as conn:
        assert conn._conn is kept
        await conn.execute(text("UPDATE counter SET n = n + 1"))
    with begin_inline_read(connections) as conn:
        assert conn._conn is kept
        assert (await conn.execute(text("SELECT n FROM counter"))).scalar_one() == 2
    assert not kept.in_transaction()
    # A block that raises rolls back and closes its connection; the next one is new.
    with pytest.raises(RuntimeError):
        async with begin_inline_write(connections) as conn:
            await conn.execute(text("UPDATE counter SET n = 99"))
            raise RuntimeError("boom")
    assert kept.closed
    fresh = connections.take()
    assert fresh is not kept
    # No more than ``keep`` are kept idle.
    spare = connections.engine.connect()
    connections.give_back(fresh, reusable=True)
    connections.give_back(spare, reusable=True)
    assert spare.closed and not fresh.closed
    connections.dispose()
    assert fresh.closed
    reader = sqlite3.connect(path)
    assert reader.execute("SELECT n FROM counter").fetchone()[0] == 2
    reader.close()


async def test_an_inline_write_that_waits_for_the_lock_keeps_its_connection(tmp_path: Path) -> None:
    path = _database(tmp_path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    connections = InlineConnections(create_sync_write_engine(f"sqlite+aiosqlite:///{path}"), keep=1)
    first = connections.take()
    connections.give_back(first, reusable=True)
    checkouts = 0
    real_connect = connections.engine.connect

    def counting_connect() -> Connection:
        nonlocal checkouts
        checkouts += 1
        return real_connect()

    connections.engine.connect = counting_connect  # type: ignore[method-assign]

    async def release_later() -> None:
        await asyncio.sleep(0.05)
        other.execute("COMMIT")

    releasing = asyncio.create_task(release_later())
    async with begin_inline_write(connections) as conn:
        # Every refused BEGIN was retried on the idle connection it started with.
        assert conn._conn is first
        await conn.execute(text("UPDATE counter SET n = n + 1"))
    await releasing
    assert checkouts == 0
    assert not first.in_transaction() and not first.closed
    connections.dispose()
    other.close()
    reader = sqlite3.connect(path)
    assert reader.execute("SELECT n FROM counter").fetchone()[0] == 1
    reader.close()


async def test_every_sqlite_engine_keeps_sqlites_temporary_files_in_memory(tmp_path: Path) -> None:
    # As files, SQLite's statement journals were created and deleted about once per pushed image.
    url = f"sqlite+aiosqlite:///{_database(tmp_path)}"
    for engine in (create_sync_read_engine(url), create_sync_write_engine(url)):
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA temp_store").scalar_one() == 2  # MEMORY
        engine.dispose()
    for for_writes in (False, True):
        async_engine = create_engine_for(url, for_writes=for_writes)
        async with async_engine.connect() as async_conn:
            assert (await async_conn.exec_driver_sql("PRAGMA temp_store")).scalar_one() == 2
        await async_engine.dispose()


async def test_an_inline_write_rolls_back_when_its_block_raises(tmp_path: Path) -> None:
    path = _database(tmp_path)
    engine = create_sync_write_engine(f"sqlite+aiosqlite:///{path}")
    with pytest.raises(RuntimeError):
        async with begin_inline_write(engine) as conn:
            await conn.execute(text("UPDATE counter SET n = 99"))
            raise RuntimeError("boom")
    reader = sqlite3.connect(path)
    assert reader.execute("SELECT n FROM counter").fetchone()[0] == 0
    reader.close()
    engine.dispose()


def _cache(path: Path) -> ReadCache:
    return ReadCache(ChangeStamp(f"{path}-changes"), DataVersion(str(path)))


def test_the_read_cache_forgets_everything_when_another_process_renews_the_stamp(tmp_path: Path) -> None:
    path = _database(tmp_path)
    cache, other = _cache(path), ChangeStamp(f"{path}-changes")
    # As the store uses it: a lookup that misses, then the answer from the database kept.
    assert cache.tag_names("acme/app") is None
    cache.keep_tag_names("acme/app", ["a", "b"])
    assert cache.tag_names("acme/app") == ["a", "b"]
    other.renew()
    assert cache.tag_names("acme/app") is None
    other.close()
    cache.close()


def test_the_read_cache_sees_a_commit_that_bypassed_portside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("portside.metadata.read_cache.EXTERNAL_CHECK_SECONDS", 0.0)
    path = _database(tmp_path)
    cache = _cache(path)
    assert cache.manifest("acme/app", "latest") is None
    cache.keep_manifest("acme/app", "latest", _manifest(b"{}"))
    cache.keep_blob("acme/app", "sha256:" + "b" * 64, BlobRecord("sha256:" + "b" * 64, 3))
    assert cache.manifest("acme/app", "latest") == _manifest(b"{}")
    assert cache.blob("acme/app", "sha256:" + "b" * 64) == BlobRecord("sha256:" + "b" * 64, 3)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("UPDATE counter SET n = 1")
    writer.close()
    assert cache.manifest("acme/app", "latest") is None
    assert cache.blob("acme/app", "sha256:" + "b" * 64) is None
    cache.close()


def test_the_read_cache_stays_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("portside.metadata.read_cache.MAX_MANIFEST_BYTES", 10)
    cache = _cache(_database(tmp_path))
    cache.manifest("acme/app", "one")
    cache.keep_manifest("acme/app", "one", _manifest(b"123456"))
    cache.keep_manifest("acme/app", "two", _manifest(b"123456"))
    # Over the byte bound: the first entry made room for the second.
    assert cache.manifest("acme/app", "one") is None
    assert cache.manifest("acme/app", "two") is not None
    cache.close()


def test_only_a_sqlite_file_gets_a_read_cache(tmp_path: Path) -> None:
    assert read_cache_for("postgresql+asyncpg://u@127.0.0.1/db") is None
    assert read_cache_for("sqlite+aiosqlite:///:memory:") is None
    cache = read_cache_for(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert cache is not None
    cache.close()


async def test_a_tag_moved_by_another_process_is_seen_at_once(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'portside.db'}"
    await migrate.upgrade(url)
    reader, writer = MetadataStore(url), MetadataStore(url)
    first, second = b'{"schemaVersion":2,"n":1}', b'{"schemaVersion":2,"n":2}'
    try:
        for content in (first, second):
            digest = "sha256:" + hashlib.sha256(content).hexdigest()
            manifest = ManifestRecord(digest, "application/json", content, None, None, {})
            await writer.put_manifest("acme/app", manifest, [], tag="latest")
            # The reader store caches what it read; the other store's commit must still show.
            record = await reader.get_manifest_by_tag("acme/app", "latest")
            assert record is not None and record.content == content
            assert (await reader.get_manifest_by_tag("acme/app", "latest")) == record
    finally:
        await reader.close()
        await writer.close()


class _RecordingWalSync(WalSync):
    """A WalSync whose fsyncs are slow (20 ms) and recorded as (start, end) times."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.fsyncs: list[tuple[float, float]] = []

    def _fsync(self) -> None:
        started = time.monotonic()
        time.sleep(0.02)
        super()._fsync()
        self.fsyncs.append((started, time.monotonic()))


async def test_concurrent_commits_share_fsyncs_and_none_returns_before_one_that_began_after_it(
    tmp_path: Path,
) -> None:
    path = _database(tmp_path)
    syncer = _RecordingWalSync(str(path))
    waits: list[tuple[float, float]] = []

    async def commit(number: int) -> None:
        await asyncio.sleep(0.001 * number)
        asked = time.monotonic()
        await syncer.sync()
        waits.append((asked, time.monotonic()))

    await asyncio.gather(*(commit(n) for n in range(30)))
    assert len(waits) == 30
    for asked, returned in waits:
        # Some fsync began after this commit asked, and ended before it was acknowledged.
        assert any(asked <= start and end <= returned for start, end in syncer.fsyncs)
    # 30 requests within ~30 ms, 20 ms per fsync: far fewer fsyncs than requests.
    assert 2 <= len(syncer.fsyncs) < 10


async def test_a_failed_fsync_fails_the_commits_it_covered(tmp_path: Path) -> None:
    syncer = WalSync(str(tmp_path / "portside.db"))

    def broken() -> None:
        raise OSError(5, "Input/output error")

    syncer._fsync = broken  # type: ignore[method-assign]
    with pytest.raises(OSError, match="Input/output error"):
        await syncer.sync()


async def test_a_store_write_is_acknowledged_only_after_the_log_is_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'portside.db'}"
    await migrate.upgrade(url)
    store = MetadataStore(url)
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    content = b'{"schemaVersion":2}'
    manifest = ManifestRecord(
        "sha256:" + hashlib.sha256(content).hexdigest(), "application/json", content, None, None, {}
    )
    try:
        await store.put_manifest("acme/app", manifest, [], tag="latest")
        assert str(tmp_path / "portside.db-wal") in synced
        # The write connection itself does not fsync at commit: that is what the log sync is for.
        with store._inline_writes.engine.connect() as conn:  # type: ignore[union-attr]
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1
    finally:
        await store.close()
