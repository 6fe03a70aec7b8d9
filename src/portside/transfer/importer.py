"""Store a verified :class:`~portside.transfer.sources.ImportPlan` through the registry's services.

Blobs go through the same upload path as a push (hashed again while written, moved into place
only when the digest checks out); manifests through the same validation as a manifest ``PUT``.
So an import is exactly what a client's push would have made, and it works while servers run
on the same data (SQLite WAL) or cluster.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from portside.notifications.events import EventAction, RegistryEvent
from portside.oci.digest import parse_digest
from portside.registry.services import Registry
from portside.transfer.sources import CHUNK, ImportPlan, PlannedBlob, Progress


@dataclass(frozen=True)
class ImportResult:
    """What an import stored."""

    repository: str
    tag: str
    digest: str
    media_type: str
    blobs_stored: int
    blobs_present: int
    manifests: int


async def _chunks(blob: PlannedBlob, progress: Progress | None) -> AsyncIterator[bytes]:
    with blob.open() as stream:
        while chunk := await asyncio.to_thread(stream.read, CHUNK):
            if progress is not None:
                progress(len(chunk))
            yield chunk


async def store_plan(
    registry: Registry, repository: str, tag: str, plan: ImportPlan, progress: Progress | None = None
) -> ImportResult:
    """Upload the plan's blobs the repository lacks, then its manifests, tagging the top one ``tag``."""
    await registry.maintenance.refuse_writes("PUT")
    stored = present = 0
    for blob in plan.blobs:
        if await registry.store.linked_blob(repository, blob.digest) is not None:
            present += 1
            if progress is not None:
                progress(blob.size)
            continue
        await registry.uploads.monolithic(repository, parse_digest(blob.digest), _chunks(blob, progress))
        stored += 1
    for manifest in plan.manifests:
        reference = tag if manifest.top else manifest.digest
        await registry.manifests.put(repository, reference, manifest.content, manifest.media_type)
    top = plan.top
    await registry.notifier.emit(
        RegistryEvent(
            action=EventAction.PUSH,
            repository=repository,
            digest=top.digest,
            media_type=top.media_type,
            size=len(top.content),
            tag=tag,
            actor="portside-import",
        )
    )
    return ImportResult(repository, tag, top.digest, top.media_type, stored, present, len(plan.manifests))
