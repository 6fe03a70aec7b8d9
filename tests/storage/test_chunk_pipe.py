"""ChunkPipe: a thread consuming an upload's chunks in order, with marks for back-pressure."""

from __future__ import annotations

import asyncio
import threading

import pytest

from portside.storage.chunk_pipe import IDLE_THREAD, ChunkPipe, PipeThreads

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


# --- PipeThreads -----------------------------------------------------------------------------


def _thread(ident: int) -> threading.Thread:
    return next(thread for thread in threading.enumerate() if thread.ident == ident)


async def test_pipes_one_after_another_are_served_by_one_kept_thread() -> None:
    threads = PipeThreads(keep=2)
    served: list[tuple[int, str]] = []

    def consume(chunk: bytes) -> None:
        served.append((threading.get_ident(), threading.current_thread().name))

    for name in ("first-pipe", "second-pipe"):
        pipe = ChunkPipe(consume, name, threads=threads)
        pipe.put(b"x")
        await pipe.close()
        pipe.join()
    (first_ident, first_name), (second_ident, second_name) = served
    assert first_ident == second_ident  # no thread started for the second pipe
    assert (first_name, second_name) == ("first-pipe", "second-pipe")
    assert _thread(first_ident).name == IDLE_THREAD  # named for a pipe only while it serves one
    threads.stop()
    await asyncio.to_thread(_thread(first_ident).join, 5)


async def test_no_more_than_keep_threads_stay_and_stop_ends_them() -> None:
    threads = PipeThreads(keep=1)
    release = threading.Event()
    idents: set[int] = set()

    def consume(chunk: bytes) -> None:
        idents.add(threading.get_ident())
        release.wait(5)

    pipes = [ChunkPipe(consume, f"pipe-{n}", threads=threads) for n in range(3)]
    for pipe in pipes:
        pipe.put(b"x")
    while len(idents) < 3:  # three pipes at once: three threads
        await asyncio.sleep(0.01)
    release.set()
    for pipe in pipes:
        await pipe.close()
        pipe.join()
    workers = [_thread(ident) for ident in idents if any(t.ident == ident for t in threading.enumerate())]
    for worker in workers:
        await asyncio.to_thread(worker.join, 0.5)
    assert sum(worker.is_alive() for worker in workers) == 1  # one kept, the others ended
    threads.stop()
    for worker in workers:
        await asyncio.to_thread(worker.join, 5)
        assert not worker.is_alive()


async def test_a_kept_thread_serves_the_next_pipe_after_a_failure() -> None:
    threads = PipeThreads(keep=1)

    def fail(chunk: bytes) -> None:
        raise OSError(28, "No space left on device")

    failing = ChunkPipe(fail, "failing", threads=threads)
    failing.put(b"x")
    with pytest.raises(OSError, match="No space"):
        await failing.close()
    failing.join()
    seen: list[bytes] = []
    following = ChunkPipe(seen.append, "following", threads=threads)
    following.put(b"y")
    await following.close()
    assert seen == [b"y"]
    threads.stop()
