"""Web UI sessions (migration ``0007_web``): one row per signed-in browser."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from portside.metadata.people_store import _user
from portside.metadata.records import UserRecord
from portside.metadata.store import MetadataStore, as_utc, utcnow
from portside.metadata.tables import users, web_sessions


@dataclass(frozen=True)
class WebSessionRecord:
    """A live session and the user it signs in."""

    id: str
    user: UserRecord
    created_at: datetime
    expires_at: datetime


class WebSessionStore:
    """Rows of ``web_sessions``; the id is a digest of the cookie's secret, never the secret."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    async def create(self, session_id: str, user_id: int, expires_at: datetime, address: str | None) -> None:
        """Record a new session."""
        async with self._store.writing() as conn:
            await conn.execute(
                web_sessions.insert().values(
                    id=session_id, user_id=user_id, created_at=utcnow(), expires_at=expires_at, address=address
                )
            )

    async def get(self, session_id: str) -> WebSessionRecord | None:
        """The session and its user, in one query; ``None`` if absent or expired."""
        query = (
            select(
                users,
                web_sessions.c.created_at.label("session_created_at"),
                web_sessions.c.expires_at.label("session_expires_at"),
            )
            .select_from(web_sessions.join(users, users.c.id == web_sessions.c.user_id))
            .where(web_sessions.c.id == session_id)
        )
        async with self._store.reading() as conn:
            row = (await conn.execute(query)).first()
        if row is None or as_utc(row.session_expires_at) <= utcnow():
            return None
        return WebSessionRecord(session_id, _user(row), as_utc(row.session_created_at), as_utc(row.session_expires_at))

    async def delete(self, session_id: str) -> bool:
        """End one session; False if it was not there."""
        async with self._store.writing() as conn:
            result = await conn.execute(delete(web_sessions).where(web_sessions.c.id == session_id))
            return bool(result.rowcount)

    async def delete_for_user(self, user_id: int) -> int:
        """End every session of a user (after a password change, say); how many ended."""
        async with self._store.writing() as conn:
            result = await conn.execute(delete(web_sessions).where(web_sessions.c.user_id == user_id))
            return int(result.rowcount or 0)

    async def purge_expired(self) -> int:
        """Remove sessions past their expiry; how many."""
        async with self._store.writing() as conn:
            result = await conn.execute(delete(web_sessions).where(web_sessions.c.expires_at <= utcnow()))
            return int(result.rowcount or 0)
