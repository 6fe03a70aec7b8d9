"""Online garbage collection: mark what is live, sweep what is not and older than a grace period.

It runs while pushes and pulls go on. Marking is per repository, from a snapshot; sweeping
re-checks each deletion under lock (see :mod:`portside.metadata.gc_store`), so what a push
makes live after the snapshot is never swept. The protocol and why it is safe: docs/lifecycle.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from portside.metadata.gc_store import GcRunRecord, GcStore, RepositorySnapshot
from portside.metadata.store import utcnow
from portside.oci.digest import parse_digest
from portside.storage.base import BlobStorage
from portside.storage.paths import blob_key
from portside.workers.leader import FileLeadership, Leadership, PostgresLeadership

log = logging.getLogger("portside.gc")

# How many removed items a run's record lists (the counts are always complete).
DETAIL_LIMIT = 1000

# Digests of a repository's manifests that retention keeps (beyond tags and history).
RetainedManifests = Callable[[int, str], Awaitable[set[str]]]


# The PostgreSQL advisory lock key that makes garbage collection one-at-a-time across a cluster.
GC_LOCK_KEY = 0x706F72747367630A  # "portsgc\n"


def gc_lock(dialect: str, engine: AsyncEngine, data_dir: Path) -> Leadership:
    """The cluster-wide GC lock: an advisory lock on PostgreSQL, a file lock next to a SQLite database."""
    if dialect == "postgresql":
        return PostgresLeadership(engine, key=GC_LOCK_KEY)
    return FileLeadership(data_dir / "locks" / "gc.lock")


class GcBusy(Exception):
    """Another garbage collection holds the cluster-wide lock."""

    def __init__(self) -> None:
        super().__init__("a garbage collection is already running")


def live_manifests(
    roots: Iterable[str], children: Mapping[str, Iterable[str]], referrers: Mapping[str, Iterable[str]]
) -> set[str]:
    """Every manifest reachable from ``roots``: children of live indexes, and referrers of live manifests.

    ``children`` maps a manifest to the manifests it references; ``referrers`` maps a subject
    to the manifests that name it as their subject (signatures, SBOMs, attestations).
    """
    live: set[str] = set()
    pending = list(roots)
    while pending:
        digest = pending.pop()
        if digest in live:
            continue
        live.add(digest)
        pending.extend(children.get(digest, ()))
        pending.extend(referrers.get(digest, ()))
    return live


@dataclass(frozen=True)
class RepositoryPlan:
    """What marking found collectable in one repository."""

    manifests: list[str]
    links: list[str]


def plan_repository(snapshot: RepositorySnapshot, retained: set[str], cutoff: datetime) -> RepositoryPlan:
    """Mark one repository and list the manifests and links a sweep may remove.

    Roots: tagged manifests, manifests in tag history within its window, manifests retention
    keeps, and manifests created after ``cutoff`` (the grace period). Links go when no
    surviving manifest references them and they were made before ``cutoff``.
    """
    young = {d for d, facts in snapshot.manifests.items() if facts.created_at >= cutoff}
    roots = (snapshot.tagged | snapshot.history | retained | young) & snapshot.manifests.keys()
    referrers: dict[str, set[str]] = {}
    for facts in snapshot.manifests.values():
        if facts.subject is not None:
            referrers.setdefault(facts.subject, set()).add(facts.digest)
    live = live_manifests(roots, snapshot.children, referrers)
    doomed = sorted(snapshot.manifests.keys() - live)
    needed = {blob for digest in live for blob in snapshot.blob_refs.get(digest, ())}
    links = sorted(d for d, created in snapshot.links.items() if created < cutoff and d not in needed)
    return RepositoryPlan(parents_first(doomed, snapshot.children), links)


def parents_first(doomed: list[str], children: Mapping[str, Iterable[str]]) -> list[str]:
    """Order deletions so an index goes before its children (a child is kept while referenced)."""
    doomed_set = set(doomed)
    referenced = {child for parent in doomed for child in children.get(parent, ()) if child in doomed_set}
    ordered: list[str] = []
    seen: set[str] = set()

    def visit(digest: str) -> None:
        if digest in seen:
            return
        seen.add(digest)
        ordered.append(digest)
        for child in sorted(children.get(digest, ())):
            if child in doomed_set:
                visit(child)

    for digest in doomed:
        if digest not in referenced:
            visit(digest)
    for digest in doomed:  # cycles cannot occur with content addressing, but never drop anything
        visit(digest)
    return ordered


@dataclass
class GcReport:
    """What a run removed (or, dry, would remove)."""

    dry_run: bool
    manifests: list[tuple[str, str]] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    blobs: list[tuple[str, int]] = field(default_factory=list)

    @property
    def bytes_freed(self) -> int:
        """Bytes of the blobs removed."""
        return sum(size for _, size in self.blobs)

    def detail(self) -> dict[str, object]:
        """The lists for the run's record, each cut at ``DETAIL_LIMIT``."""
        return {
            "manifests": [{"repository": r, "digest": d} for r, d in self.manifests[:DETAIL_LIMIT]],
            "links": [{"repository": r, "digest": d} for r, d in self.links[:DETAIL_LIMIT]],
            "blobs": [{"digest": d, "size": s} for d, s in self.blobs[:DETAIL_LIMIT]],
        }


