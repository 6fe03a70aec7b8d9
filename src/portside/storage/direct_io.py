"""Writing large uploads around the page cache, with ``O_DIRECT``.

A large upload is written once and rarely read soon after, but a buffered write makes the kernel
find a fresh page-cache page for every 4 KiB of it. On this project's reference VM that costs
about 2.5 us of kernel CPU per page once the page cache has grown (memory handed back to the host
has to be faulted in again), which caps buffered writes near 340 MiB/s; with ``O_DIRECT`` the same
256 MiB go from an aligned buffer to the disk at 800-1,500 MiB/s with almost no kernel CPU. See
docs/performance.md.

``O_DIRECT`` wants the buffer's address, the file offset and the length aligned to the device's
block size. :class:`DirectWriter` copies incoming chunks into a page-aligned buffer and writes it
whenever it is full; what is left at the end (less than a buffer) goes out aligned as far as it
can, and the unaligned tail through the ordinary, buffered descriptor.
"""

from __future__ import annotations

import errno
import mmap
import os
from collections.abc import Iterable

# 4 KiB covers 512-byte and 4 KiB logical blocks alike; an mmap'd buffer is page-aligned.
ALIGNMENT = 4096
# flush_aligned writes nothing smaller: fewer, larger direct writes cost less CPU per byte.
FLUSH_AT_LEAST = 1 << 20


def open_direct(path: str | os.PathLike[str]) -> int | None:
    """A write-only ``O_DIRECT`` descriptor on ``path``, or ``None`` where the filesystem refuses it (tmpfs)."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return None
    try:
        return os.open(path, os.O_WRONLY | flag)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            return None
        raise


class DirectWriter:
    """Writes a stream of chunks at ``offset`` onwards: whole buffers through ``O_DIRECT``, the tail buffered.

    ``direct_fd`` is an ``O_DIRECT`` descriptor, which the writer closes, and ``buffered_fd`` an
    ordinary one (opened with ``O_APPEND``) on the same file, which it does not. ``offset``, where
    writing starts, must be aligned. Not thread-safe: one thread at a time feeds it (the upload's
    writer thread).
    """

    def __init__(self, direct_fd: int, buffered_fd: int, offset: int, buffer: mmap.mmap) -> None:
        if offset % ALIGNMENT or len(buffer) % ALIGNMENT:
            raise ValueError("direct writes need an aligned offset and buffer size")
        self._direct_fd = direct_fd
        self._direct = True
        self._buffered_fd = buffered_fd
        self._offset = offset
        self.buffer = buffer
        self._view = memoryview(buffer)
        self._filled = 0

    def write(self, chunks: Iterable[bytes]) -> None:
        """Copy ``chunks`` into the buffer, writing it out each time it fills."""
        capacity = len(self.buffer)
        for chunk in chunks:
            source = memoryview(chunk)
            while source:
                take = min(capacity - self._filled, len(source))
                self._view[self._filled : self._filled + take] = source[:take]
                self._filled += take
                source = source[take:]
                if self._filled == capacity:
                    self._write_out(capacity)

    def flush_aligned(self) -> None:
        """Write out the aligned part of what the buffer holds, if it is worth a write.

        Called when the writer has caught up with its input, so that little is left to write
        when the input ends.
        """
        aligned = self._filled - self._filled % ALIGNMENT
        if aligned >= FLUSH_AT_LEAST:
            self._write_out(aligned)

    def finish(self) -> None:
        """Write what the buffer still holds: the aligned part directly, the rest buffered."""
        aligned = self._filled - self._filled % ALIGNMENT
        if aligned:
            self._write_out(aligned)
        if self._filled:
            write_fully(self._buffered_fd, self._view[: self._filled])
            self._offset += self._filled
            self._filled = 0

    def close(self) -> None:
        """Close the ``O_DIRECT`` descriptor and let go of the buffer (which belongs to the caller)."""
        self._view.release()
        os.close(self._direct_fd)

    def _write_out(self, length: int) -> None:
        data = self._view[:length]
        offset = self._offset
        while data and self._direct:
            try:
                written = os.pwrite(self._direct_fd, data, offset)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                # A device with blocks larger than ALIGNMENT, or a short write left us unaligned:
                # the rest goes through the page cache, appended where the direct writes stopped.
                self._direct = False
                break
            data = data[written:]
            offset += written
        if data:
            write_fully(self._buffered_fd, data)
        self._offset += length
        rest = self._filled - length
        if rest:
            self._view[:rest] = self._view[length : self._filled]
        self._filled = rest


def write_fully(fd: int, data: bytes | memoryview) -> None:
    """Write all of ``data`` at the end of the file (``fd`` is opened with ``O_APPEND``)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class BufferPool:
    """A few page-aligned buffers kept for reuse, since a fresh ``mmap`` is faulted in page by page.

    Used from the event loop's thread only.
    """

    def __init__(self, size: int, keep: int) -> None:
        self._size = size
        self._keep = keep
        self._spare: list[mmap.mmap] = []

    def take(self) -> mmap.mmap:
        """A buffer of ``size`` bytes, reused when one is spare."""
        return self._spare.pop() if self._spare else mmap.mmap(-1, self._size)

    def give_back(self, buffer: mmap.mmap) -> None:
        """Keep ``buffer`` for the next taker, or unmap it if enough are kept already."""
        if len(self._spare) < self._keep:
            self._spare.append(buffer)
        else:
            buffer.close()
