"""The queries ``portside fsck`` needs: every blob, manifest, reference and tag, and the repairs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import and_, delete, exists, func, select

from portside.metadata.store import MetadataStore
from portside.metadata.tables import blobs, manifest_references, manifests, repositories, repository_blobs, tags


@dataclass(frozen=True)
class StoredManifestRow:
    """A manifest as stored: its repository, claimed digest and bytes."""

    repository: str
    digest: str
    media_type: str
    content: bytes


@dataclass(frozen=True)
class BrokenReference:
    """A manifest's reference to a blob or child manifest its repository does not hold."""

    repository: str
    manifest_digest: str
    target_digest: str
    kind: str


@dataclass(frozen=True)
class DanglingTag:
    """A tag pointing at a manifest that is not in its repository."""

    repository: str
    tag: str
    digest: str


class FsckStore:
    """Reads everything in pages (constant memory) and makes the repairs fsck decides on."""

    def __init__(self, store: MetadataStore, page: int = 500) -> None:
        self._store = store
        self._page = page

    async def count_blobs(self) -> tuple[int, int]:
        """How many blob rows, and their total size."""
        async with self._store.reading() as conn:
            row = (await conn.execute(select(func.count(), func.coalesce(func.sum(blobs.c.size), 0)))).one()
        return int(row[0]), int(row[1])

    async def blobs(self) -> AsyncIterator[tuple[str, int]]:
        """Every blob row (digest, size), in digest order."""
        after = ""
        while True:
            digest = self._store.ordered(blobs.c.digest)
            query = select(blobs.c.digest, blobs.c.size).where(digest > after).order_by(digest).limit(self._page)
            async with self._store.reading() as conn:
                rows = (await conn.execute(query)).all()
            for row in rows:
                yield str(row.digest), int(row.size)
            if len(rows) < self._page:
                return
            after = str(rows[-1].digest)

    async def manifests(self) -> AsyncIterator[StoredManifestRow]:
        """Every manifest with its bytes, a page at a time."""
        after = (0, "")
        while True:
            query = (
                select(manifests.c.repository_id, repositories.c.name, manifests.c.digest, manifests.c.media_type)
                .add_columns(manifests.c.content)
                .select_from(manifests.join(repositories, repositories.c.id == manifests.c.repository_id))
                .where(
                    (manifests.c.repository_id > after[0])
                    | and_(manifests.c.repository_id == after[0], self._store.ordered(manifests.c.digest) > after[1])
                )
                .order_by(manifests.c.repository_id, self._store.ordered(manifests.c.digest))
                .limit(self._page)
            )
            async with self._store.reading() as conn:
                rows = (await conn.execute(query)).all()
            for row in rows:
                # A row edited by hand may hold text where bytes belong; compare what is there.
                content = row.content.encode() if isinstance(row.content, str) else bytes(row.content)
                yield StoredManifestRow(row.name, row.digest, row.media_type, content)
            if len(rows) < self._page:
                return
            after = (int(rows[-1].repository_id), str(rows[-1].digest))

    async def broken_references(self) -> list[BrokenReference]:
        """References whose blob link or child manifest is missing from the manifest's repository."""
        mr = manifest_references
        blob_missing = ~exists().where(
            and_(
                repository_blobs.c.repository_id == mr.c.repository_id, repository_blobs.c.digest == mr.c.target_digest
            )
        )
        manifest_missing = ~exists().where(
            and_(manifests.c.repository_id == mr.c.repository_id, manifests.c.digest == mr.c.target_digest)
        )
        query = (
            select(repositories.c.name, mr.c.manifest_digest, mr.c.target_digest, mr.c.kind)
            .select_from(mr.join(repositories, repositories.c.id == mr.c.repository_id))
            .where(((mr.c.kind == "blob") & blob_missing) | ((mr.c.kind == "manifest") & manifest_missing))
            .order_by(repositories.c.name, mr.c.manifest_digest, mr.c.target_digest)
        )
        async with self._store.reading() as conn:
            rows = (await conn.execute(query)).all()
        return [BrokenReference(r.name, r.manifest_digest, r.target_digest, r.kind) for r in rows]

    async def dangling_tags(self) -> list[DanglingTag]:
        """Tags whose manifest is not in their repository."""
        missing = ~exists().where(
            and_(manifests.c.repository_id == tags.c.repository_id, manifests.c.digest == tags.c.digest)
        )
        query = (
            select(repositories.c.name, tags.c.name.label("tag"), tags.c.digest)
            .select_from(tags.join(repositories, repositories.c.id == tags.c.repository_id))
            .where(missing)
            .order_by(repositories.c.name, tags.c.name)
        )
        async with self._store.reading() as conn:
            rows = (await conn.execute(query)).all()
        return [DanglingTag(r.name, r.tag, r.digest) for r in rows]

    async def forget_blob(self, digest: str) -> int:
        """Remove a blob row and every repository's link to it; how many links went."""
        async with self._store.writing() as conn:
            links = await conn.execute(delete(repository_blobs).where(repository_blobs.c.digest == digest))
            await conn.execute(delete(blobs).where(blobs.c.digest == digest))
            return int(links.rowcount or 0)
