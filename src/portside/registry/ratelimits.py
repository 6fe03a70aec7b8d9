"""Pull rate limits as Docker Hub has them: pulls per fixed window, per account or per client address.

A pull is a manifest ``GET``; ``HEAD`` and blob downloads do not count. Every manifest response
tells the caller where they stand (``RateLimit-Limit: 100;w=21600``,
``RateLimit-Remaining: 76;w=21600``); a pull over the limit is answered ``429 TOOMANYREQUESTS``
with ``Retry-After`` (seconds until the window ends). Counters live in the database, so all
workers and all nodes of a cluster count together.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from portside.metadata.ratelimit_store import PullCounterStore


def window_start(now: float, window_seconds: int) -> int:
    """The start (Unix seconds) of the fixed window ``now`` falls in."""
    return int(now // window_seconds) * window_seconds


def subject_for(caller: str | None, address: str | None) -> str:
    """Whose counter a pull goes to: the account when signed in, else the client address."""
    if caller and caller != "anonymous":
        return caller
    return f"address:{address or 'unknown'}"


@dataclass(frozen=True)
class PullQuota:
    """Where a caller stands in the current window."""

    limit: int
    used: int
    window_seconds: int
    reset_after: int
    source: str

    @property
    def remaining(self) -> int:
        """Pulls left in this window."""
        return max(0, self.limit - self.used)

    @property
    def exceeded(self) -> bool:
        """True if the pull that produced this quota was over the limit."""
        return self.used > self.limit

    def headers(self) -> dict[str, str]:
        """The headers every manifest response carries (Docker Hub's names and format)."""
        return {
            "RateLimit-Limit": f"{self.limit};w={self.window_seconds}",
            "RateLimit-Remaining": f"{self.remaining};w={self.window_seconds}",
            "Docker-RateLimit-Source": self.source,
        }

    def retry_headers(self) -> dict[str, str]:
        """The headers of a 429: the quota and when to come back."""
        return {**self.headers(), "Retry-After": str(max(1, self.reset_after))}


@dataclass(frozen=True)
class PullLimits:
    """The configured limits."""

    anonymous: int
    authenticated: int
    window_seconds: int


class PullLimiter:
    """Counts pulls and answers whether one more is allowed."""

    def __init__(self, store: PullCounterStore, limits: PullLimits, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.limits = limits
        self.clock = clock

    def _limit_for(self, subject: str) -> int:
        return self.limits.anonymous if subject.startswith("address:") else self.limits.authenticated

    def _quota(self, subject: str, used: int, now: float, start: int) -> PullQuota:
        window = self.limits.window_seconds
        reset_after = int(start + window - now + 0.999)
        source = subject.removeprefix("address:")
        return PullQuota(self._limit_for(subject), used, window, reset_after, source)

    async def pull(self, caller: str | None, address: str | None) -> PullQuota:
        """Count one pull (a manifest GET) and return the caller's quota, ``exceeded`` if over the limit."""
        subject = subject_for(caller, address)
        now = self.clock()
        start = window_start(now, self.limits.window_seconds)
        used = await self.store.increment(subject, start)
        return self._quota(subject, used, now, start)

    async def peek(self, caller: str | None, address: str | None) -> PullQuota:
        """The caller's quota without counting (a manifest HEAD)."""
        subject = subject_for(caller, address)
        now = self.clock()
        start = window_start(now, self.limits.window_seconds)
        used = await self.store.current(subject, start)
        return self._quota(subject, min(used, self._limit_for(subject)), now, start)

    async def purge(self) -> None:
        """Drop the counters of windows that have ended (run as a background job)."""
        await self.store.purge_before(window_start(self.clock(), self.limits.window_seconds))
