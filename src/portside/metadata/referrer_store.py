"""Which manifests of a repository name a given manifest as their subject (the referrers API)."""

from __future__ import annotations

import json

from sqlalchemy import select

from portside.metadata.records import ReferrerRecord
from portside.metadata.store import MetadataStore
from portside.metadata.tables import manifests, repositories


async def list_referrers(store: MetadataStore, repository: str, subject_digest: str) -> list[ReferrerRecord]:
    """Manifests of ``repository`` whose subject is ``subject_digest``, oldest first."""
    query = (
        select(
            manifests.c.digest,
            manifests.c.media_type,
            manifests.c.size,
            manifests.c.artifact_type,
            manifests.c.annotations,
        )
        .select_from(manifests.join(repositories, repositories.c.id == manifests.c.repository_id))
        .where(repositories.c.name == repository, manifests.c.subject_digest == subject_digest)
        .order_by(manifests.c.created_at, manifests.c.digest)
    )
    async with store.reading() as conn:
        rows = (await conn.execute(query)).all()
    return [
        ReferrerRecord(
            digest=row.digest,
            media_type=row.media_type,
            size=int(row.size),
            artifact_type=row.artifact_type,
            annotations=json.loads(row.annotations) if row.annotations else {},
        )
        for row in rows
    ]
