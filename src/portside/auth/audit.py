"""The audit log: who did what, when, from where.

Pulls and pushes are buffered and written about once a second, off the request path;
logins, deletes and permission changes are written before the answer goes out.
"""

from __future__ import annotations

from typing import Any

from portside.metadata.accounts_store import AccountStore
from portside.metadata.records import AuditEvent
from portside.metadata.store import utcnow


class AuditLog:
    """Records audit events into the metadata store."""

    def __init__(self, store: AccountStore, buffer_limit: int = 500) -> None:
        self._store = store
        self._buffer: list[AuditEvent] = []
        self._buffer_limit = buffer_limit

    @staticmethod
    def event(actor: str, action: str, target: str | None, address: str | None, **detail: Any) -> AuditEvent:
        """An event happening now."""
        return AuditEvent(at=utcnow(), actor=actor, action=action, target=target, address=address, detail=detail)

    async def record(self, actor: str, action: str, target: str | None, address: str | None, **detail: Any) -> None:
        """Buffer a routine event (flushed within about a second, or when the buffer fills)."""
        self._buffer.append(self.event(actor, action, target, address, **detail))
        if len(self._buffer) >= self._buffer_limit:
            await self.flush()

    async def record_now(self, actor: str, action: str, target: str | None, address: str | None, **detail: Any) -> None:
        """Write a security-relevant event before returning."""
        await self._store.add_events([self.event(actor, action, target, address, **detail)])

    async def flush(self) -> int:
        """Write buffered events; how many were written."""
        events, self._buffer = self._buffer, []
        await self._store.add_events(events)
        return len(events)
