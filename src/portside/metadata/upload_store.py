"""Upload sessions: which uploads are open, for which repository, and when they were last active.

The bytes of an upload are in blob storage under its upload key; these rows are what upload
expiry walks. A session with a signed id has a row from its first write on (see
portside.registry.upload_ids); a finished or cancelled session's row is marked closed and stays
until it expires.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from portside.metadata import blob_queries as q
from portside.metadata.records import UploadRecord
from portside.metadata.store import MetadataStore, as_utc, utcnow
from portside.metadata.tables import registry_flags

# The registry flag holding the key that signs upload ids.
UPLOAD_ID_KEY_FLAG = "upload_id_key"
# Ids asked about in one query (SQLite allows 32,766 bound values; PostgreSQL 65,535).
ID_BATCH = 500


def _record(row: Any) -> UploadRecord:
    closed = None if row.closed_at is None else as_utc(row.closed_at)
    first_chunk = None if row.first_chunk is None else bytes(row.first_chunk)
    return UploadRecord(row.id, row.repository, as_utc(row.created_at), as_utc(row.updated_at), closed, first_chunk)


class UploadSessionStore:
    """The ``uploads`` table, on the registry's metadata store."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    async def get(self, upload_id: str) -> UploadRecord | None:
        """An upload session by id."""
        async with self._store.reading() as conn:
            row = (await conn.execute(q.GET_UPLOAD, {"p_id": upload_id})).first()
        return None if row is None else _record(row)

    async def get_with_quota(self, upload_id: str, namespace: str) -> tuple[UploadRecord | None, int | None]:
        """An upload session by id, and ``namespace``'s own quota in bytes (None without one or without the session)."""
        async with self._store.reading() as conn:
            row = (await conn.execute(q.GET_UPLOAD_WITH_QUOTA, {"p_id": upload_id, "p_namespace": namespace})).first()
        if row is None:
            return None, None
        return _record(row), None if row.quota_limit is None else int(row.quota_limit)

    async def open(
        self, upload_id: str, repository: str, created: datetime, first_chunk: bytes | None = None
    ) -> tuple[UploadRecord, bool]:
        """Make the row of a session with a signed id, unless it has one; its row as it is now, and
        whether this call made it (only then is ``first_chunk`` kept in it)."""
        now = utcnow()
        async with self._store.writing() as conn:
            made = await conn.execute(
                q.OPEN_UPLOAD[self._store.dialect],
                {
                    "p_id": upload_id,
                    "p_repository": repository,
                    "p_created": created,
                    "p_now": now,
                    "p_first_chunk": first_chunk,
                },
            )
            if made.rowcount == 1:  # the row is this call's: no need to read it back
                return UploadRecord(upload_id, repository, as_utc(created), now, None, first_chunk), True
            row = (await conn.execute(q.GET_UPLOAD, {"p_id": upload_id})).first()
        return _record(row), False

    async def close(self, upload_id: str, repository: str) -> None:
        """Mark a session finished or cancelled (making its row if it had none)."""
        async with self._store.writing() as conn:
            await conn.execute(
                q.CLOSE_UPLOAD[self._store.dialect], {"p_id": upload_id, "p_repository": repository, "p_now": utcnow()}
            )

    async def signing_key(self, fresh: str) -> str:
        """The key that signs upload ids; ``fresh`` becomes it if there is none yet (every node agrees)."""
        async with self._store.writing() as conn:
            await conn.execute(
                self._store.insert(registry_flags)
                .values(name=UPLOAD_ID_KEY_FLAG, value=fresh, updated_at=utcnow())
                .on_conflict_do_nothing()
            )
            row = (
                await conn.execute(select(registry_flags.c.value).where(registry_flags.c.name == UPLOAD_ID_KEY_FLAG))
            ).first()
        assert row is not None  # inserted above, or there already
        return str(row.value)

    async def touch(self, upload_id: str) -> None:
        """Mark an upload as active now (it expires counting from its last activity)."""
        async with self._store.writing() as conn:
            await conn.execute(q.TOUCH_UPLOAD, {"p_id": upload_id, "p_now": utcnow()})

    async def forget_closed(self, before: datetime) -> int:
        """Delete the rows of sessions closed before ``before`` (their ids have expired by then)."""
        async with self._store.writing() as conn:
            result = await conn.execute(q.FORGET_CLOSED_UPLOADS, {"p_before": before})
            return int(result.rowcount or 0)

    async def open_among(self, upload_ids: list[str]) -> set[str]:
        """Which of ``upload_ids`` are open sessions (a closed one, or one without a row, is not)."""
        found: set[str] = set()
        async with self._store.reading() as conn:
            for start in range(0, len(upload_ids), ID_BATCH):
                result = await conn.execute(q.OPEN_UPLOADS_AMONG, {"p_ids": upload_ids[start : start + ID_BATCH]})
                found.update(str(row.id) for row in result)
        return found

    async def idle_since(self, before: datetime) -> list[tuple[str, str]]:
        """Ids and repositories of open uploads with no activity since ``before``."""
        async with self._store.reading() as conn:
            result = await conn.execute(q.IDLE_UPLOADS, {"p_before": before})
            return [(str(row.id), str(row.repository)) for row in result]
