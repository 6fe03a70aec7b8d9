"""Large appends bypass the page cache (``O_DIRECT``) and keep every byte, whatever the alignment."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import mmap
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from portside.storage import direct_io, filesystem
from portside.storage.direct_io import ALIGNMENT, BufferPool, DirectWriter, open_direct
from portside.storage.filesystem import WRITE_BATCH, FilesystemStorage
from tests.storage.conftest import needs_o_direct

pytestmark = pytest.mark.anyio

MIB = 1 << 20
UPLOAD = "uploads/direct"


def _random(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _chunks(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    pieces, offset = [], 0
    while offset < len(data):
        size = rng.choice([1, 17, 4095, 4096, 4097, 65_536, 300_000, 1_000_003])
        pieces.append(data[offset : offset + size])
        offset += size
    return pieces


async def _stream(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


def _cached_pages(path: Path) -> int:
    """How many of the file's pages are in the page cache (mincore(2) on a read-only mapping)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    size = path.stat().st_size
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    fd = os.open(path, os.O_RDONLY)
    try:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert address not in (None, ctypes.c_void_p(-1).value), os.strerror(ctypes.get_errno())
        try:
            vector = ctypes.create_string_buffer(pages)
            assert libc.mincore(address, size, vector) == 0, os.strerror(ctypes.get_errno())
            return sum(byte & 1 for byte in vector.raw)
        finally:
            libc.munmap(address, size)
    finally:
        os.close(fd)


def _write_with(tmp_path: Path, prefix: bytes, pieces: list[bytes], buffer_size: int = 64 * 1024) -> Path:
    path = tmp_path / "blob"
    path.write_bytes(prefix)
    buffered = os.open(path, os.O_WRONLY | os.O_APPEND)
    direct = open_direct(path)
    assert direct is not None
    buffer = mmap.mmap(-1, buffer_size)
    writer = DirectWriter(direct, buffered, len(prefix), buffer)
    try:
        writer.write(pieces[: len(pieces) // 2])
        writer.write(pieces[len(pieces) // 2 :])
        writer.finish()
        os.fsync(buffered)
    finally:
        writer.close()
        buffer.close()
        os.close(buffered)
    return path


@needs_o_direct
def test_the_writer_keeps_every_byte_of_odd_sized_chunks_after_an_aligned_prefix(tmp_path: Path) -> None:
    prefix = _random(2 * ALIGNMENT, 1)
    data = _random(3 * MIB + 12_345, 2)
    path = _write_with(tmp_path, prefix, _chunks(data, 3))
    assert path.read_bytes() == prefix + data


@needs_o_direct
def test_a_refused_or_short_direct_write_falls_back_to_the_page_cache_without_losing_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    real_pwrite = os.pwrite

    def pwrite(fd: int, data: memoryview, offset: int) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            return real_pwrite(fd, data[: len(data) // 2], offset)  # a short write, still aligned
        if calls["n"] == 3:
            raise OSError(errno.EINVAL, "block size larger than the alignment")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(direct_io.os, "pwrite", pwrite)
    data = _random(MIB + 5, 4)
    path = _write_with(tmp_path, b"", _chunks(data, 5))
    assert calls["n"] == 3
    assert path.read_bytes() == data


def test_the_writer_refuses_an_unaligned_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="aligned"):
        DirectWriter(0, 0, 100, mmap.mmap(-1, ALIGNMENT))


def test_the_pool_reuses_buffers_and_keeps_no_more_than_asked() -> None:
    pool = BufferPool(ALIGNMENT, keep=1)
    first, second = pool.take(), pool.take()
    pool.give_back(first)
    pool.give_back(second)
    assert second.closed and not first.closed
    assert pool.take() is first


@needs_o_direct
async def test_a_large_append_bypasses_the_page_cache_and_a_small_one_does_not(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path / "blobs")
    data = _random(3 * WRITE_BATCH + 1_234, 6)
    running = hashlib.sha256()
    await storage.create(UPLOAD)
    assert await storage.append(UPLOAD, _stream(_chunks(data, 7)), 0, observer=running.update) == len(data)
    path = tmp_path / "blobs" / UPLOAD
    assert path.read_bytes() == data
    assert running.hexdigest() == hashlib.sha256(data).hexdigest()
    # Only the unaligned tail (at most one page) went through the page cache; read_bytes above
    # reads the rest in again, so look at a fresh copy of the same upload.
    await storage.create(UPLOAD)
    await storage.append(UPLOAD, _stream(_chunks(data, 8)), 0)
    assert _cached_pages(path) <= 1

    small = _random(WRITE_BATCH // 2, 9)
    await storage.create("uploads/small")
    await storage.append("uploads/small", _stream([small]), 0)
    assert _cached_pages(tmp_path / "blobs" / "uploads/small") == len(small) // mmap.PAGESIZE


async def test_an_append_that_starts_unaligned_is_written_through_the_page_cache_whole(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path / "blobs")
    head = _random(1_000, 10)
    rest = _random(2 * WRITE_BATCH + 77, 11)
    await storage.create(UPLOAD)
    assert await storage.append(UPLOAD, _stream([head]), 0) == len(head)
    assert await storage.append(UPLOAD, _stream(_chunks(rest, 12)), len(head)) == len(head) + len(rest)
    assert (tmp_path / "blobs" / UPLOAD).read_bytes() == head + rest


async def test_where_the_filesystem_refuses_o_direct_large_appends_go_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tmpfs refused O_DIRECT before Linux 6.6; open_direct then answers None.
    monkeypatch.setattr(filesystem, "open_direct", lambda path: None)
    storage = FilesystemStorage(tmp_path / "blobs")
    data = _random(2 * WRITE_BATCH + 3, 13)
    await storage.create(UPLOAD)
    assert await storage.append(UPLOAD, _stream(_chunks(data, 14)), 0) == len(data)
    path = tmp_path / "blobs" / UPLOAD
    assert _cached_pages(path) == (len(data) + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    assert path.read_bytes() == data
