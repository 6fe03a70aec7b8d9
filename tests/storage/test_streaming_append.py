"""A large append is written and hashed by threads of its own while chunks arrive; none outlives it."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import random
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from portside.storage import direct_io, filesystem
from portside.storage.filesystem import HASH_EARLY, WRITE_BATCH, FilesystemStorage
from tests.storage.conftest import needs_o_direct

pytestmark = pytest.mark.anyio

UPLOAD = "uploads/streaming"


def _random(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


async def _stream(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece
        await asyncio.sleep(0)  # as a request body does: other tasks run between chunks


def _upload_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name.startswith("upload-")]


@pytest.mark.parametrize("direct", [True, False], ids=["o_direct", "page_cache"])
@pytest.mark.parametrize(
    "size",
    [HASH_EARLY - 1, HASH_EARLY, HASH_EARLY + 1, WRITE_BATCH - 1, WRITE_BATCH, WRITE_BATCH + 1, 3 * WRITE_BATCH + 4097],
)
async def test_every_size_around_the_thresholds_is_stored_and_hashed_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, direct: bool
) -> None:
    if not direct:
        monkeypatch.setattr(filesystem, "open_direct", lambda path: None)
    storage = FilesystemStorage(tmp_path / "blobs")
    head = _random(8192, 1)  # an aligned start, after an earlier append
    data = _random(size, size)
    running = hashlib.sha256()
    await storage.create(UPLOAD)
    await storage.append(UPLOAD, _stream([head]), 0, observer=running.update)
    total = await storage.append(UPLOAD, _stream(_pieces(data, 100_003)), len(head), observer=running.update)
    assert total == len(head) + size
    assert (tmp_path / "blobs" / UPLOAD).read_bytes() == head + data
    assert running.hexdigest() == hashlib.sha256(head + data).hexdigest()
    assert _upload_threads() == []


async def test_a_body_that_breaks_off_leaves_a_prefix_on_disk_and_no_thread_behind(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path / "blobs")
    data = _random(3 * WRITE_BATCH, 2)

    async def broken() -> AsyncIterator[bytes]:
        for piece in _pieces(data[: 2 * WRITE_BATCH + 12_345], 65_536):
            yield piece
            await asyncio.sleep(0)
        raise ConnectionResetError("client went away")

    await storage.create(UPLOAD)
    with pytest.raises(ConnectionResetError):
        await storage.append(UPLOAD, broken(), 0, observer=hashlib.sha256().update)
    assert _upload_threads() == []
    kept = (tmp_path / "blobs" / UPLOAD).read_bytes()
    assert data.startswith(kept)  # what is there is right; the session's offset is the file's size
    assert await storage.stat(UPLOAD) == len(kept)


@needs_o_direct
async def test_a_failed_disk_write_fails_the_append_and_no_thread_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = FilesystemStorage(tmp_path / "blobs")
    calls = {"n": 0}
    real_pwrite = direct_io.os.pwrite

    def pwrite(fd: int, data: memoryview, offset: int) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(direct_io.os, "pwrite", pwrite)
    await storage.create(UPLOAD)
    with pytest.raises(OSError, match="No space"):
        await storage.append(UPLOAD, _stream(_pieces(_random(4 * WRITE_BATCH, 3), 65_536)), 0)
    assert _upload_threads() == []
    # The upload is still usable: a retry from its current size succeeds.
    size = await storage.stat(UPLOAD)
    assert size is not None
    monkeypatch.setattr(direct_io.os, "pwrite", real_pwrite)
    assert await storage.append(UPLOAD, _stream([b"x" * 10]), size) == size + 10


async def test_a_cancelled_append_waits_for_its_threads(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path / "blobs")
    data = _random(2 * WRITE_BATCH, 4)
    stalled = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        for piece in _pieces(data, 65_536):
            yield piece
        stalled.set()
        await asyncio.Event().wait()  # a client that stops sending
        yield b""

    await storage.create(UPLOAD)
    task = asyncio.ensure_future(storage.append(UPLOAD, stalls(), 0, observer=hashlib.sha256().update))
    await stalled.wait()
    assert _upload_threads()  # the append is large: its threads are running
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _upload_threads() == []


async def test_a_large_length_hint_starts_the_threads_with_the_first_chunk(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path / "blobs")
    data = _random(2 * WRITE_BATCH + 999, 5)
    first_sent = asyncio.Event()
    go_on = asyncio.Event()
    seen_threads: list[str] = []

    async def body() -> AsyncIterator[bytes]:
        yield data[:1000]  # far below the thresholds
        first_sent.set()
        await go_on.wait()
        for piece in _pieces(data[1000:], 65_536):
            yield piece

    running = hashlib.sha256()
    await storage.create(UPLOAD)
    task = asyncio.ensure_future(storage.append(UPLOAD, body(), 0, observer=running.update, length_hint=len(data)))
    await first_sent.wait()
    seen_threads.extend(_upload_threads())
    go_on.set()
    assert await task == len(data)
    assert sorted(seen_threads) == ["upload-hash", "upload-write"]
    assert (tmp_path / "blobs" / UPLOAD).read_bytes() == data
    assert running.hexdigest() == hashlib.sha256(data).hexdigest()


async def test_a_body_shorter_than_its_hint_is_stored_as_it_came(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path / "blobs")
    data = _random(100_000, 6)
    running = hashlib.sha256()
    await storage.create(UPLOAD)
    assert await storage.append(
        UPLOAD, _stream(_pieces(data, 7_777)), 0, observer=running.update, length_hint=10 * WRITE_BATCH
    ) == len(data)
    assert (tmp_path / "blobs" / UPLOAD).read_bytes() == data
    assert running.hexdigest() == hashlib.sha256(data).hexdigest()
    assert _upload_threads() == []


@pytest.mark.parametrize("size", [100, 200_000, 3 * WRITE_BATCH + 5], ids=["inline", "one_batch", "streamed"])
async def test_an_append_is_fsynced_once_and_off_the_event_loop(
    tmp_path: Path, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = FilesystemStorage(tmp_path / "blobs")
    await storage.create(UPLOAD)
    data = _random(size, 6)
    synced: list[tuple[str, int]] = []
    real_fsync = filesystem.os.fsync

    def fsync(fd: int) -> None:
        synced.append((threading.current_thread().name, filesystem.os.fstat(fd).st_size))
        real_fsync(fd)

    monkeypatch.setattr(filesystem.os, "fsync", fsync)
    assert await storage.append(UPLOAD, _stream(_pieces(data, 65_536)), 0, length_hint=len(data)) == size
    # One fsync, after the last byte was written, and not in the event loop's thread.
    assert len(synced) == 1 and synced[0][1] == size, synced
    assert synced[0][0] != threading.current_thread().name
    assert (tmp_path / "blobs" / UPLOAD).read_bytes() == data
    await storage.close()
