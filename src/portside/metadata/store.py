"""The metadata store: repositories, blob links, manifests, tags and upload sessions.

SQLite (the embedded default) and PostgreSQL share this one code path through
SQLAlchemy Core; how each is connected to is in :mod:`portside.metadata.engines`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from portside.metadata import blob_queries as q
from portside.metadata import manifest_queries as mq
from portside.metadata.engines import (
    InlineConnections,
    begin_inline_read,
    begin_inline_write,
    create_engine_for,
    create_sync_read_engine,
    create_sync_write_engine,
)
from portside.metadata.engines import Reader as Reader
from portside.metadata.engines import Writer as Writer
from portside.metadata.engines import as_utc as as_utc
from portside.metadata.engines import utcnow as utcnow
from portside.metadata.fast_sqlite import StatementPlans
from portside.metadata.gc_protocol import claim_placed_blob, lock_references, reclaim_blob_row
from portside.metadata.read_cache import ReadCache, read_cache_for
from portside.metadata.records import (
    BlobRecord,
    ManifestRecord,
    Reference,
    Visibility,
)
from portside.metadata.tables import (
    blobs,
    job_runs,
    repositories,
    uploads,
)
from portside.metadata.tag_changes import TagGuard, check_guard, current_digest, point_tag, record_tag_change
from portside.metadata.visibility import visibility_filter
from portside.metadata.wal_sync import wal_sync_for

# Work that joins a write transaction: given the connection and a repository's id.
InTransaction = Callable[[Writer, int], Awaitable[None]]


class MetadataStore:
    """Typed access to the registry's metadata; every method is one transaction."""

    def __init__(self, url: str, default_visibility: str = "private") -> None:
        self.url = url
        self.default_visibility = default_visibility
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        self._write_engine = create_engine_for(url, for_writes=True)
        # SQLite reads and writes run in the event loop's own thread (portside.metadata.engines explains why).
        self._inline_reads = InlineConnections(create_sync_read_engine(url)) if self.dialect == "sqlite" else None
        self._inline_writes = InlineConnections(create_sync_write_engine(url)) if self.dialect == "sqlite" else None
        self._wal_sync = wal_sync_for(url)
        self._read_cache = read_cache_for(url)
        self._plans = None if self._inline_reads is None else StatementPlans(self._inline_reads.engine.dialect)

    async def close(self) -> None:
        """Dispose of every pooled connection."""
        await self._write_engine.dispose()
        if self._inline_reads is not None:
            self._inline_reads.dispose()
        if self._inline_writes is not None:
            self._inline_writes.dispose()
        if self._read_cache is not None:
            self._read_cache.close()

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[Writer]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite)."""
        if self._inline_writes is not None:
            async with begin_inline_write(self._inline_writes, self._plans) as sync_conn:
                yield sync_conn
            # Committed, with the write lock free again: now on disk, before anyone is told.
            if self._wal_sync is not None:
                await self._wal_sync.sync()
            self._committed()
            return
        async with self._write_engine.begin() as conn:
            yield conn

    def _committed(self) -> None:
        if self._read_cache is not None:
            self._read_cache.note_commit()

    @asynccontextmanager
    async def writing_in_background(self) -> AsyncIterator[Writer]:
        """A write transaction whose statements run off the event loop (aiosqlite's thread on SQLite).

        For large batches written by background flushers (the audit log): each statement costs
        more this way, but a batch of hundreds of rows does not hold up the requests being served.
        """
        async with self._write_engine.begin() as conn:
            yield conn
        self._committed()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Reader]:
        """A connection for reads: ``await conn.execute(query)`` returns a buffered result."""
        if self._inline_reads is not None:
            with begin_inline_read(self._inline_reads, self._plans) as sync_conn:
                yield sync_conn
            return
        async with self._write_engine.connect() as conn:
            yield conn

    def insert(self, table: Any) -> Any:
        """The dialect's INSERT, which has ``on_conflict_do_nothing``/``_do_update``."""
        return (sqlite.insert if self.dialect == "sqlite" else postgresql.insert)(table)

    def ordered(self, column: Any) -> Any:
        """The column in byte-wise order."""
        # Lexical (byte-wise) order as the spec asks; PostgreSQL's default collation is not.
        return column.collate("C") if self.dialect == "postgresql" else column

    # Repositories

    async def repository_id(self, conn: Reader, name: str) -> int | None:
        """The id of a repository, or ``None``."""
        result = await conn.execute(q.REPOSITORY_ID, {"p_name": name})
        value = result.scalar_one_or_none()
        return None if value is None else int(value)

    async def _ensure_repository(self, conn: Writer, name: str) -> int:
        if self.dialect == "sqlite":
            # BEGIN IMMEDIATE holds the write lock: nobody can create or delete the repository
            # between a lookup and an insert, and it nearly always exists already (one statement).
            repository_id = await self.repository_id(conn, name)
            if repository_id is not None:
                return repository_id
        # On PostgreSQL the insert comes first: it waits for a concurrent delete of the row and
        # then creates it afresh, where a lookup first would hand back an id about to vanish.
        await conn.execute(q.CREATE_REPOSITORY[self.dialect], {"p_name": name, "p_now": utcnow()})
        repository_id = await self.repository_id(conn, name)
        assert repository_id is not None
        return repository_id

    async def repository_exists(self, name: str) -> bool:
        """True if the repository has ever received content and was not deleted."""
        async with self.reading() as conn:
            return await self.repository_id(conn, name) is not None

    async def list_repositories(
        self, limit: int | None, after: str | None, visible: Visibility | None = None
    ) -> list[str]:
        """Repository names in lexical order after ``after``, at most ``limit``, only those ``visible``."""
        name = self.ordered(repositories.c.name)
        query = select(repositories.c.name).order_by(name)
        if visible is not None and not visible.everything:
            query = query.where(visibility_filter(visible))
        if after is not None:
            query = query.where(name > after)
        if limit is not None:
            query = query.limit(limit)
        async with self.reading() as conn:
            return list((await conn.execute(query)).scalars())

    # Blobs

    async def link_blob(
        self,
        repository: str,
        digest: str,
        size: int,
        finished_upload: str | None = None,
        bytes_present: Callable[[], bool] | None = None,
        content: bytes | None = None,
    ) -> None:
        """Link a committed blob into ``repository``, ending its upload session; see ``claim_placed_blob``.

        With ``content``, the blob's bytes are stored in the database with its row and link, in
        one transaction (small blobs): nothing to claim first and nothing that can vanish.
        """
        now = utcnow()
        async with self.writing() as conn:
            if finished_upload is not None:
                await conn.execute(
                    q.CLOSE_UPLOAD[self.dialect], {"p_id": finished_upload, "p_repository": repository, "p_now": now}
                )
            repository_id = await self._ensure_repository(conn, repository)
            if content is not None:
                await conn.execute(q.CLAIM_BLOB[self.dialect], {"p_digest": digest, "p_size": size, "p_now": now})
                await conn.execute(q.STORE_CONTENT[self.dialect], {"p_digest": digest, "p_content": content})
            elif bytes_present is not None:
                await claim_placed_blob(conn, q.CLAIM_BLOB[self.dialect], digest, size, now, bytes_present)
            else:
                # The blob was claimed (claim_blob) before its bytes were put in place; if its row
                # is gone now, garbage collection took it and its bytes: refuse, never link to nothing.
                await reclaim_blob_row(conn, digest, now)
            # A fresh link (or a renewed one) is spared by garbage collection for the grace period.
            await conn.execute(
                q.LINK_BLOB[self.dialect], {"p_repository_id": repository_id, "p_digest": digest, "p_now": now}
            )

    async def claim_blob(self, digest: str, size: int) -> None:
        """Create or renew a blob's row (``touched_at = now``) before its bytes are put in place.

        Garbage collection deletes a row and its bytes in one transaction and spares rows touched
        within the grace period, so bytes written after this claim are not swept under the link.
        """
        now = utcnow()
        async with self.writing() as conn:
            await conn.execute(q.CLAIM_BLOB[self.dialect], {"p_digest": digest, "p_size": size, "p_now": now})

    async def claim_existing_blob(self, digest: str) -> BlobRecord | None:
        """Renew an existing blob's row (for a mount); ``None`` if there is none (not mountable)."""
        async with self.writing() as conn:
            result = await conn.execute(q.TOUCH_BLOB, {"p_digest": digest, "p_now": utcnow()})
            if not result.rowcount:
                return None
            size = (await conn.execute(q.BLOB_SIZE, {"p_digest": digest})).scalar_one()
        return BlobRecord(digest, int(size))

    async def blob_content(self, digest: str) -> bytes | None:
        """The bytes of a blob kept in the database (small blobs), or ``None`` if they are in blob storage."""
        async with self.reading() as conn:
            row = (await conn.execute(q.BLOB_CONTENT, {"p_digest": digest})).first()
        return None if row is None else bytes(row.content)

    async def holds_blob_content(self, digest: str) -> bool:
        """Whether a blob's bytes are kept in the database."""
        async with self.reading() as conn:
            return (await conn.execute(q.HOLDS_CONTENT, {"p_digest": digest})).first() is not None

    async def blob_known(self, digest: str) -> BlobRecord | None:
        """The blob if any repository committed it (for deduplication, never for reads)."""
        async with self.reading() as conn:
            row = (await conn.execute(q.BLOB_SIZE, {"p_digest": digest})).first()
        return None if row is None else BlobRecord(digest, int(row.size))

    async def linked_blob(self, repository: str, digest: str) -> BlobRecord | None:
        """The blob if ``repository`` links it, else ``None``."""
        cache = self._read_cache
        if cache is not None and (cached := cache.blob(repository, digest)) is not None:
            return cached
        async with self.reading() as conn:
            row = (await conn.execute(q.LINKED_BLOB_SIZE, {"p_repository": repository, "p_digest": digest})).first()
        if row is None:
            return None
        record = BlobRecord(digest, int(row.size))
        if cache is not None:
            cache.keep_blob(repository, digest, record)
        return record

    async def unlink_blob(self, repository: str, digest: str) -> bool:
        """Remove ``repository``'s link to a blob; False if there was none."""
        async with self.writing() as conn:
            repository_id = await self.repository_id(conn, repository)
            if repository_id is None:
                return False
            result = await conn.execute(q.UNLINK_BLOB, {"p_repository_id": repository_id, "p_digest": digest})
            return bool(result.rowcount)

    # Manifests and tags

    async def missing_references(self, repository: str, references: Iterable[Reference]) -> list[Reference]:
        """The references that ``repository`` does not hold (blobs unlinked, manifests absent)."""
        wanted = list(references)
        blob_digests = sorted({r.digest for r in wanted if r.kind == "blob"})
        manifest_digests = sorted({r.digest for r in wanted if r.kind == "manifest"})
        present: set[tuple[str, str]] = set()
        if blob_digests or manifest_digests:
            # One statement for both kinds (an unknown repository simply holds nothing).
            async with self.reading() as conn:
                result = await conn.execute(
                    mq.PRESENT_REFERENCES[(bool(blob_digests), bool(manifest_digests))],
                    {"repository": repository, "blob_digests": blob_digests, "manifest_digests": manifest_digests},
                )
                present = {(str(row.kind), str(row.digest)) for row in result}
        return [r for r in wanted if r.kind in ("blob", "manifest") and (r.kind, r.digest) not in present]

    async def put_manifest(
        self,
        repository: str,
        manifest: ManifestRecord,
        references: Iterable[Reference],
        tag: str | None,
        actor: str | None = None,
        guard: TagGuard | None = None,
        also: Sequence[InTransaction] = (),
        references_fetched_later: bool = False,
    ) -> None:
        """Store a manifest with its references and, optionally, point a tag at it; all or nothing.

        A tag that is created or moved gets a history row in the same transaction; moving a tag
        that ``guard`` protects raises ``TagLocked`` and stores nothing. ``also`` runs in the same
        transaction, given the repository's id (the search index uses it, so that a push costs one
        commit and its index entry is never out of step). ``references_fetched_later`` is for the
        pull-through cache, which stores a manifest before the blobs it fetches on first request.
        """
        now = utcnow()
        references = list(references)
        async with self.writing() as conn:
            repository_id = await self._ensure_repository(conn, repository)
            known = False
            old_digest: str | None = None
            if tag is not None and guard is not None:
                # Refuse early; point_tag below checks again, under the tag's lock.
                old_digest = await current_digest(conn, repository_id, tag, lock=True)
                known = True
                if old_digest is not None and old_digest != manifest.digest:
                    check_guard(guard, tag, f"moved to {manifest.digest}")
            if not references_fetched_later:
                # Under lock, the references validated before this transaction must still be there.
                await lock_references(conn, repository_id, references)
            # A push again renews the manifest (garbage collection's grace counts from it) and
            # row-locks it, so a concurrent collector waits and then sees this transaction's tag.
            await conn.execute(
                mq.UPSERT_MANIFEST[self.dialect],
                {
                    "repository_id": repository_id,
                    "digest": manifest.digest,
                    "media_type": manifest.media_type,
                    "size": manifest.size,
                    "content": manifest.content,
                    "artifact_type": manifest.artifact_type,
                    "subject_digest": manifest.subject_digest,
                    "annotations": json.dumps(manifest.annotations) if manifest.annotations else None,
                    "created_at": now,
                    "touched_at": now,
                },
            )
            rows = [
                {
                    "repository_id": repository_id,
                    "manifest_digest": manifest.digest,
                    "target_digest": r.digest,
                    "kind": r.kind,
                }
                for r in {(r.digest, r.kind): r for r in references}.values()
            ]
            if rows:
                await conn.execute(mq.INSERT_REFERENCES[self.dialect], rows)
            if tag is not None:
                # The tag was read (and locked) above when guarded: point_tag need not read it again.
                await point_tag(
                    conn,
                    self.dialect,
                    repository_id,
                    tag,
                    manifest.digest,
                    actor=actor,
                    guard=guard,
                    at=now,
                    known=known,
                    known_digest=old_digest,
                )
            for step in also:
                await step(conn, repository_id)

    async def get_manifest(self, repository: str, digest: str) -> ManifestRecord | None:
        """A manifest of ``repository`` by digest."""
        cache = self._read_cache
        if cache is not None and (cached := cache.manifest(repository, digest)) is not None:
            return cached
        async with self.reading() as conn:
            row = (await conn.execute(mq.MANIFEST_BY_DIGEST, {"repository": repository, "digest": digest})).first()
        return self._keep_manifest(repository, digest, row)

    async def get_manifest_by_tag(self, repository: str, tag: str) -> ManifestRecord | None:
        """The manifest a tag points at."""
        cache = self._read_cache
        if cache is not None and (cached := cache.manifest(repository, tag)) is not None:
            return cached
        async with self.reading() as conn:
            row = (await conn.execute(mq.MANIFEST_BY_TAG, {"repository": repository, "tag": tag})).first()
        return self._keep_manifest(repository, tag, row)

    def _keep_manifest(self, repository: str, reference: str, row: Any) -> ManifestRecord | None:
        if row is None:
            return None
        record = mq.manifest_record(row)
        if self._read_cache is not None:
            self._read_cache.keep_manifest(repository, reference, record)
        return record

    async def delete_manifest(
        self, repository: str, digest: str, actor: str | None = None, guard: TagGuard | None = None
    ) -> bool:
        """Delete a manifest, its references and every tag pointing at it (each recorded); False if absent.

        Raises ``TagLocked`` (deleting nothing) if ``guard`` protects one of those tags.
        """
        now = utcnow()
        async with self.writing() as conn:
            repository_id = await self.repository_id(conn, repository)
            if repository_id is None:
                return False
            key = {"rid": repository_id, "digest": digest}
            pointing = (await conn.execute(mq.TAGS_POINTING_LOCKED, key)).scalars()
            tag_names = [str(name) for name in pointing]
            for name in tag_names:
                check_guard(guard, name, f"deleted with its manifest {digest}")
            result = await conn.execute(mq.DELETE_MANIFEST, key)
            if not result.rowcount:
                return False
            await conn.execute(mq.DELETE_REFERENCES, key)
            await conn.execute(mq.DELETE_TAGS_POINTING, key)
            for name in tag_names:
                await record_tag_change(conn, repository_id, name, "deleted", digest, None, actor, now)
            return True

    async def delete_tag(
        self,
        repository: str,
        tag: str,
        actor: str | None = None,
        guard: TagGuard | None = None,
        expected_digest: str | None = None,
    ) -> bool:
        """Remove a tag (the manifest stays) and record it; False if there was no such tag.

        Raises ``TagLocked`` if ``guard`` protects the tag. With ``expected_digest`` (retention),
        a tag that was moved since it was chosen is left alone (False).
        """
        async with self.writing() as conn:
            repository_id = await self.repository_id(conn, repository)
            if repository_id is None:
                return False
            old_digest = await current_digest(conn, repository_id, tag, lock=True)
            if old_digest is None or (expected_digest is not None and old_digest != expected_digest):
                return False
            check_guard(guard, tag, "deleted")
            await conn.execute(mq.DELETE_TAG, {"rid": repository_id, "tag": tag})
            await record_tag_change(conn, repository_id, tag, "deleted", old_digest, None, actor, utcnow())
            return True

    async def list_tags(self, repository: str, limit: int | None, after: str | None) -> list[str] | None:
        """Tag names in lexical order after ``after``; ``None`` if the repository is unknown."""
        async with self.reading() as conn:
            repository_id = await self.repository_id(conn, repository)
            if repository_id is None:
                return None
            query = mq.LIST_TAGS[(self.dialect, after is not None, limit is not None)]
            result = await conn.execute(query, {"rid": repository_id, "after": after, "limit": limit})
            return list(result.scalars())

    async def record_job_run(self, job: str, node: str, started: datetime, finished: datetime, outcome: str) -> None:
        """Note one run of a background job."""
        async with self.writing() as conn:
            await conn.execute(
                job_runs.insert().values(job=job, node=node, started_at=started, finished_at=finished, outcome=outcome)
            )

    def leadership_engine(self) -> AsyncEngine:
        """The engine a PostgreSQL advisory lock is held on."""
        return self._write_engine

    async def count_uploads(self) -> int:
        """How many upload sessions are open and hold bytes (a signed session has a row from its first write)."""
        async with self.reading() as conn:
            open_sessions = select(func.count()).select_from(uploads).where(uploads.c.closed_at.is_(None))
            return int((await conn.execute(open_sessions)).scalar_one())

    async def ping(self) -> None:
        """One trivial query: raises if the database cannot be reached (readiness probes)."""
        async with self._write_engine.connect() as conn:
            await conn.execute(select(1))

    @property
    def read_cache(self) -> ReadCache | None:
        """The in-memory cache of hot reads (SQLite only), kept fresh by every commit."""
        return self._read_cache

    async def tag_names(self, repository: str) -> list[str] | None:
        """All of a repository's tag names in lexical order (cached); ``None`` if the repository is unknown."""
        cache = self._read_cache
        if cache is not None and (cached := cache.tag_names(repository)) is not None:
            return cached
        names = await self.list_tags(repository, None, None)
        if cache is not None and names is not None:
            cache.keep_tag_names(repository, names)
        return names

    async def blob_totals(self) -> tuple[int, int]:
        """How many blobs are stored and their total size in bytes (one aggregate query)."""
        async with self.reading() as conn:
            row = (await conn.execute(select(func.count(), func.coalesce(func.sum(blobs.c.size), 0)))).one()
        return int(row[0]), int(row[1])
