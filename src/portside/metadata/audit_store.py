"""The audit log and failed-login counters."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from portside.metadata.records import (
    AuditEvent,
)
from portside.metadata.store import MetadataStore, as_utc, utcnow
from portside.metadata.tables import (
    audit_events,
    login_failures,
)


class AuditStore:
    """Audit events and failed logins."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    # Audit log

    async def add_events(self, events: list[AuditEvent]) -> None:
        """Append events to the audit log."""
        if not events:
            return
        rows = [
            {
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "address": e.address,
                "detail": json.dumps(e.detail) if e.detail else None,
            }
            for e in events
        ]
        async with self._store.writing_in_background() as conn:
            await conn.execute(audit_events.insert(), rows)

    async def query_events(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditEvent]:
        """Audit events, newest first, filtered."""
        query = select(audit_events).order_by(audit_events.c.id.desc()).limit(limit)
        if actor:
            query = query.where(audit_events.c.actor == actor)
        if action:
            query = query.where(audit_events.c.action == action)
        if target:
            query = query.where(
                (audit_events.c.target == target)
                | (func.substr(audit_events.c.target, 1, len(target) + 1) == f"{target}/")
                | (func.substr(audit_events.c.target, 1, len(target) + 1) == f"{target}:")
            )
        if since:
            query = query.where(audit_events.c.at >= since)
        if until:
            query = query.where(audit_events.c.at < until)
        if before_id:
            query = query.where(audit_events.c.id < before_id)
        async with self._store.reading() as conn:
            rows = (await conn.execute(query)).all()
        return [
            AuditEvent(
                at=as_utc(row.at),
                actor=row.actor,
                action=row.action,
                target=row.target,
                address=row.address,
                detail=json.loads(row.detail) if row.detail else {},
                id=row.id,
            )
            for row in rows
        ]

    # Failed logins

    @staticmethod
    def _failure_query(key: str) -> Any:
        # "count" would clash with Row.count(), hence the label.
        return select(login_failures.c.window_start, login_failures.c.count.label("failures")).where(
            login_failures.c.key == key
        )

    async def count_failure(self, key: str, window: timedelta) -> int:
        """Count one failed login for ``key`` in the current window; returns the count."""
        now = utcnow()
        async with self._store.writing() as conn:
            row = (await conn.execute(self._failure_query(key))).first()
            if row is None or as_utc(row.window_start) < now - window:
                await conn.execute(delete(login_failures).where(login_failures.c.key == key))
                await conn.execute(login_failures.insert().values(key=key, window_start=now, count=1))
                return 1
            await conn.execute(update(login_failures).where(login_failures.c.key == key).values(count=row.failures + 1))
            return int(row.failures) + 1

    async def failures(self, key: str, window: timedelta) -> tuple[int, datetime | None]:
        """Failed logins for ``key`` in the current window, and when the window started."""
        async with self._store.reading() as conn:
            row = (await conn.execute(self._failure_query(key))).first()
        if row is None or as_utc(row.window_start) < utcnow() - window:
            return 0, None
        return int(row.failures), as_utc(row.window_start)

    async def clear_failures(self, key: str) -> None:
        """Forget failures after a successful login."""
        async with self._store.writing() as conn:
            await conn.execute(delete(login_failures).where(login_failures.c.key == key))
