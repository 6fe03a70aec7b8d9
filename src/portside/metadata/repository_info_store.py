"""Repository metadata in the database: README, stars, pull counts, last push, size, explore listings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, select, update

from portside.metadata.records import Visibility
from portside.metadata.search_documents import SHOWN_DESCRIPTION, WITH_DOCUMENT, refresh_document
from portside.metadata.store import MetadataStore, as_utc, utcnow
from portside.metadata.tables import blobs, manifests, repositories, repository_blobs, repository_stars
from portside.metadata.visibility import visibility_filter

# Marks an argument as "leave unchanged" (``None`` clears a description or README).
UNCHANGED: Any = object()


@dataclass(frozen=True)
class RepositoryMetadataRecord:
    """A repository's descriptive metadata and counters."""

    id: int
    name: str
    public: bool
    description: str | None
    # The written description, else what the image says it is (see SHOWN_DESCRIPTION).
    shown_description: str | None
    readme: str | None
    stars: int
    pulls: int
    last_pushed_at: datetime | None
    created_at: datetime


def _record(row: Any) -> RepositoryMetadataRecord:
    return RepositoryMetadataRecord(
        id=int(row.id),
        name=row.name,
        public=row.visibility == "public",
        description=row.description,
        shown_description=row.shown_description,
        readme=row.readme,
        stars=int(row.star_count),
        pulls=int(row.pull_count),
        last_pushed_at=None if row.last_pushed_at is None else as_utc(row.last_pushed_at),
        created_at=as_utc(row.created_at),
    )


_COLUMNS = (
    repositories.c.id,
    repositories.c.name,
    repositories.c.visibility,
    repositories.c.description,
    SHOWN_DESCRIPTION.label("shown_description"),
    repositories.c.readme,
    repositories.c.star_count,
    repositories.c.pull_count,
    repositories.c.last_pushed_at,
    repositories.c.created_at,
)


class RepositoryInfoStore:
    """Typed access to repository metadata; every method is one transaction."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    async def get(self, name: str) -> RepositoryMetadataRecord | None:
        """A repository's metadata, or ``None``."""
        async with self._store.reading() as conn:
            query = select(*_COLUMNS).select_from(WITH_DOCUMENT).where(repositories.c.name == name)
            row = (await conn.execute(query)).first()
        return None if row is None else _record(row)

    async def size(self, repository_id: int) -> int:
        """Bytes of the distinct blobs the repository links plus its manifests."""
        blob_total = (
            select(func.coalesce(func.sum(blobs.c.size), 0))
            .select_from(repository_blobs.join(blobs, blobs.c.digest == repository_blobs.c.digest))
            .where(repository_blobs.c.repository_id == repository_id)
        )
        manifest_total = select(func.coalesce(func.sum(manifests.c.size), 0)).where(
            manifests.c.repository_id == repository_id
        )
        async with self._store.reading() as conn:
            total = int((await conn.execute(blob_total)).scalar_one())
            total += int((await conn.execute(manifest_total)).scalar_one())
        return total

    async def starred(self, repository_id: int, user_id: int) -> bool:
        """True if the user starred the repository."""
        query = select(repository_stars.c.user_id).where(
            repository_stars.c.repository_id == repository_id, repository_stars.c.user_id == user_id
        )
        async with self._store.reading() as conn:
            return (await conn.execute(query)).first() is not None

    async def update_text(self, name: str, description: Any = UNCHANGED, readme: Any = UNCHANGED) -> bool:
        """Change the description and/or README and rebuild the search document; False if no such repository."""
        values = {}
        if description is not UNCHANGED:
            values["description"] = description
        if readme is not UNCHANGED:
            values["readme"] = readme
        async with self._store.writing() as conn:
            repository_id = await self._store.repository_id(conn, name)
            if repository_id is None:
                return False
            if values:
                await conn.execute(update(repositories).where(repositories.c.id == repository_id).values(**values))
                await refresh_document(conn, self._store.dialect, repository_id)
            return True

    async def set_star(self, repository_id: int, user_id: int, starred: bool) -> None:
        """Star or unstar; the repository's star count follows (idempotent)."""
        async with self._store.writing() as conn:
            if starred:
                result = await conn.execute(
                    self._store.insert(repository_stars)
                    .values(repository_id=repository_id, user_id=user_id, created_at=utcnow())
                    .on_conflict_do_nothing()
                )
                change = 1
            else:
                result = await conn.execute(
                    delete(repository_stars).where(
                        and_(repository_stars.c.repository_id == repository_id, repository_stars.c.user_id == user_id)
                    )
                )
                change = -1
            if result.rowcount:
                await conn.execute(
                    update(repositories)
                    .where(repositories.c.id == repository_id)
                    .values(star_count=repositories.c.star_count + change)
                )

    async def add_pulls(self, counts: dict[str, int]) -> None:
        """Add buffered pull counts to their repositories (unknown names are ignored)."""
        if not counts:
            return
        async with self._store.writing() as conn:
            for name, count in sorted(counts.items()):
                await conn.execute(
                    update(repositories)
                    .where(repositories.c.name == name)
                    .values(pull_count=repositories.c.pull_count + count)
                )

    async def listing(self, visible: Visibility, order: str, limit: int) -> list[RepositoryMetadataRecord]:
        """Repositories in ``visible``: ``recent`` (last pushed first) or ``popular`` (stars, then pulls)."""
        if order == "recent":
            ordering = [repositories.c.last_pushed_at.desc().nulls_last(), repositories.c.created_at.desc()]
        else:
            ordering = [repositories.c.star_count.desc(), repositories.c.pull_count.desc()]
        query = select(*_COLUMNS).select_from(WITH_DOCUMENT).order_by(*ordering, repositories.c.name).limit(limit)
        if not visible.everything:
            query = query.where(visibility_filter(visible))
        async with self._store.reading() as conn:
            rows = (await conn.execute(query)).all()
        return [_record(row) for row in rows]

    async def starred_by(self, user_id: int, limit: int) -> list[RepositoryMetadataRecord]:
        """Repositories a user starred, most recent first (the caller filters what they may still see)."""
        query = (
            select(*_COLUMNS)
            .select_from(WITH_DOCUMENT.join(repository_stars, repository_stars.c.repository_id == repositories.c.id))
            .where(repository_stars.c.user_id == user_id)
            .order_by(repository_stars.c.created_at.desc())
            .limit(limit)
        )
        async with self._store.reading() as conn:
            rows = (await conn.execute(query)).all()
        return [_record(row) for row in rows]
