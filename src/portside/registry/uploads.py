"""Blob uploads: sessions, chunks, monolithic pushes, cross-repository mounts and commits."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from portside.metadata.gc_protocol import BlobVanished
from portside.metadata.records import UploadRecord
from portside.metadata.store import MetadataStore, utcnow
from portside.metadata.upload_store import UploadSessionStore
from portside.oci.digest import Digest, digest_of, new_hasher
from portside.oci.errors import ErrorKind, RegistryError
from portside.oci.ranges import ByteRange, upload_range_header
from portside.registry.blobs import bytes_held
from portside.registry.hashing import RunningHash, RunningHashes, hash_stored
from portside.registry.upload_ids import SESSION_ID, UploadIds, new_key
from portside.registry.upload_streams import chain, empty, just, read_whole
from portside.storage.base import BlobStorage, ObjectMissing, OffsetMismatch
from portside.storage.paths import (
    UPLOADS_PREFIX,
    blob_key,
    temporary_upload_created,
    temporary_upload_key,
    upload_key,
)

if TYPE_CHECKING:
    from portside.lifecycle.quotas import QuotaCheck, QuotaService


@dataclass(frozen=True)
class UploadStatus:
    """Where an upload session stands."""

    id: str
    repository: str
    size: int
    # Whether the upload's object exists in blob storage (its first write makes it).
    stored: bool = True
    # Whether the session has its row (a session with a signed id gets one at its first write).
    recorded: bool = True
    # The session's bytes while its row keeps them (a small first PATCH) and no file holds them all.
    held: bytes | None = None

    @property
    def range_header(self) -> str:
        """The ``Range`` header that reports this upload's progress."""
        return upload_range_header(self.size)


def _digest_mismatch(expected: Digest, actual: str) -> RegistryError:
    return RegistryError(
        ErrorKind.DIGEST_INVALID,
        "provided digest did not match uploaded content",
        {"expected": str(expected), "actual": actual},
    )


