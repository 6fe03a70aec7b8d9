"""The writes' half of the online garbage collection protocol (see docs/lifecycle.md).

Garbage collection deletes a blob row and its bytes in one transaction, a blob link or a
manifest only after locking it and re-checking in a fresh statement that nothing refers to it.
The writers meet it here, inside their own transactions:

* a blob is *claimed* (its row upserted or updated with ``touched_at = now``) before its bytes
  are put in place, and claimed again when it is linked: a row that vanished in between means
  the collector took it, and the link is refused rather than pointing at deleted bytes (on
  SQLite with local files, claimed once, after the bytes are in place, and checked: see
  ``claim_placed_blob``);
* a manifest put locks (``FOR SHARE`` on PostgreSQL) the links and child manifests it
  references in the transaction that inserts it, and refuses if one is gone.

On SQLite every write transaction is ``BEGIN IMMEDIATE``, so the collector's transactions and
these never interleave; the locks compile to nothing there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select

from portside.metadata.blob_queries import TOUCH_BLOB
from portside.metadata.engines import Writer
from portside.metadata.fast_sqlite import prebuilt
from portside.metadata.records import Reference
from portside.metadata.tables import manifests, repository_blobs


class BlobVanished(Exception):
    """The blob's row went (garbage collection took it) between its claim and its link."""

    def __init__(self, digest: str) -> None:
        super().__init__(f"blob {digest} was garbage-collected while it was being linked; push it again")
        self.digest = digest


class ReferencesVanished(Exception):
    """References a manifest needs were removed (by garbage collection or a delete) before it was stored."""

    def __init__(self, missing: list[Reference]) -> None:
        super().__init__(f"{len(missing)} referenced blob(s) or manifest(s) are not in the repository")
        self.missing = missing


async def reclaim_blob_row(conn: Writer, digest: str, now: datetime) -> None:
    """Claim an existing blob row again right before linking it; ``BlobVanished`` if it is gone."""
    result = await conn.execute(TOUCH_BLOB, {"p_digest": digest, "p_now": now})
    if not result.rowcount:
        raise BlobVanished(digest)


async def claim_placed_blob(
    conn: Writer, claim: Any, digest: str, size: int, now: datetime, bytes_present: Callable[[], bool]
) -> None:
    """Claim a blob whose bytes were put in place first (SQLite only); ``BlobVanished`` if they are gone.

    The claim-first order exists for PostgreSQL, where the collector's transaction can run between
    any two statements of ours. A SQLite write transaction excludes the collector's entirely, so
    one transaction can claim and check: if the bytes are there now, the row and link it commits
    protect them from the next collection; if they are gone, a collection swept them after the
    rename, and nothing is linked (the client pushes again). One transaction fewer per blob.
    """
    await conn.execute(claim, {"p_digest": digest, "p_size": size, "p_now": now})
    if not bytes_present():
        raise BlobVanished(digest)


async def lock_references(conn: Writer, repository_id: int, references: Iterable[Reference]) -> None:
    """Share-lock the links and child manifests a manifest references; ``ReferencesVanished`` if any is gone.

    Run inside the transaction that inserts the manifest, so that the collector (which locks a
    link or manifest ``FOR UPDATE`` before re-checking it is unreferenced) either runs entirely
    before, and this sees the row gone, or entirely after, and sees this manifest's references.
    """
    wanted = list(references)
    blob_digests = sorted({r.digest for r in wanted if r.kind == "blob"})
    manifest_digests = sorted({r.digest for r in wanted if r.kind == "manifest"})
    present: set[tuple[str, str]] = set()
    if blob_digests:
        found = await conn.execute(_LOCK_LINKS, {"rid": repository_id, "digests": blob_digests})
        present |= {("blob", str(d)) for d in found.scalars()}
    if manifest_digests:
        found = await conn.execute(_LOCK_MANIFESTS, {"rid": repository_id, "digests": manifest_digests})
        present |= {("manifest", str(d)) for d in found.scalars()}
    missing = [r for r in wanted if (r.kind, r.digest) not in present]
    if missing:
        raise ReferencesVanished(missing)


def _share_lock_present(table: Any) -> Any:
    """Which of some digests ``table`` holds for a repository, share-locking those rows (in digest order)."""
    return (
        select(table.c.digest)
        .where(table.c.repository_id == bindparam("rid"), table.c.digest.in_(bindparam("digests", expanding=True)))
        .order_by(table.c.digest)
        .with_for_update(read=True)
    )


# lock_references' statements, built once (a manifest push runs them; building costs more than running).
_LOCK_LINKS = prebuilt(_share_lock_present(repository_blobs))
_LOCK_MANIFESTS = prebuilt(_share_lock_present(manifests))
