"""Upload sessions: which uploads are open, for which repository, and when they were last active.

The bytes of an upload are in blob storage under its upload key; these rows are what a 202
acknowledges and what upload expiry walks.
"""

from __future__ import annotations

from datetime import datetime

from portside.metadata import blob_queries as q
from portside.metadata.records import UploadRecord
from portside.metadata.store import MetadataStore, as_utc, utcnow


class UploadSessionStore:
    """The ``uploads`` table, on the registry's metadata store."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    async def create(self, upload_id: str, repository: str) -> None:
        """Record a new upload session."""
        now = utcnow()
        async with self._store.writing() as conn:
            await conn.execute(q.CREATE_UPLOAD, {"p_id": upload_id, "p_repository": repository, "p_now": now})

    async def get(self, upload_id: str) -> UploadRecord | None:
        """An upload session by id."""
        async with self._store.reading() as conn:
            row = (await conn.execute(q.GET_UPLOAD, {"p_id": upload_id})).first()
        if row is None:
            return None
        return UploadRecord(row.id, row.repository, as_utc(row.created_at), as_utc(row.updated_at))

    async def get_with_quota(self, upload_id: str, namespace: str) -> tuple[UploadRecord | None, int | None]:
        """An upload session by id, and ``namespace``'s own quota in bytes (None without one or without the session)."""
        async with self._store.reading() as conn:
            row = (await conn.execute(q.GET_UPLOAD_WITH_QUOTA, {"p_id": upload_id, "p_namespace": namespace})).first()
        if row is None:
            return None, None
        record = UploadRecord(row.id, row.repository, as_utc(row.created_at), as_utc(row.updated_at))
        return record, None if row.quota_limit is None else int(row.quota_limit)

    async def touch(self, upload_id: str) -> None:
        """Mark an upload as active now (it expires counting from its last activity)."""
        async with self._store.writing() as conn:
            await conn.execute(q.TOUCH_UPLOAD, {"p_id": upload_id, "p_now": utcnow()})

    async def delete(self, upload_id: str) -> bool:
        """Forget an upload session; False if it was not there."""
        async with self._store.writing() as conn:
            result = await conn.execute(q.DELETE_UPLOAD, {"p_id": upload_id})
            return bool(result.rowcount)

    async def idle_since(self, before: datetime) -> list[str]:
        """Ids of uploads with no activity since ``before``."""
        async with self._store.reading() as conn:
            result = await conn.execute(q.IDLE_UPLOADS, {"p_before": before})
            return list(result.scalars())
