"""Background jobs: plain async functions run on an interval by the leading process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from portside.workers.leader import FileLeadership

log = logging.getLogger("portside.workers")


@dataclass(frozen=True)
class Job:
    """A named job and how often it runs."""

    name: str
    interval_seconds: float
    run: Callable[[], Awaitable[object]]


async def run_jobs(jobs: list[Job], leadership: FileLeadership, poll_seconds: float = 5.0) -> None:
    """Run every job on its interval while this process leads; try to lead every ``poll_seconds``."""
    due = dict.fromkeys((job.name for job in jobs), 0.0)
    loop = asyncio.get_running_loop()
    try:
        while True:
            if leadership.try_acquire():
                now = loop.time()
                for job in jobs:
                    if now >= due[job.name]:
                        try:
                            result = await job.run()
                            log.info("job %s finished: %s", job.name, result)
                        except Exception:
                            log.exception("job %s failed", job.name)
                        due[job.name] = loop.time() + job.interval_seconds
            await asyncio.sleep(min([poll_seconds, *(job.interval_seconds for job in jobs)]))
    finally:
        leadership.release()


async def run_every(interval_seconds: float, job: Callable[[], Awaitable[object]]) -> None:
    """Run ``job`` every ``interval_seconds`` in this process (for per-process work such as flushing buffers)."""
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            await job()
        except Exception:
            log.exception("periodic job failed")
