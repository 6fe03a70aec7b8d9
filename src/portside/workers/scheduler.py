"""Background jobs: plain async functions run on an interval by the leading process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from portside.metadata.store import utcnow
from portside.workers.leader import Leadership

log = logging.getLogger("portside.workers")


@dataclass(frozen=True)
class Job:
    """A named job and how often it runs."""

    name: str
    interval_seconds: float
    run: Callable[[], Awaitable[object]]
    # False for frequent polling jobs: a run that returns None (nothing to do) is not recorded.
    record_idle: bool = True


# Told of every run: job name, start, end, outcome ("ok: <result>" or "failed: <error>").
RunRecorder = Callable[[str, datetime, datetime, str], Awaitable[None]]


async def run_jobs(
    jobs: list[Job], leadership: Leadership, record: RunRecorder | None = None, poll_seconds: float = 5.0
) -> None:
    """Run every job on its interval while this process leads; try to lead every ``poll_seconds``."""
    due = dict.fromkeys((job.name for job in jobs), 0.0)
    loop = asyncio.get_running_loop()
    try:
        while True:
            if await leadership.try_acquire():
                for job in jobs:
                    if loop.time() >= due[job.name]:
                        await _run_one(job, record)
                        due[job.name] = loop.time() + job.interval_seconds
            await asyncio.sleep(min([poll_seconds, *(job.interval_seconds for job in jobs)]))
    finally:
        await leadership.release()


async def _run_one(job: Job, record: RunRecorder | None) -> None:
    started = utcnow()
    try:
        result = await job.run()
        if result is None and not job.record_idle:
            return
        outcome = f"ok: {result}"
        log.info("job %s finished: %s", job.name, outcome)
    except Exception as exc:
        outcome = f"failed: {exc!r}"
        log.exception("job %s failed", job.name)
    if record is not None:
        try:
            await record(job.name, started, utcnow(), outcome)
        except Exception:
            log.exception("could not record the run of job %s", job.name)


async def run_every(interval_seconds: float, job: Callable[[], Awaitable[object]]) -> None:
    """Run ``job`` every ``interval_seconds`` in this process (for per-process work such as flushing buffers)."""
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            await job()
        except Exception:
            log.exception("periodic job failed")
