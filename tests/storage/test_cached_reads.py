"""Downloads read a file from the page cache in the loop's thread and from the disk in another thread."""

from __future__ import annotations

import errno
import os
import random
import threading
from pathlib import Path

import pytest

from portside.storage import cached_reads
from portside.storage.cached_reads import READ_SIZE, read_whole_file

pytestmark = pytest.mark.anyio


async def _read(path: Path) -> list[bytes | bytearray]:
    return [piece async for piece in read_whole_file(path)]


@pytest.mark.parametrize("size", [0, 1, READ_SIZE - 1, READ_SIZE, READ_SIZE + 1, 3 * READ_SIZE + 12_345])
async def test_every_byte_comes_back_in_pieces_of_at_most_a_mebibyte(tmp_path: Path, size: int) -> None:
    data = random.Random(size).randbytes(size)
    path = tmp_path / "blob"
    path.write_bytes(data)
    pieces = await _read(path)
    assert b"".join(pieces) == data
    assert all(0 < len(piece) <= READ_SIZE for piece in pieces)


async def test_cached_pages_are_read_in_this_thread_and_the_rest_in_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = random.Random(1).randbytes(2 * READ_SIZE)
    path = tmp_path / "blob"
    path.write_bytes(data)
    readers: list[str] = []
    real_pread = os.pread

    def pread(fd: int, size: int, offset: int) -> bytes:
        readers.append(threading.current_thread().name)
        return real_pread(fd, size, offset)

    monkeypatch.setattr(cached_reads.os, "pread", pread)
    assert b"".join(await _read(path)) == data  # just written: all in the page cache
    assert readers == []

    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # out of the page cache
    finally:
        os.close(fd)
    assert b"".join(await _read(path)) == data
    assert readers, "reads that need the disk go to a thread"
    assert threading.main_thread().name not in readers


async def test_without_rwf_nowait_every_read_goes_to_a_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = random.Random(2).randbytes(READ_SIZE + 7)
    path = tmp_path / "blob"
    path.write_bytes(data)

    def refuse(fd: int, buffers: list[bytearray], offset: int, flags: int = 0) -> int:
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(cached_reads.os, "preadv", refuse)
    assert b"".join(await _read(path)) == data


async def test_a_missing_file_fails_before_the_first_piece(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await _read(tmp_path / "absent")
