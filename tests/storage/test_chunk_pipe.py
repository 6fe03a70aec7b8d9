"""ChunkPipe: a thread consuming an upload's chunks in order, with marks for back-pressure."""

from __future__ import annotations

import asyncio
import threading

import pytest

from portside.storage.chunk_pipe import ChunkPipe

pytestmark = pytest.mark.anyio


async def test_chunks_are_consumed_in_order_and_the_final_step_runs_last() -> None:
    seen: list[bytes] = []
    threads: set[str] = set()

    def consume(chunk: bytes) -> None:
        threads.add(threading.current_thread().name)
        seen.append(chunk)

    pipe = ChunkPipe(consume, "test-pipe")
    pieces = [bytes([n]) * (n + 1) for n in range(200)]
    for piece in pieces[:100]:
        pipe.put(piece)
    await pipe.mark()
    assert seen == pieces[:100]  # a mark resolves only after everything put before it
    for piece in pieces[100:]:
        pipe.put(piece)
    await pipe.close(lambda: seen.append(b"final"))
    assert seen == [*pieces, b"final"]
    assert threads == {"test-pipe"}
    pipe.join()
    with pytest.raises(RuntimeError, match="closed"):
        pipe.close()


async def test_a_failure_skips_the_rest_and_every_later_mark_raises_it() -> None:
    seen: list[bytes] = []

    def consume(chunk: bytes) -> None:
        if chunk == b"bad":
            raise OSError(28, "No space left on device")
        seen.append(chunk)

    pipe = ChunkPipe(consume, "test-pipe")
    pipe.put(b"one")
    before = pipe.mark()
    pipe.put(b"bad")
    pipe.put(b"two")
    after = pipe.mark()
    finals: list[str] = []
    closed = pipe.close(lambda: finals.append("ran"))
    await before
    with pytest.raises(OSError, match="No space"):
        await after
    with pytest.raises(OSError, match="No space"):
        await closed
    assert seen == [b"one"]
    assert finals == []  # the final step (writing the tail) does not run after a failure


async def test_idle_runs_whenever_the_thread_has_caught_up() -> None:
    events: list[str] = []
    release = threading.Event()

    def consume(chunk: bytes) -> None:
        release.wait(5)
        events.append(chunk.decode())

    pipe = ChunkPipe(consume, "test-pipe", idle=lambda: events.append("idle"))
    for name in ("a", "b", "c"):
        pipe.put(name.encode())
    await asyncio.sleep(0.05)  # the thread is held in "a" while "b" and "c" queue up
    release.set()
    await pipe.mark()
    for _ in range(500):  # the thread runs idle just after settling the mark
        if events[-1] == "idle":
            break
        await asyncio.sleep(0.01)
    pipe.put(b"d")
    await pipe.close()
    # Not after "a" or "b" (more was queued), once it had caught up, and not before closing.
    assert events == ["a", "b", "c", "idle", "d"]


async def test_a_failing_idle_step_is_raised_like_a_failing_chunk() -> None:
    def idle() -> None:
        raise OSError(5, "Input/output error")

    pipe = ChunkPipe(lambda chunk: None, "test-pipe", idle=idle)
    pipe.put(b"a")
    await asyncio.sleep(0.05)
    with pytest.raises(OSError, match="Input/output"):
        await pipe.close()


async def test_a_cancelled_waiter_leaves_the_thread_to_finish() -> None:
    release = threading.Event()
    consumed: list[bytes] = []

    def consume(chunk: bytes) -> None:
        release.wait(5)
        consumed.append(chunk)

    pipe = ChunkPipe(consume, "test-pipe")
    pipe.put(b"x")
    waiter = asyncio.ensure_future(pipe.close())
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    release.set()
    await asyncio.to_thread(pipe.join)
    assert consumed == [b"x"]
