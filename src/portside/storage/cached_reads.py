"""Reading a local file for a download: from the page cache in the event loop's thread, else in a thread.

A 1 MiB read that the page cache can answer takes about 85 us here, less than handing it to a
thread and back; a read that must wait for the disk would stall every request on the event
loop. ``preadv(2)`` with ``RWF_NOWAIT`` does the first and refuses the second (``EAGAIN``), so
only reads that need the disk go to a thread. The reads land in fresh ``bytearray`` buffers,
which the ASGI server takes as they are (it copies the body anyway), so no byte is copied twice.
Measured with one 256 MiB download at a time (docs/performance.md): 3,330 against 2,846 MiB/s.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import AsyncGenerator
from pathlib import Path

READ_SIZE = 1 << 20
# Where the kernel or the filesystem does not support RWF_NOWAIT for buffered reads.
_UNSUPPORTED = (errno.EOPNOTSUPP, errno.EINVAL)


def _read_cached(fd: int, size: int, offset: int) -> bytearray | None:
    """What the page cache holds of ``size`` bytes at ``offset`` (possibly fewer), or ``None``."""
    buffer = bytearray(size)
    try:
        got = os.preadv(fd, [buffer], offset, os.RWF_NOWAIT)
    except BlockingIOError:
        return None
    if got < size:
        del buffer[got:]
    return buffer


async def read_whole_file(path: Path) -> AsyncGenerator[bytes | bytearray, None]:
    """The file's bytes in pieces of up to 1 MiB, read from the page cache without a thread where it can.

    Raises ``FileNotFoundError`` before yielding anything if the file is absent.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        offset = 0
        nowait = hasattr(os, "RWF_NOWAIT")
        while offset < size:
            want = min(READ_SIZE, size - offset)
            piece: bytes | bytearray | None = None
            if nowait:
                try:
                    piece = _read_cached(fd, want, offset)
                except OSError as exc:
                    if exc.errno not in _UNSUPPORTED:
                        raise
                    nowait = False
            if piece is None:
                piece = await asyncio.to_thread(os.pread, fd, want, offset)
            if not piece:
                return  # the file shrank under us; the response's length check reports it
            offset += len(piece)
            yield piece
    finally:
        os.close(fd)
