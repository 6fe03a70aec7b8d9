"""The pull-through cache's own metadata: mirrored repositories and when cached tags were checked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from portside.metadata.store import MetadataStore, as_utc, utcnow
from portside.metadata.tables import manifest_references, proxy_repositories, proxy_tags, repositories


@dataclass(frozen=True)
class CachedTag:
    """A tag as last confirmed against the upstream."""

    digest: str
    checked_at: datetime


class ProxyStore:
    """Rows of ``proxy_repositories`` and ``proxy_tags``."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    async def mark_mirrored(self, repository: str, upstream: str) -> None:
        """Remember that ``repository`` is filled from ``upstream``."""
        async with self._store.writing() as conn:
            await conn.execute(
                self._store.insert(proxy_repositories)
                .values(name=repository, upstream=upstream, created_at=utcnow())
                .on_conflict_do_nothing()
            )

    async def is_mirrored(self, repository: str) -> bool:
        """True if ``repository`` was filled from an upstream."""
        async with self._store.reading() as conn:
            result = await conn.execute(
                select(proxy_repositories.c.name).where(proxy_repositories.c.name == repository)
            )
            return result.first() is not None

    async def cached_tag(self, repository: str, tag: str) -> CachedTag | None:
        """The tag's digest and when the upstream last confirmed it, if it was ever fetched."""
        query = select(proxy_tags.c.digest, proxy_tags.c.checked_at).where(
            proxy_tags.c.repository == repository, proxy_tags.c.tag == tag
        )
        async with self._store.reading() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else CachedTag(str(row.digest), as_utc(row.checked_at))

    async def confirm_tag(self, repository: str, tag: str, digest: str, checked_at: datetime) -> None:
        """Record that the upstream's ``tag`` pointed at ``digest`` at ``checked_at``."""
        statement = self._store.insert(proxy_tags).values(
            repository=repository, tag=tag, digest=digest, checked_at=checked_at
        )
        async with self._store.writing() as conn:
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[proxy_tags.c.repository, proxy_tags.c.tag],
                    set_={"digest": digest, "checked_at": checked_at},
                )
            )

    async def manifest_references_blob(self, repository: str, digest: str) -> bool:
        """True if a manifest stored in ``repository`` lists ``digest`` as a blob (config or layer)."""
        query = (
            select(manifest_references.c.target_digest)
            .select_from(
                manifest_references.join(repositories, repositories.c.id == manifest_references.c.repository_id)
            )
            .where(
                repositories.c.name == repository,
                manifest_references.c.target_digest == digest,
                manifest_references.c.kind == "blob",
            )
            .limit(1)
        )
        async with self._store.reading() as conn:
            return (await conn.execute(query)).first() is not None
