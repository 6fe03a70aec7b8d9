"""How much storage the registry uses: blobs and bytes, in total and per repository."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from portside.metadata.store import MetadataStore
from portside.metadata.tables import blobs, manifests, repositories, repository_blobs, tags


@dataclass(frozen=True)
class StoredTotals:
    """What the blob store holds: each blob counted once, however many repositories link it."""

    blobs: int
    blob_bytes: int
    manifests: int
    manifest_bytes: int


@dataclass(frozen=True)
class RepositoryUsage:
    """What one repository links: blobs and their bytes, manifests and tags."""

    name: str
    blobs: int
    blob_bytes: int
    manifests: int
    manifest_bytes: int
    tags: int


class UsageStore:
    """Read-only aggregates over blobs, links, manifests and tags."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    async def totals(self) -> StoredTotals:
        """Distinct blobs and manifests stored, and their bytes."""
        blob_query = select(func.count(), func.coalesce(func.sum(blobs.c.size), 0))
        manifest_query = select(func.count(), func.coalesce(func.sum(manifests.c.size), 0))
        async with self._store.reading() as conn:
            blob_count, blob_bytes = (await conn.execute(blob_query)).one()
            manifest_count, manifest_bytes = (await conn.execute(manifest_query)).one()
        return StoredTotals(int(blob_count), int(blob_bytes), int(manifest_count), int(manifest_bytes))

    async def per_repository(self) -> list[RepositoryUsage]:
        """Every repository's linked blobs, manifests and tags, by name."""
        linked = (
            select(
                repository_blobs.c.repository_id.label("rid"),
                func.count().label("count"),
                func.coalesce(func.sum(blobs.c.size), 0).label("bytes"),
            )
            .select_from(repository_blobs.join(blobs, blobs.c.digest == repository_blobs.c.digest))
            .group_by(repository_blobs.c.repository_id)
            .subquery()
        )
        stored = (
            select(
                manifests.c.repository_id.label("rid"),
                func.count().label("count"),
                func.coalesce(func.sum(manifests.c.size), 0).label("bytes"),
            )
            .group_by(manifests.c.repository_id)
            .subquery()
        )
        tagged = select(tags.c.repository_id.label("rid"), func.count().label("count")).group_by(tags.c.repository_id)
        tagged_sub = tagged.subquery()
        query = (
            select(
                repositories.c.name,
                func.coalesce(linked.c.count, 0),
                func.coalesce(linked.c.bytes, 0),
                func.coalesce(stored.c.count, 0),
                func.coalesce(stored.c.bytes, 0),
                func.coalesce(tagged_sub.c.count, 0),
            )
            .select_from(
                repositories.outerjoin(linked, linked.c.rid == repositories.c.id)
                .outerjoin(stored, stored.c.rid == repositories.c.id)
                .outerjoin(tagged_sub, tagged_sub.c.rid == repositories.c.id)
            )
            .order_by(self._store.ordered(repositories.c.name))
        )
        async with self._store.reading() as conn:
            rows = (await conn.execute(query)).all()
        return [
            RepositoryUsage(str(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4]), int(row[5]))
            for row in rows
        ]