@dataclass(frozen=True)
class GcSettings:
    """How a collection decides what is old enough to go."""

    grace: timedelta
    history_window: timedelta


class GcService:
    """Runs garbage collection: on a schedule, from the CLI, or started through the API."""

    def __init__(
        self,
        store: GcStore,
        storage: BlobStorage,
        lock: Leadership,
        settings: GcSettings,
        node: str,
        retained: RetainedManifests | None = None,
    ) -> None:
        self._store = store
        self._storage = storage
        self._lock = lock
        self._settings = settings
        self._node = node
        self.retained = retained
        self._background: asyncio.Task[None] | None = None
        # The lock is per process (a file lock or a PostgreSQL session); this keeps a second run
        # of the same process out while the first holds it.
        self._running = False
        self._observers: list[Callable[[str, int], None]] = []

    def observe_runs(self, observer: Callable[[str, int], None]) -> None:
        """Call ``observer(outcome, freed_bytes)`` after each run of this process (the metrics do).

        ``outcome`` is ``success``, ``failure`` or ``skipped`` (another run held the lock).
        """
        self._observers.append(observer)

    def _observed(self, outcome: str, freed_bytes: int = 0) -> None:
        for observer in self._observers:
            observer(outcome, freed_bytes)

    async def run(self, *, dry_run: bool, trigger: str, actor: str | None = None) -> GcRunRecord:
        """Take the cluster-wide GC lock, collect, and return the finished run; ``GcBusy`` if taken."""
        run_id = await self._begin(dry_run, trigger, actor)
        await self._collect_and_release(run_id, dry_run)
        record = await self._store.get_run(run_id)
        assert record is not None
        return record

    async def start(self, *, dry_run: bool, trigger: str, actor: str | None = None) -> GcRunRecord:
        """Take the lock and collect in the background of this process; the run as it starts."""
        run_id = await self._begin(dry_run, trigger, actor)
        self._background = asyncio.create_task(self._in_background(run_id, dry_run))
        record = await self._store.get_run(run_id)
        assert record is not None
        return record

    async def scheduled(self) -> str:
        """The scheduler's job: a real run, skipped while another is under way."""
        try:
            record = await self.run(dry_run=False, trigger="schedule")
        except GcBusy:
            self._observed("skipped")
            return "skipped: another garbage collection is running"
        return f"run {record.id} {record.status}: {record.blobs_removed} blobs, {record.bytes_freed} bytes freed"

    async def stop(self) -> None:
        """Cancel a background run of this process (at shutdown); it is recorded as interrupted."""
        task, self._background = self._background, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def runs(self, limit: int = 50) -> list[GcRunRecord]:
        """The latest runs, newest first."""
        return await self._store.list_runs(limit)

    async def get(self, run_id: int) -> GcRunRecord | None:
        """One run by id."""
        return await self._store.get_run(run_id)

    async def _in_background(self, run_id: int, dry_run: bool) -> None:
        # The outcome is in the run's record; a failure was logged there.
        with contextlib.suppress(Exception):
            await self._collect_and_release(run_id, dry_run)

    async def _begin(self, dry_run: bool, trigger: str, actor: str | None) -> int:
        if self._running or not await self._lock.try_acquire():
            raise GcBusy()
        self._running = True
        try:
            return await self._store.start_run(self._node, trigger, actor, dry_run)
        except BaseException:
            await self._release()
            raise

    async def _release(self) -> None:
        self._running = False
        await self._lock.release()

    async def _collect_and_release(self, run_id: int, dry_run: bool) -> GcReport:
        try:
            report = await self._collect(run_id, dry_run)
            # Recorded before the lock goes, so the next run never sees this one as still running.
            await self._store.update_run(
                run_id,
                status="done",
                phase="done",
                manifests_removed=len(report.manifests),
                links_removed=len(report.links),
                blobs_removed=len(report.blobs),
                bytes_freed=report.bytes_freed,
                detail=report.detail(),
                finished_at=utcnow(),
            )
            self._observed("success", 0 if dry_run else report.bytes_freed)
            return report
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._store.update_run(run_id, status="interrupted", finished_at=utcnow()))
            raise
        except Exception as exc:
            log.exception("garbage collection run %s failed", run_id)
            self._observed("failure")
            await self._store.update_run(run_id, status="failed", error=repr(exc), finished_at=utcnow())
            raise
        finally:
            await self._release()

    async def _collect(self, run_id: int, dry_run: bool) -> GcReport:
        started = utcnow()
        cutoff = started - self._settings.grace
        history_since = started - self._settings.history_window
        report = GcReport(dry_run)
        repos = await self._store.repositories()
        await self._store.update_run(run_id, phase="repositories", repositories_total=len(repos))
        names = dict(repos)
        planned_links: set[tuple[int, str]] = set()
        for done, (repository_id, name) in enumerate(repos, start=1):
            snapshot = await self._store.snapshot(repository_id, name, history_since)
            retained = await self.retained(repository_id, name) if self.retained is not None else set()
            plan = plan_repository(snapshot, retained, cutoff)
            if dry_run:
                report.manifests.extend((name, d) for d in plan.manifests)
                report.links.extend((name, d) for d in plan.links)
                planned_links.update((repository_id, d) for d in plan.links)
            else:
                for digest in plan.manifests:
                    if await self._store.delete_manifest_if_unreferenced(repository_id, digest, cutoff):
                        report.manifests.append((name, digest))
                # Links of manifests that survived their re-check stay: the delete re-checks references.
                removed = await self._store.delete_links_if_unreferenced(repository_id, plan.links, cutoff)
                report.links.extend((name, d) for d in removed)
            await self._store.update_run(
                run_id,
                repositories_done=done,
                manifests_removed=len(report.manifests),
                links_removed=len(report.links),
            )
        await self._store.update_run(run_id, phase="blobs")
        candidates = await self._store.blob_candidates(cutoff)
        if dry_run:
            for blob in candidates:
                if all((repository_id, blob.digest) in planned_links for repository_id in blob.linked_by):
                    report.blobs.append((blob.digest, blob.size))
        else:
            unlinked = [blob.digest for blob in candidates if not blob.linked_by]
            report.blobs = await self._store.delete_blobs_if_unlinked(unlinked, cutoff, self._delete_bytes)
        log.info(
            "garbage collection %s%s: %d manifests, %d links, %d blobs (%d bytes) in %d repositories",
            run_id,
            " (dry run)" if dry_run else "",
            len(report.manifests),
            len(report.links),
            len(report.blobs),
            report.bytes_freed,
            len(names),
        )
        return report

    async def _delete_bytes(self, digest: str) -> None:
        await self._storage.delete(blob_key(parse_digest(digest)))