class UploadService:
    """Everything about getting blob bytes into the registry."""

    def __init__(
        self,
        store: MetadataStore,
        storage: BlobStorage,
        expiry: timedelta,
        quotas: QuotaService | None = None,
        *,
        inline_max_bytes: int = 0,
    ) -> None:
        self._store = store
        # Blobs up to this size that arrive whole in one request are kept in the database: no
        # file to create, and one log fsync instead of a file's and its directory's (0: never).
        self._inline_max_bytes = inline_max_bytes
        self._sessions = UploadSessionStore(store)
        self._storage = storage
        self._expiry = expiry
        self._hashes = RunningHashes()
        self._ids: UploadIds | None = None
        self._quotas = quotas
        # A session's activity time is rewritten at most this often: a chunked push would
        # otherwise pay a write transaction per chunk. Expiry may come up to this much early.
        self._touch_interval = min(expiry / 100, timedelta(seconds=60))

    def _quota(self, repository: str) -> QuotaCheck | None:
        """One request's quota checks (they read the namespace's limit once); None without quotas."""
        return None if self._quotas is None else self._quotas.for_request(repository)

    @staticmethod
    async def _check_quota(quota: QuotaCheck | None, size: int | None, digest: Digest | None = None) -> None:
        """Refuse bytes that would take the namespace over its quota, before they are stored."""
        if quota is not None and size is not None:
            await quota.check(size, None if digest is None else str(digest))

    async def _upload_ids(self) -> UploadIds:
        if self._ids is None:
            self._ids = UploadIds(await self._sessions.signing_key(new_key()))
        return self._ids

    async def start(self, repository: str) -> UploadStatus:
        """Open a new, empty upload session: a signed id, and nothing stored yet.

        The session's row and its object are made by its first write: a small blob pushed whole
        in the closing ``PUT`` never needs either (see portside.registry.upload_ids).
        """
        upload_id = (await self._upload_ids()).new(repository)
        self._hashes.put(upload_id, RunningHash(0, new_hasher()))
        return UploadStatus(upload_id, repository, 0, stored=False, recorded=False)

    async def status(self, repository: str, upload_id: str, quota: QuotaCheck | None = None) -> UploadStatus:
        """The session's current size; ``BLOB_UPLOAD_UNKNOWN`` if it is not this repository's.

        With ``quota``, the namespace's limit is read in the same lookup as the session, for it.
        """
        return (await self._status_and_session(repository, upload_id, quota))[0]

    async def _status_and_session(
        self, repository: str, upload_id: str, quota: QuotaCheck | None = None
    ) -> tuple[UploadStatus, UploadRecord | None]:
        record = await self._session(repository, upload_id, quota)
        if record is None:
            # Nothing was ever written: an object is only made after the row.
            return UploadStatus(upload_id, repository, 0, stored=False, recorded=False), None
        size = await self._storage.stat(upload_key(upload_id))
        held = record.first_chunk
        if held is not None and (size is None or size < len(held)):
            # The bytes are in the row; a shorter file is a move to a file that did not finish.
            return UploadStatus(upload_id, repository, len(held), stored=False, held=held), record
        # No object yet: nothing was written to this session.
        return UploadStatus(upload_id, repository, size or 0, stored=size is not None), record

    async def _session(self, repository: str, upload_id: str, quota: QuotaCheck | None = None) -> UploadRecord | None:
        """The session's row; ``None`` for an open session with a signed id and no row yet."""
        unknown = RegistryError(ErrorKind.BLOB_UPLOAD_UNKNOWN, detail={"upload": upload_id})
        if not SESSION_ID.match(upload_id):
            raise unknown
        if quota is None:
            record = await self._sessions.get(upload_id)
        else:
            record, own_limit = await self._sessions.get_with_quota(upload_id, quota.namespace)
            if record is not None:
                quota.knowing(own_limit)
        if record is not None:
            if record.closed_at is not None or record.repository != repository:
                raise unknown
            return record
        created = (await self._upload_ids()).created(upload_id, repository)
        if created is None or created < time.time() - self._expiry.total_seconds():
            raise unknown
        return None

    async def _record(self, current: UploadStatus, first_chunk: bytes | None = None) -> bool:
        """Make the row of a session with a signed id, before anything of it is stored; whether
        this call made it (only then does the row keep ``first_chunk``)."""
        created = (await self._upload_ids()).created(current.id, current.repository)
        assert created is not None  # checked by _session
        record, made = await self._sessions.open(
            current.id, current.repository, datetime.fromtimestamp(created, UTC), first_chunk
        )
        if record.closed_at is not None:  # finished or cancelled meanwhile, by another request
            raise RegistryError(ErrorKind.BLOB_UPLOAD_UNKNOWN, detail={"upload": current.id})
        return made

    async def append(
        self,
        repository: str,
        upload_id: str,
        chunks: AsyncIterable[bytes],
        content_range: ByteRange | None,
        content_length: int | None,
    ) -> UploadStatus:
        """Append one chunk. With ``Content-Range`` it must start where the upload ends (else 416)."""
        quota = self._quota(repository)
        current, session = await self._status_and_session(repository, upload_id, quota)
        self._check_range(current, content_range, content_length)
        await self._check_quota(quota, None if content_length is None else current.size + content_length)
        chunks, small = await self._small_first_write(current, chunks, content_length)
        if small is not None:
            size = await self._hold(current, small)
        else:
            size = await self._write(current, chunks, length=content_length)
        if session is not None and utcnow() - session.updated_at >= self._touch_interval:
            await self._sessions.touch(upload_id)
        status = UploadStatus(upload_id, repository, size)
        if content_range is not None and size - current.size != content_range.length:
            raise RegistryError(
                ErrorKind.RANGE_INVALID,
                "chunk length does not match Content-Range",
                {"received": size - current.size, "expected": content_range.length},
                headers={"Range": status.range_header},
            )
        return status

    async def _small_first_write(
        self, current: UploadStatus, chunks: AsyncIterable[bytes], content_length: int | None
    ) -> tuple[AsyncIterable[bytes], bytes | None]:
        """A session's first write, read whole if it is small enough to keep in the session's row;
        otherwise ``None``, with the stream to write in its place (the same bytes).

        docker, podman, skopeo and buildah push each blob as one ``PATCH`` and an empty ``PUT``:
        kept in the row, a small blob never has a file, and the ``PUT`` stores it in the database.
        """
        if current.recorded or self._inline_max_bytes <= 0:
            return chunks, None
        if content_length is not None:
            small = 0 < content_length <= self._inline_max_bytes
            return chunks, await read_whole(chunks, content_length) if small else None
        # No Content-Length (buildah and docker send the body chunked): read up to just past the limit.
        stream = aiter(chunks)
        head: list[bytes] = []
        received = 0
        async for chunk in stream:
            head.append(chunk)
            received += len(chunk)
            if received > self._inline_max_bytes:
                return chain(head, stream), None
        return (chain(head, stream), None) if received == 0 else (chunks, b"".join(head))

    async def _hold(self, current: UploadStatus, content: bytes) -> int:
        """Make the session's row with a small first write's bytes in it; the session's new size."""
        if not await self._record(current, first_chunk=content):
            # Another write made the row first: this one no longer starts where the upload ends.
            raise RegistryError(
                ErrorKind.RANGE_INVALID,
                "the upload changed while this chunk was sent (concurrent writes)",
                headers={"Range": (await self.status(current.repository, current.id)).range_header},
            )
        self._hashes.discard(current.id)  # the bytes are hashed whole when the upload finishes
        return len(content)

    async def _move_to_file(self, current: UploadStatus, key: str) -> UploadStatus:
        """Write the bytes the session's row keeps to its file, which from then on holds them all.

        A move cut short leaves a file shorter than the row's bytes: the row still counts, and
        the next move writes the rest (the file only ever holds a prefix of them until then).
        """
        held = current.held
        assert held is not None
        await self._storage.create(key, durable=True, replace=False)
        on_file = await self._storage.stat(key) or 0
        if on_file < len(held):
            try:
                await self._storage.append(key, just(held[on_file:]), on_file)
            except OffsetMismatch as exc:
                if exc.actual < len(held):  # another request is moving them right now
                    raise RegistryError(
                        ErrorKind.RANGE_INVALID,
                        "the upload changed while this chunk was sent (concurrent writes)",
                        headers={"Range": current.range_header},
                    ) from exc
        hasher = new_hasher()
        hasher.update(held)
        self._hashes.put(current.id, RunningHash(len(held), hasher))
        return UploadStatus(current.id, current.repository, len(held))

    @staticmethod
    def _check_range(current: UploadStatus, content_range: ByteRange | None, content_length: int | None) -> None:
        if content_range is None:
            return
        if content_range.start != current.size:
            raise RegistryError(
                ErrorKind.RANGE_INVALID,
                f"chunk starts at {content_range.start} but the upload holds {current.size} bytes",
                {"Content-Range": f"{content_range.start}-{content_range.end}"},
                headers={"Range": current.range_header},
            )
        if content_length is not None and content_length != content_range.length:
            raise RegistryError(
                ErrorKind.RANGE_INVALID,
                "Content-Length does not match Content-Range",
                {"Content-Length": content_length, "Content-Range": f"{content_range.start}-{content_range.end}"},
                headers={"Range": current.range_header},
            )

    async def _write(
        self, current: UploadStatus, chunks: AsyncIterable[bytes], key: str | None = None, length: int | None = None
    ) -> int:
        """Append ``chunks`` (``length`` bytes, if the request said) to the upload; its new size."""
        # A session's file outlives the request that makes it: its name must survive a power cut
        # before that request is answered. A monolithic push's file is renamed (durably) anyway.
        durable = key is None
        key = key or upload_key(current.id)
        if current.held is not None:
            current = await self._move_to_file(current, key)
        if not current.recorded:
            await self._record(current)
        if not current.stored:
            await self._storage.create(key, durable=durable, replace=False)
        state = self._hashes.take(current.id)
        if state is None or state.offset != current.size:
            state = RunningHash(0, new_hasher()) if current.size == 0 else await hash_stored(self._storage, key)
        try:
            size = await self._storage.append(key, chunks, current.size, observer=state.update, length_hint=length)
        except OffsetMismatch as exc:
            raise RegistryError(
                ErrorKind.RANGE_INVALID,
                "the upload changed while this chunk was sent (concurrent writes)",
                headers={"Range": upload_range_header(exc.actual)},
            ) from exc
        except ObjectMissing as exc:
            raise RegistryError(ErrorKind.BLOB_UPLOAD_UNKNOWN, detail={"upload": current.id}) from exc
        # Any exception above leaves the state out of the table, so it is rebuilt next time.
        if state.offset == size:
            self._hashes.put(current.id, state)
        return size

    async def finish(
        self,
        repository: str,
        upload_id: str,
        digest: Digest,
        chunks: AsyncIterable[bytes] | None,
        content_range: ByteRange | None,
        content_length: int | None,
    ) -> int:
        """Take an optional last chunk, verify the digest, and commit the blob. Returns its size."""
        quota = self._quota(repository)
        current = await self.status(repository, upload_id, quota)
        if self._whole_and_small(current, chunks, content_length):
            if chunks is not None and content_length:
                self._check_range(current, content_range, content_length)
            body = b"" if chunks is None or not content_length else await read_whole(chunks, content_length)
            content = body if current.held is None else current.held + body
            await self._commit_inline(current, digest, content, quota=quota)
            return len(content)
        if chunks is not None and (content_length is None or content_length > 0):
            self._check_range(current, content_range, content_length)
            if content_length is not None:
                await self._check_quota(quota, current.size + content_length, digest)
            size = await self._write(current, chunks, length=content_length)
            current = UploadStatus(upload_id, repository, size)
        elif current.held is not None:  # kept in the row, but too large to keep in the database now
            current = await self._move_to_file(current, upload_key(upload_id))
        await self._commit(current, digest, quota=quota)
        return current.size

    async def _commit(
        self, current: UploadStatus, digest: Digest, key: str | None = None, *, quota: QuotaCheck | None
    ) -> None:
        session = key is None
        key = key or upload_key(current.id)
        if not current.stored:
            # An empty upload closed without a body (inline blobs switched off): its empty object.
            if not current.recorded:
                await self._record(current)
            await self._storage.create(key, durable=False, replace=False)
        state = self._hashes.take(current.id)
        if digest.algorithm != "sha256" or state is None or state.offset != current.size:
            state = await hash_stored(self._storage, key, digest.algorithm)
        actual = state.hasher.hexdigest()
        if actual != digest.encoded:
            # Keep the session: the client may retry with the right digest.
            if digest.algorithm == "sha256":
                self._hashes.put(current.id, state)
            raise _digest_mismatch(digest, f"{digest.algorithm}:{actual}")
        # The last check, with the size known: a refused blob is not committed (its session stays).
        await self._check_quota(quota, current.size, digest)
        # Claim the row, then put the bytes in place, then link (the GC protocol, docs/lifecycle.md);
        # on SQLite with local files, bytes first, then claim and link in one transaction.
        placed = self._storage.local_path(blob_key(digest)) if self._store.dialect == "sqlite" else None
        if placed is None:
            await self._store.claim_blob(str(digest), current.size)
        await self._storage.commit(key, blob_key(digest))
        try:
            await self._store.link_blob(
                current.repository,
                str(digest),
                current.size,
                finished_upload=current.id if session else None,
                bytes_present=None if placed is None else placed.is_file,
            )
        except BlobVanished as exc:
            raise RegistryError(ErrorKind.BLOB_UPLOAD_INVALID, str(exc), {"digest": str(digest)}) from exc

    async def monolithic(
        self, repository: str, digest: Digest, chunks: AsyncIterable[bytes], content_length: int | None = None
    ) -> int:
        """A whole blob in one request (``POST ?digest=``): a temporary file, no session row."""
        quota = self._quota(repository)
        await self._check_quota(quota, content_length, digest)
        nothing_stored = UploadStatus("", repository, 0, stored=False)
        if self._whole_and_small(nothing_stored, chunks, content_length):
            content = b"" if not content_length else await read_whole(chunks, content_length)
            await self._commit_inline(nothing_stored, digest, content, quota=quota)
            return len(content)
        nonce = uuid.uuid4().hex
        key = temporary_upload_key(time.time(), nonce)
        self._hashes.put(nonce, RunningHash(0, new_hasher()))
        current = UploadStatus(nonce, repository, 0, stored=False)
        try:
            size = await self._write(current, chunks, key, length=content_length)
            await self._commit(UploadStatus(nonce, repository, size), digest, key, quota=quota)
        except BaseException:
            self._hashes.discard(nonce)
            await self._storage.delete(key)
            raise
        return size

    def _whole_and_small(
        self, current: UploadStatus, chunks: AsyncIterable[bytes] | None, content_length: int | None
    ) -> bool:
        """Whether a request completes a blob small enough to keep in the database, with either
        no bytes stored before it or only those the session's row keeps."""
        if self._inline_max_bytes <= 0 or (current.size != 0 and current.held is None):
            return False
        if chunks is None or content_length == 0:
            return current.size <= self._inline_max_bytes
        return content_length is not None and current.size + content_length <= self._inline_max_bytes

    async def _commit_inline(
        self, current: UploadStatus, digest: Digest, content: bytes, *, quota: QuotaCheck | None
    ) -> None:
        """Verify a whole small blob and store it with its row and link, ending its session if it has one."""
        actual = digest_of(content, digest.algorithm)
        if actual != digest:
            # The session stays, as it is (empty): the client may push again with the right digest.
            raise _digest_mismatch(digest, str(actual))
        await self._check_quota(quota, len(content), digest)
        session = current.id or None
        await self._store.link_blob(
            current.repository, str(digest), len(content), finished_upload=session, content=content
        )
        if session is not None:
            self._hashes.discard(session)
            if current.stored:
                await self._storage.delete(upload_key(session))  # an empty object a 0-byte PATCH made

    async def cancel(self, repository: str, upload_id: str) -> None:
        """Abandon a session and free its bytes; its id is unknown from now on."""
        await self._session(repository, upload_id)
        self._hashes.discard(upload_id)
        await self._sessions.close(upload_id, repository)
        await self._storage.delete(upload_key(upload_id))

    async def mount(self, repository: str, digest: Digest, source: str) -> int | None:
        """Link a blob from ``source`` if that repository holds it; the size, or ``None`` to fall back."""
        if await self._store.linked_blob(source, str(digest)) is None:
            return None
        # Claim the existing row first: if garbage collection already took it, the blob is not
        # mountable; once claimed, it is spared long enough to check its bytes and link it.
        record = await self._store.claim_existing_blob(str(digest))
        if record is None or not await bytes_held(self._store, self._storage, digest):
            return None
        # Mounting into another namespace adds the blob to its usage: no way around the quota.
        await self._check_quota(self._quota(repository), record.size, digest)
        try:
            await self._store.link_blob(repository, str(digest), record.size)
        except BlobVanished:
            return None
        return record.size

    async def expire(self) -> int:
        """Remove sessions idle for longer than the expiry, and temporary uploads a crash left; how many went."""
        before = utcnow() - self._expiry
        idle = await self._sessions.idle_since(before)
        for upload_id, repository in idle:
            # Closed, not deleted: without its row a signed id would read as an open session.
            self._hashes.discard(upload_id)
            await self._sessions.close(upload_id, repository)
            await self._storage.delete(upload_key(upload_id))
        # A session closed that long ago has an expired id too (it was made before): its row can go.
        await self._sessions.forget_closed(before)
        oldest = time.time() - self._expiry.total_seconds()
        leftovers: list[str] = []
        session_ids: list[str] = []
        async for key in self._storage.list(UPLOADS_PREFIX):
            created = temporary_upload_created(key)
            if created is not None:
                if created < oldest:
                    leftovers.append(key)
            elif SESSION_ID.match(name := key.removeprefix(UPLOADS_PREFIX)):
                session_ids.append(name)
        # A session's bytes with no open session: what a PATCH racing its session's PUT wrote, or
        # what a crash between closing a session and deleting its bytes left. A session has its
        # open row before its first byte is stored, so nothing live is taken.
        still_open = await self._sessions.open_among(session_ids)
        leftovers += [upload_key(upload_id) for upload_id in session_ids if upload_id not in still_open]
        for key in leftovers:
            await self._storage.delete(key)
        return len(idle) + len(leftovers)

    @staticmethod
    def no_body() -> AsyncIterator[bytes]:
        """An empty body stream."""
        return empty()
