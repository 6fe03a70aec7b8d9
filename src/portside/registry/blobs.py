"""Reading and deleting blobs, always through a repository's links."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from portside.metadata.gc_protocol import BlobVanished
from portside.metadata.records import BlobRecord
from portside.metadata.store import MetadataStore
from portside.oci.digest import Digest
from portside.oci.errors import ErrorKind, RegistryError
from portside.oci.ranges import ByteRange
from portside.storage.base import BlobStorage
from portside.storage.paths import blob_key, upload_key

# No blob over this size is kept in the database (the ``inline_blob_max_bytes`` setting's bound):
# larger blobs are not looked for there.
INLINE_LIMIT = 1 << 20


@dataclass(frozen=True)
class BlobContent:
    """A readable blob: its size, and its bytes (kept in the database), a local file, or neither (a stream)."""

    digest: Digest
    size: int
    path: Path | None
    data: bytes | None = None

    def data_in(self, byte_range: ByteRange | None) -> bytes:
        """The bytes kept in the database, whole or one range (only for a blob that has ``data``)."""
        assert self.data is not None
        return self.data if byte_range is None else self.data[byte_range.start : byte_range.end + 1]


async def bytes_held(store: MetadataStore, storage: BlobStorage, digest: Digest) -> bool:
    """Whether a blob's bytes are in blob storage or kept in the database (for mounts and links)."""
    return await storage.stat(blob_key(digest)) is not None or await store.holds_blob_content(str(digest))


class DownloadCount:
    """How many whole-blob downloads one worker is sending right now."""

    def __init__(self) -> None:
        self.active = 0


class BlobService:
    """Blob reads, stats and deletes for one registry."""

    def __init__(self, store: MetadataStore, storage: BlobStorage) -> None:
        self._store = store
        self._storage = storage
        # Whole-blob downloads this worker is sending (the API picks how to send by it).
        self.downloads = DownloadCount()

    async def stat(self, repository: str, digest: Digest) -> BlobRecord:
        """The blob's record if ``repository`` links it and its bytes exist, else ``BLOB_UNKNOWN``."""
        record = await self._store.linked_blob(repository, str(digest))
        if record is None:
            raise RegistryError(ErrorKind.BLOB_UNKNOWN, detail={"digest": str(digest)})
        return record

    async def open(self, repository: str, digest: Digest) -> BlobContent:
        """Locate a blob for reading."""
        record = await self.stat(repository, digest)
        # Only blobs up to INLINE_LIMIT can be kept in the database: larger ones are not looked for.
        data = await self._store.blob_content(str(digest)) if record.size <= INLINE_LIMIT else None
        if data is not None:
            return BlobContent(digest, record.size, None, data)
        return BlobContent(digest, record.size, self._storage.local_path(blob_key(digest)))

    async def redirect_url(self, digest: Digest) -> str | None:
        """Where clients may fetch the blob directly (a presigned URL), if the storage offers one."""
        return await self._storage.redirect_url(blob_key(digest))

    async def stream(self, content: BlobContent, byte_range: ByteRange | None) -> AsyncIterator[bytes]:
        """An opened blob's bytes, whole or one range, from the database or blob storage."""
        if content.data is not None:
            yield content.data_in(byte_range)
            return
        key = blob_key(content.digest)
        chunks = (
            self._storage.read(key)
            if byte_range is None
            else self._storage.read(key, byte_range.start, byte_range.length)
        )
        async for chunk in chunks:
            yield chunk

    async def delete(self, repository: str, digest: Digest) -> None:
        """Unlink the blob from ``repository``; the bytes go when garbage collection finds them unused."""
        if not await self._store.unlink_blob(repository, str(digest)):
            raise RegistryError(ErrorKind.BLOB_UNKNOWN, detail={"digest": str(digest)})

    async def put_small(self, repository: str, digest: Digest, data: bytes) -> None:
        """Store a tiny, known blob (the empty JSON config) without an upload session."""
        if await self._store.linked_blob(repository, str(digest)) is not None:
            return
        key = blob_key(digest)
        # Claim, then make sure of the bytes, then link (the GC protocol, docs/lifecycle.md).
        await self._store.claim_blob(str(digest), len(data))
        if await self._storage.stat(key) is None:
            staging = upload_key(f"small-{uuid.uuid4().hex}")
            await self._storage.create(staging)

            async def body() -> AsyncIterator[bytes]:
                yield data

            await self._storage.append(staging, body(), 0)
            await self._storage.commit(staging, key)
        try:
            await self._store.link_blob(repository, str(digest), len(data))
        except BlobVanished:
            # Collected between the claim and the link (a grace period overrun): claim and store again.
            await self.put_small(repository, digest, data)
