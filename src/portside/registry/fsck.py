"""``portside fsck``: check that what the metadata says is stored is there and intact, and repair.

Checks, in order:

1. every blob row has bytes in storage (or, for small blobs, in the database), of the recorded size,
   hashing to its digest (streamed);
2. every manifest's stored bytes hash to its digest;
3. every manifest's references (blobs linked into its repository, child manifests) exist;
4. every tag points at a manifest of its repository.

``--repair`` does exactly this, and nothing else:

* a blob whose bytes are missing, of the wrong size or corrupt: the bytes (if any) are deleted,
  and the blob row and every repository's link to it are removed, so the registry no longer
  claims to have it and the next push of that layer uploads it again;
* a manifest whose bytes do not match its digest: it is deleted with its references and the tags
  pointing at it (a pull by digest could never verify it);
* a tag pointing at a manifest that is gone: the tag is removed.

A manifest whose blobs or children are missing is reported but kept: pushing the image again
restores what it references (after a repair of a corrupt layer, that is the way back), while
deleting it would lose its tags too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from portside.metadata.fsck_store import FsckStore
from portside.metadata.store import MetadataStore
from portside.oci.digest import digest_of, parse_digest
from portside.registry.blobs import INLINE_LIMIT
from portside.storage.base import BlobStorage
from portside.storage.paths import blob_key

# Told of progress: bytes of blob content hashed so far (fsck's long part).
ProgressCallback = Callable[[int], None]


@dataclass
class Problem:
    """One thing fsck found wrong, and what ``--repair`` did about it."""

    kind: str
    subject: str
    detail: str
    repair: str = ""
    repaired: bool = False


@dataclass
class FsckReport:
    """What one run checked and found."""

    blobs: int = 0
    blob_bytes: int = 0
    manifests: int = 0
    references_checked: bool = False
    tags_checked: bool = False
    problems: list[Problem] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    @property
    def unrepaired(self) -> list[Problem]:
        """Problems that are still there."""
        return [p for p in self.problems if not p.repaired]

    def as_json(self) -> dict[str, Any]:
        """The report as plain data."""
        return {
            "clean": self.clean,
            "checked": {"blobs": self.blobs, "blob_bytes": self.blob_bytes, "manifests": self.manifests},
            "problems": [asdict(p) for p in self.problems],
        }


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


class Fsck:
    """Checks storage and metadata against each other."""

    def __init__(self, store: MetadataStore, storage: BlobStorage) -> None:
        self._queries = FsckStore(store)
        self._store = store
        self._storage = storage

    async def total_blob_bytes(self) -> tuple[int, int]:
        """How many blobs and bytes the check will read (for a progress bar)."""
        return await self._queries.count_blobs()

    async def run(self, repair: bool = False, progress: ProgressCallback | None = None) -> FsckReport:
        """Check everything; with ``repair``, fix what can be fixed (see the module's documentation)."""
        report = FsckReport()
        await self._check_blobs(report, repair, progress)
        await self._check_manifests(report, repair)
        for ref in await self._queries.broken_references():
            what = "blob is not linked into the repository" if ref.kind == "blob" else "child manifest is missing"
            report.problems.append(
                Problem(
                    "reference-missing",
                    f"{ref.repository}@{ref.manifest_digest}",
                    f"{ref.target_digest}: {what}",
                    repair="kept; push the image again to restore it",
                )
            )
        report.references_checked = True
        for tag in await self._queries.dangling_tags():
            problem = Problem(
                "tag-dangling", f"{tag.repository}:{tag.tag}", f"points at {tag.digest}, which is not stored"
            )
            if repair:
                await self._store.delete_tag(tag.repository, tag.tag)
                problem.repair, problem.repaired = "tag removed", True
            report.problems.append(problem)
        report.tags_checked = True
        return report

    async def _check_blobs(self, report: FsckReport, repair: bool, progress: ProgressCallback | None) -> None:
        async for digest_text, size in self._queries.blobs():
            report.blobs += 1
            problem = await self._check_blob(digest_text, size, report, progress)
            if problem is None:
                continue
            if repair:
                key = blob_key(parse_digest(digest_text))
                if await self._storage.stat(key) is not None:
                    await self._storage.delete(key)
                links = await self._queries.forget_blob(digest_text)
                problem.repair = (
                    f"bytes deleted, blob row and {links} repository link(s) removed; the next push uploads it"
                )
                problem.repaired = True
            report.problems.append(problem)

    async def _check_blob(
        self, digest_text: str, size: int, report: FsckReport, progress: ProgressCallback | None
    ) -> Problem | None:
        try:
            digest = parse_digest(digest_text)
        except Exception as exc:
            return Problem("blob-invalid-digest", digest_text, f"not a valid digest: {exc}")
        key = blob_key(digest)
        kept = await self._store.blob_content(digest_text) if size <= INLINE_LIMIT else None
        stored = len(kept) if kept is not None else await self._storage.stat(key)
        if stored is None:
            return Problem("blob-missing", digest_text, "the blob row has no bytes in storage")
        if stored != size:
            return Problem("blob-size", digest_text, f"{stored} bytes stored, {size} recorded")
        hasher = digest.hasher()
        chunks = _once(kept) if kept is not None else self._storage.read(key)
        async for chunk in chunks:
            hasher.update(chunk)
            report.blob_bytes += len(chunk)
            if progress is not None:
                progress(len(chunk))
        actual = f"{digest.algorithm}:{hasher.hexdigest()}"
        if actual != digest_text:
            return Problem("blob-corrupt", digest_text, f"the stored bytes hash to {actual}")
        return None

    async def _check_manifests(self, report: FsckReport, repair: bool) -> None:
        corrupt: list[tuple[str, str]] = []
        async for row in self._queries.manifests():
            report.manifests += 1
            try:
                claimed = parse_digest(row.digest)
                actual = str(digest_of(row.content, claimed.algorithm))
            except Exception as exc:
                actual = f"unverifiable ({exc})"
            if actual != row.digest:
                corrupt.append((row.repository, row.digest))
                report.problems.append(
                    Problem("manifest-corrupt", f"{row.repository}@{row.digest}", f"the stored bytes hash to {actual}")
                )
        if repair:
            # After the scan: deleting while paging would shift the pages.
            for problem, (repository, digest) in zip(
                [p for p in report.problems if p.kind == "manifest-corrupt"], corrupt, strict=True
            ):
                await self._store.delete_manifest(repository, digest)
                problem.repair, problem.repaired = "manifest, its references and its tags removed", True
