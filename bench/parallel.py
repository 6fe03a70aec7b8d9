"""Run one job in N forked worker processes that all start at the same instant.

Each worker first runs ``prepare`` (open connections, build request lists) outside the
timing, reports ready, waits for the start signal, runs ``work`` and reports its own
CPU-seconds and finish time. Forking after the data was built in the parent shares the
preallocated buffers copy-on-write, so no worker copies them.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from typing import Any

_CTX = multiprocessing.get_context("fork")


class WorkerFailed(RuntimeError):
    """A worker raised, died, or did not finish in time."""


@dataclass
class WorkerResult:
    """One worker's outcome."""

    index: int
    cpu_seconds: float
    finished: float
    payload: dict[str, Any]


@dataclass
class ParallelRun:
    """All workers' outcomes and the wall time from the start signal to the last finish."""

    wall_seconds: float
    worker_cpu_seconds: float
    results: list[WorkerResult]


Prepare = Callable[[int], Any]
Work = Callable[[int, Any], dict[str, Any]]


def _worker(index: int, prepare: Prepare, work: Work, ready: Any, go: Event, out: Any, timeout: float) -> None:
    try:
        state = prepare(index)
        ready.put(index)
        if not go.wait(timeout):
            raise WorkerFailed("start signal never came")
        cpu0 = time.process_time()
        payload = work(index, state)
        finished = time.perf_counter()
        out.put(("ok", WorkerResult(index, time.process_time() - cpu0, finished, payload)))
    except BaseException as exc:  # report everything: the parent decides
        out.put(("error", f"worker {index}: {exc!r}\n{traceback.format_exc()}"))
    finally:
        out.close()
        out.join_thread()


class ParallelJob:
    """Fork the workers and prepare them; :meth:`run` releases them and collects results."""

    def __init__(self, workers: int, prepare: Prepare, work: Work, timeout: float) -> None:
        self.timeout = timeout
        self._ready: Any = _CTX.Queue()
        self._out: Any = _CTX.Queue()
        self._go = _CTX.Event()
        self._procs = [
            _CTX.Process(
                target=_worker,
                args=(i, prepare, work, self._ready, self._go, self._out, timeout),
                name=f"bench-worker-{i}",
                daemon=True,
            )
            for i in range(workers)
        ]
        for proc in self._procs:
            proc.start()
        deadline = time.monotonic() + timeout
        for _ in self._procs:
            try:
                self._ready.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self._fail("workers did not get ready in time")

    def _fail(self, reason: str) -> None:
        errors: list[str] = []
        while True:
            try:
                kind, item = self._out.get_nowait()
            except queue.Empty:
                break
            if kind == "error":
                errors.append(str(item))
        self.close()
        raise WorkerFailed(reason + ("\n" + "\n".join(errors) if errors else ""))

    def run(self) -> ParallelRun:
        """Start every worker now; wait for all; the wall time ends at the last worker's finish."""
        started = time.perf_counter()
        self._go.set()
        results: list[WorkerResult] = []
        deadline = time.monotonic() + self.timeout
        while len(results) < len(self._procs):
            try:
                kind, item = self._out.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self._fail(f"workers did not finish within {self.timeout:.0f} s")
                raise  # unreachable: _fail raises
            if kind == "error":
                self.close()
                raise WorkerFailed(str(item))
            results.append(item)
        wall = max(r.finished for r in results) - started
        return ParallelRun(wall, sum(r.cpu_seconds for r in results), sorted(results, key=lambda r: r.index))

    def close(self) -> None:
        """Join the workers, killing any that linger."""
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, 9)
                proc.join(timeout=5)
