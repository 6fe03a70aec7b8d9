"""Feeding a large upload's chunks, as they arrive, to a function running in its own thread.

Handing a 4 MiB batch to a pooled thread (``asyncio.to_thread``) costs little per batch, but the
work on the last batch only starts after its last byte: hashing 4 MiB there is 2.5-4 ms of each
8 MiB ``PATCH``. A :class:`ChunkPipe` gives each chunk to a dedicated thread through a
``queue.SimpleQueue`` as soon as it is received, so that thread (hashing, or writing) keeps pace
with the socket and little is left when the body ends. Measured on a bare ASGI app under Granian:
receiving and hashing 256 MiB went from 690-860 MiB/s (4 MiB batches) to 870-1,220 MiB/s.

The event loop keeps the backlog bounded with :meth:`ChunkPipe.mark`: a future that resolves when
the thread has consumed everything put before it.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable


class _Mark:
    """A point in the stream; the thread resolves ``future`` on reaching it."""

    __slots__ = ("final", "future", "last")

    def __init__(self, future: asyncio.Future[None], final: Callable[[], None] | None, last: bool) -> None:
        self.future = future
        self.final = final
        self.last = last


class ChunkPipe:
    """A thread that calls ``consume`` on each chunk, in order.

    ``idle``, if given, runs in the thread whenever it has consumed chunks and finds nothing more
    queued: a writer writes out what it holds then, so little is left to write at the end. After
    the first failure (of ``consume``, ``idle`` or the final step) the thread skips what follows,
    and every mark from then on (including the one :meth:`close` returns) raises that failure.
    """

    def __init__(self, consume: Callable[[bytes], None], name: str, idle: Callable[[], None] | None = None) -> None:
        self._consume = consume
        self._idle = idle
        self._loop = asyncio.get_running_loop()
        self._queue: queue.SimpleQueue[bytes | _Mark] = queue.SimpleQueue()
        self._failure: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, chunk: bytes) -> None:
        """Queue a chunk for the thread."""
        self._queue.put(chunk)

    def mark(self) -> asyncio.Future[None]:
        """A future that resolves once everything put so far is consumed (or raises its failure)."""
        return self._put_mark(None)

    def close(self, final: Callable[[], None] | None = None) -> asyncio.Future[None]:
        """Stop after what is queued, running ``final`` in the thread last (unless a chunk failed).

        Await the result before letting go of what ``consume`` uses (a file descriptor, a buffer).
        """
        if self._closed:
            raise RuntimeError("pipe already closed")
        self._closed = True
        return self._put_mark(final, last=True)

    def join(self) -> None:
        """Block until the thread has stopped (after :meth:`close`)."""
        self._thread.join()

    def _put_mark(self, final: Callable[[], None] | None, last: bool = False) -> asyncio.Future[None]:
        mark = _Mark(self._loop.create_future(), final, last)
        self._queue.put(mark)
        return mark.future

    def _run(self) -> None:
        consumed_since_idle = False
        while True:
            item = self._queue.get()
            if isinstance(item, _Mark):
                if item.final is not None and self._failure is None:
                    try:
                        item.final()
                    except BaseException as exc:  # handed to the awaiting coroutine
                        self._failure = exc
                try:
                    self._loop.call_soon_threadsafe(_settle, item.future, self._failure)
                except RuntimeError:  # the loop closed (shutdown): nobody is waiting
                    return
                if item.last:
                    return
            elif self._failure is None:
                try:
                    self._consume(item)
                    consumed_since_idle = True
                except BaseException as exc:  # handed to the awaiting coroutine
                    self._failure = exc
            if consumed_since_idle and self._idle is not None and self._failure is None and self._queue.empty():
                consumed_since_idle = False
                try:
                    self._idle()
                except BaseException as exc:  # handed to the awaiting coroutine
                    self._failure = exc


def _settle(future: asyncio.Future[None], failure: BaseException | None) -> None:
    if future.done():  # the awaiting coroutine was cancelled
        return
    if failure is None:
        future.set_result(None)
    else:
        future.set_exception(failure)
