"""Read-only mode for maintenance: a setting, and a runtime flag in the database that every
worker and node sees within ``maintenance_cache_seconds``.

While it is on, every write (``POST``/``PUT``/``PATCH``/``DELETE`` on ``/v2/`` and the mutating
management calls) is refused the way Distribution's ``maintenance: readonly`` refuses it: ``405``
with the ``UNSUPPORTED`` code (Distribution simply does not route write methods then). Reads go on.
"""

from __future__ import annotations

import time

from portside.metadata.webhook_store import WebhookStore
from portside.oci.errors import ErrorKind, RegistryError

READ_ONLY_FLAG = "read_only"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Maintenance:
    """Whether the registry is read-only: the ``read_only`` setting or the runtime flag."""

    def __init__(self, store: WebhookStore, configured: bool, cache_seconds: float) -> None:
        self._store = store
        self.configured = configured
        self._cache_seconds = cache_seconds
        self._cached: tuple[float, bool] | None = None

    async def runtime_flag(self) -> bool:
        """The flag stored in the database (uncached)."""
        return await self._store.get_flag(READ_ONLY_FLAG) == "on"

    async def read_only(self) -> bool:
        """True while writes are refused; the stored flag is cached briefly."""
        if self.configured:
            return True
        now = time.monotonic()
        if self._cached is None or self._cached[0] <= now:
            self._cached = (now + self._cache_seconds, await self.runtime_flag())
        return self._cached[1]

    async def set_read_only(self, on: bool) -> None:
        """Switch the runtime flag (every process sees it within the cache time)."""
        await self._store.set_flag(READ_ONLY_FLAG, "on" if on else "off")
        self._cached = None

    async def refuse_writes(self, method: str) -> None:
        """Raise the read-only error for a write ``method`` while read-only."""
        if method.upper() not in READ_METHODS and await self.read_only():
            raise RegistryError(
                ErrorKind.UNSUPPORTED,
                "the registry is in read-only mode for maintenance; only pulls work",
                {"method": method.upper(), "readOnly": True},
                headers={"Allow": "GET, HEAD"},
            )
