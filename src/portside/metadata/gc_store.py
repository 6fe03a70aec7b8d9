"""SQL of online garbage collection: per-repository snapshots, conditional sweeps and run records.

Every sweep re-checks, under a row lock and in a statement that starts after the lock was
taken, that what it deletes is still unreferenced (see :mod:`portside.metadata.gc_protocol`
for the writers' side and docs/lifecycle.md for the argument).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, select, update

from portside.metadata.store import MetadataStore, as_utc, utcnow
from portside.metadata.tables import (
    blobs,
    gc_runs,
    manifest_pulls,
    manifest_references,
    manifests,
    repositories,
    repository_blobs,
    tag_history,
    tags,
)

# When a manifest was last pushed (rows from before migration 0005 have only created_at).
_pushed = func.coalesce(manifests.c.touched_at, manifests.c.created_at)

# Rows per sweep transaction: small, because on SQLite a sweep holds the one write lock.
SWEEP_BATCH = 64


@dataclass(frozen=True)
class ManifestFacts:
    """What marking needs to know about one manifest (``created_at``: when it was last pushed)."""

    digest: str
    created_at: datetime
    subject: str | None


@dataclass
class RepositorySnapshot:
    """One repository's manifests, references, tags, links and tag history, read for marking."""

    id: int
    name: str
    manifests: dict[str, ManifestFacts] = field(default_factory=dict)
    children: dict[str, set[str]] = field(default_factory=dict)
    blob_refs: dict[str, set[str]] = field(default_factory=dict)
    tagged: set[str] = field(default_factory=set)
    history: set[str] = field(default_factory=set)
    links: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class BlobCandidate:
    """A blob row old enough to go, and the repositories that still link it."""

    digest: str
    size: int
    linked_by: frozenset[int]


@dataclass(frozen=True)
class GcRunRecord:
    """One garbage collection run: its progress while running, what it freed when finished."""

    id: int
    node: str
    trigger: str
    actor: str | None
    dry_run: bool
    status: str
    phase: str
    repositories_total: int
    repositories_done: int
    manifests_removed: int
    links_removed: int
    blobs_removed: int
    bytes_freed: int
    detail: dict[str, Any]
    error: str | None
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None


# Called with each blob deleted, inside the transaction that deletes its row (deletes its bytes).
BytesDeleter = Callable[[str], Awaitable[None]]


class GcStore:
    """Garbage collection's reads, conditional deletes and run records."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    # Marking

    async def repositories(self) -> list[tuple[int, str]]:
        """(id, name) of every repository."""
        async with self._store.reading() as conn:
            rows = (
                await conn.execute(select(repositories.c.id, repositories.c.name).order_by(repositories.c.id))
            ).all()
        return [(int(row.id), str(row.name)) for row in rows]

    async def snapshot(self, repository_id: int, name: str, history_since: datetime) -> RepositorySnapshot:
        """Read one repository for marking.

        The order matters: manifests, then references, then tags, then history, then links.
        A tag moved away from a manifest after the tags were read left it tagged in this
        snapshot; one moved before has its history row committed before history is read.
        """
        snap = RepositorySnapshot(repository_id, name)
        async with self._store.reading() as conn:
            rows = (
                await conn.execute(
                    select(manifests.c.digest, _pushed.label("pushed_at"), manifests.c.subject_digest).where(
                        manifests.c.repository_id == repository_id
                    )
                )
            ).all()
            for row in rows:
                snap.manifests[row.digest] = ManifestFacts(row.digest, as_utc(row.pushed_at), row.subject_digest)
            rows = (
                await conn.execute(
                    select(
                        manifest_references.c.manifest_digest,
                        manifest_references.c.target_digest,
                        manifest_references.c.kind,
                    ).where(manifest_references.c.repository_id == repository_id)
                )
            ).all()
            for row in rows:
                target = snap.children if row.kind == "manifest" else snap.blob_refs
                target.setdefault(row.manifest_digest, set()).add(row.target_digest)
            result = await conn.execute(select(tags.c.digest).where(tags.c.repository_id == repository_id))
            snap.tagged = {str(d) for d in result.scalars()}
            rows = (
                await conn.execute(
                    select(tag_history.c.old_digest, tag_history.c.new_digest).where(
                        tag_history.c.repository_id == repository_id, tag_history.c.recorded_at >= history_since
                    )
                )
            ).all()
            snap.history = {str(d) for row in rows for d in (row.old_digest, row.new_digest) if d is not None}
            rows = (
                await conn.execute(
                    select(repository_blobs.c.digest, repository_blobs.c.created_at).where(
                        repository_blobs.c.repository_id == repository_id
                    )
                )
            ).all()
            snap.links = {str(row.digest): as_utc(row.created_at) for row in rows}
        return snap

    async def blob_candidates(self, cutoff: datetime) -> list[BlobCandidate]:
        """Blob rows neither created nor claimed since ``cutoff``, with the repositories linking them."""
        claimed = func.coalesce(blobs.c.touched_at, blobs.c.created_at)
        query = (
            select(blobs.c.digest, blobs.c.size, repository_blobs.c.repository_id)
            .select_from(blobs.outerjoin(repository_blobs, repository_blobs.c.digest == blobs.c.digest))
            .where(claimed < cutoff)
        )
        found: dict[str, tuple[int, set[int]]] = {}
        async with self._store.reading() as conn:
            for row in (await conn.execute(query)).all():
                entry = found.setdefault(str(row.digest), (int(row.size), set()))
                if row.repository_id is not None:
                    entry[1].add(int(row.repository_id))
        return [BlobCandidate(digest, size, frozenset(linked)) for digest, (size, linked) in sorted(found.items())]

    # Sweeping

    async def delete_manifest_if_unreferenced(self, repository_id: int, digest: str, cutoff: datetime) -> bool:
        """Delete one manifest if, under its row lock, it was last pushed before ``cutoff``, is untagged and no child.

        One manifest per transaction, so the collector never holds one manifest lock while
        waiting for another (a manifest put share-locks its children, then its own row).
        """
        key = and_(manifests.c.repository_id == repository_id, manifests.c.digest == digest)
        async with self._store.writing() as conn:
            await conn.execute(select(manifests.c.digest).where(key).with_for_update())
            tagged = exists().where(tags.c.repository_id == repository_id, tags.c.digest == digest)
            referenced = exists().where(
                manifest_references.c.repository_id == repository_id, manifest_references.c.target_digest == digest
            )
            result = await conn.execute(delete(manifests).where(key, _pushed < cutoff, ~tagged, ~referenced))
            if not result.rowcount:
                return False
            await conn.execute(
                delete(manifest_references).where(
                    manifest_references.c.repository_id == repository_id,
                    manifest_references.c.manifest_digest == digest,
                )
            )
            await conn.execute(
                delete(manifest_pulls).where(
                    manifest_pulls.c.repository_id == repository_id, manifest_pulls.c.digest == digest
                )
            )
            return True

    async def delete_links_if_unreferenced(
        self, repository_id: int, digests: Iterable[str], cutoff: datetime
    ) -> list[str]:
        """Delete the repository's links to ``digests`` that, under lock, are old and no manifest references."""
        removed: list[str] = []
        ordered = sorted(set(digests))
        for start in range(0, len(ordered), SWEEP_BATCH):
            batch = ordered[start : start + SWEEP_BATCH]
            scope = and_(repository_blobs.c.repository_id == repository_id, repository_blobs.c.digest.in_(batch))
            referenced = exists().where(
                manifest_references.c.repository_id == repository_id,
                manifest_references.c.target_digest == repository_blobs.c.digest,
            )
            async with self._store.writing() as conn:
                # Lock first; the statements below start after any manifest put holding these committed.
                await conn.execute(
                    select(repository_blobs.c.digest).where(scope).order_by(repository_blobs.c.digest).with_for_update()
                )
                doomed = list(
                    (
                        await conn.execute(
                            select(repository_blobs.c.digest).where(
                                scope, repository_blobs.c.created_at < cutoff, ~referenced
                            )
                        )
                    ).scalars()
                )
                if doomed:
                    await conn.execute(
                        delete(repository_blobs).where(
                            repository_blobs.c.repository_id == repository_id, repository_blobs.c.digest.in_(doomed)
                        )
                    )
            removed.extend(str(d) for d in doomed)
        return removed

    async def delete_blobs_if_unlinked(
        self, digests: Iterable[str], cutoff: datetime, delete_bytes: BytesDeleter
    ) -> list[tuple[str, int]]:
        """Delete blob rows that, under lock, have no link and were not claimed since ``cutoff``.

        Each deleted row's bytes are deleted (``delete_bytes``) *before* the transaction commits:
        a commit or mount claiming the blob meanwhile waits on the row lock (PostgreSQL) or the
        write lock (SQLite), then finds the row gone and puts the bytes back or does not mount.
        """
        removed: list[tuple[str, int]] = []
        ordered = sorted(set(digests))
        claimed = func.coalesce(blobs.c.touched_at, blobs.c.created_at)
        linked = exists().where(repository_blobs.c.digest == blobs.c.digest)
        for start in range(0, len(ordered), SWEEP_BATCH):
            batch = ordered[start : start + SWEEP_BATCH]
            async with self._store.writing() as conn:
                await conn.execute(
                    select(blobs.c.digest).where(blobs.c.digest.in_(batch)).order_by(blobs.c.digest).with_for_update()
                )
                doomed = (
                    await conn.execute(
                        select(blobs.c.digest, blobs.c.size).where(blobs.c.digest.in_(batch), claimed < cutoff, ~linked)
                    )
                ).all()
                if not doomed:
                    continue
                await conn.execute(delete(blobs).where(blobs.c.digest.in_([row.digest for row in doomed])))
                for row in doomed:
                    await delete_bytes(str(row.digest))
            removed.extend((str(row.digest), int(row.size)) for row in doomed)
        return removed

    # Run records

    async def start_run(self, node: str, trigger: str, actor: str | None, dry_run: bool) -> int:
        """Record a new running run (the caller holds the GC lock); earlier 'running' rows were interrupted."""
        now = utcnow()
        async with self._store.writing() as conn:
            await conn.execute(
                update(gc_runs)
                .where(gc_runs.c.status == "running")
                .values(status="interrupted", finished_at=now, updated_at=now)
            )
            result = await conn.execute(
                insert(gc_runs).values(
                    node=node,
                    trigger=trigger,
                    actor=actor,
                    dry_run=dry_run,
                    status="running",
                    phase="starting",
                    repositories_total=0,
                    repositories_done=0,
                    manifests_removed=0,
                    links_removed=0,
                    blobs_removed=0,
                    bytes_freed=0,
                    started_at=now,
                    updated_at=now,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    async def update_run(self, run_id: int, **values: Any) -> None:
        """Record progress or the outcome of a run."""
        if "detail" in values:
            values["detail"] = json.dumps(values["detail"])
        async with self._store.writing() as conn:
            await conn.execute(update(gc_runs).where(gc_runs.c.id == run_id).values(updated_at=utcnow(), **values))

    async def get_run(self, run_id: int) -> GcRunRecord | None:
        """One run by id."""
        async with self._store.reading() as conn:
            row = (await conn.execute(select(gc_runs).where(gc_runs.c.id == run_id))).first()
        return None if row is None else _run_record(row)

    async def list_runs(self, limit: int) -> list[GcRunRecord]:
        """The latest runs, newest first."""
        async with self._store.reading() as conn:
            rows = (await conn.execute(select(gc_runs).order_by(gc_runs.c.id.desc()).limit(limit))).all()
        return [_run_record(row) for row in rows]


def _run_record(row: Any) -> GcRunRecord:
    return GcRunRecord(
        id=int(row.id),
        node=row.node,
        trigger=row.trigger,
        actor=row.actor,
        dry_run=bool(row.dry_run),
        status=row.status,
        phase=row.phase,
        repositories_total=int(row.repositories_total),
        repositories_done=int(row.repositories_done),
        manifests_removed=int(row.manifests_removed),
        links_removed=int(row.links_removed),
        blobs_removed=int(row.blobs_removed),
        bytes_freed=int(row.bytes_freed),
        # Filled in when the run finishes; empty lists while it runs.
        detail=json.loads(row.detail) if row.detail else {"manifests": [], "links": [], "blobs": []},
        error=row.error,
        started_at=as_utc(row.started_at),
        updated_at=as_utc(row.updated_at),
        finished_at=None if row.finished_at is None else as_utc(row.finished_at),
    )
