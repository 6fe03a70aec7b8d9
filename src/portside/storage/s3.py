"""Blob storage in an S3-compatible bucket, through aiobotocore.

Committed objects are plain S3 objects. Uploads are *segmented*: a marker made by
``create`` and one immutable segment per append, each claimed at its start offset with
``If-None-Match: *`` (see :mod:`portside.storage.s3_layout`). That makes concurrent
appends race-free on any server that honours conditional writes on ``PutObject`` and
``CompleteMultipartUpload`` (AWS S3 since 2024, MinIO, Cloudflare R2, moto), keeps
memory at a few parts whatever the chunk sizes, and lets any node read, size and
extend an upload. ``commit`` assembles the segments with one multipart upload whose
completion is conditional too, so a blob key is absent or complete, and never replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from portside.storage.base import BlobStorage, ObjectMissing, OffsetMismatch, WriteObserver
from portside.storage.s3_layout import (
    CopyPart,
    Part,
    Piece,
    Span,
    Stored,
    UploadPart,
    check_key,
    logical_key,
    marker_name,
    plan_parts,
    resolve,
    segment_name,
)
from portside.storage.s3_writer import WRITER_METADATA, SegmentWriter, Taken

if TYPE_CHECKING:
    from aiobotocore.response import StreamingBody
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef

READ_CHUNK = 1 << 20
# Parts of one assembly copied or uploaded at the same time.
ASSEMBLY_CONCURRENCY = 4
# How often a conditional write that met a concurrent one (409) is tried again.
CONFLICT_RETRIES = 5
# DeleteObjects takes at most this many keys.
DELETE_BATCH = 1000

T = TypeVar("T")


@dataclass(frozen=True)
class S3Options:
    """Where and how to reach the bucket."""

    bucket: str
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    prefix: str = ""
    redirect_blobs: bool = False
    redirect_expiry_seconds: int = 1200
    max_connections: int = 64


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _is_missing(exc: ClientError) -> bool:
    return _error_code(exc) in {"NoSuchKey", "404", "NotFound"} or _status(exc) == 404


def _is_precondition_failed(exc: ClientError) -> bool:
    return _error_code(exc) == "PreconditionFailed" or _status(exc) == 412


def _is_conflict(exc: ClientError) -> bool:
    return _error_code(exc) == "ConditionalRequestConflict" or _status(exc) == 409


class S3Storage(BlobStorage):
    """Objects live in one bucket under an optional key prefix."""

    def __init__(self, options: S3Options) -> None:
        self.options = options
        prefix = options.prefix.strip("/")
        self._prefix = f"{prefix}/" if prefix else ""
        self._client: S3Client | None = None
        self._exit = contextlib.AsyncExitStack()
        self._lock = asyncio.Lock()

    # Connection

    async def _s3(self) -> S3Client:
        """The client, made on first use inside the running event loop."""
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    config = AioConfig(
                        signature_version="s3v4",
                        max_pool_connections=self.options.max_connections,
                        retries={"mode": "standard", "max_attempts": 5},
                    )
                    self._client = await self._exit.enter_async_context(
                        get_session().create_client(
                            "s3",
                            endpoint_url=self.options.endpoint_url,
                            region_name=self.options.region,
                            aws_access_key_id=self.options.access_key_id,
                            aws_secret_access_key=self.options.secret_access_key,
                            config=config,
                        )
                    )
        return self._client

    async def close(self) -> None:
        """Close the client's connections."""
        self._client = None
        await self._exit.aclose()

    def _object(self, name: str) -> str:
        return self._prefix + name

    # Listing and reading

    async def _listing(self, prefix: str) -> AsyncIterator[tuple[str, int]]:
        """``(name, size)`` of every object whose name starts with ``prefix``, in name order."""
        s3 = await self._s3()
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.options.bucket, Prefix=self._object(prefix)):
            for item in page.get("Contents", []):
                yield item["Key"][len(self._prefix) :], item["Size"]

    async def _resolve(self, key: str) -> Stored | None:
        check_key(key)
        return resolve(key, [entry async for entry in self._listing(key)])

    async def stat(self, key: str) -> int | None:
        """The size of the committed object or upload, from one listing."""
        stored = await self._resolve(key)
        return None if stored is None else stored.size

    async def _open(self, name: str, start: int = 0, end: int | None = None) -> StreamingBody | None:
        """A GET of bytes ``[start, end)`` of one object; ``None`` if the range starts past its end."""
        s3 = await self._s3()
        bucket, object_key = self.options.bucket, self._object(name)
        try:
            if start == 0 and end is None:
                response = await s3.get_object(Bucket=bucket, Key=object_key)
            else:
                last = "" if end is None else str(end - 1)
                response = await s3.get_object(Bucket=bucket, Key=object_key, Range=f"bytes={start}-{last}")
        except ClientError as exc:
            if _is_missing(exc):
                raise ObjectMissing(name) from exc
            if _error_code(exc) == "InvalidRange":
                return None
            raise
        return response["Body"]

    @staticmethod
    async def _drain(body: StreamingBody) -> AsyncIterator[bytes]:
        async with body:
            while chunk := await body.read(READ_CHUNK):
                yield chunk

    async def read(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """Stream a committed object with one (ranged) GET, or an upload segment by segment."""
        check_key(key)
        if length == 0:
            if await self.stat(key) is None:
                raise ObjectMissing(key)
            return
        end = None if length is None else offset + length
        try:
            body = await self._open(key, offset, end)
        except ObjectMissing:
            pass
        else:
            if body is not None:
                async for chunk in self._drain(body):
                    yield chunk
            return
        stored = await self._resolve(key)
        if stored is None:
            raise ObjectMissing(key)
        for piece in stored.pieces:
            start = max(offset, piece.start)
            stop = piece.end if end is None else min(end, piece.end)
            if start >= stop:
                continue
            try:
                body = await self._open(piece.name, start - piece.start, stop - piece.start)
            except ObjectMissing as exc:  # deleted or committed while we read
                raise ObjectMissing(key) from exc
            if body is not None:
                async for chunk in self._drain(body):
                    yield chunk

    async def list(self, prefix: str) -> AsyncIterator[str]:
        """Every key under ``prefix``: committed objects and uploads (named once, not per segment)."""
        last: str | None = None
        async for name, _size in self._listing(prefix):
            key = logical_key(name)
            if key != last:
                last = key
                yield key

    # Writing

    async def _conditional(self, write: Callable[[], Awaitable[T]]) -> T:
        """Run a write with ``If-None-Match: *``; :class:`Taken` if its key exists.

        A 409 means another conditional write to the key is in flight: try again, and
        the first to finish wins.
        """
        for attempt in range(CONFLICT_RETRIES):
            try:
                return await write()
            except ClientError as exc:
                if _is_precondition_failed(exc):
                    raise Taken from exc
                if not _is_conflict(exc) or attempt == CONFLICT_RETRIES - 1:
                    raise
            await asyncio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _written_by(self, name: str, writer: str) -> bool:
        """Whether the object at ``name`` was written by the append ``writer``."""
        s3 = await self._s3()
        try:
            head = await s3.head_object(Bucket=self.options.bucket, Key=self._object(name))
        except ClientError as exc:
            if _is_missing(exc):
                return False
            raise
        return head.get("Metadata", {}).get(WRITER_METADATA) == writer

    async def create(self, key: str, durable: bool = True, replace: bool = True) -> None:
        """Write the upload's marker and drop segments a previous object at this key left (always durable).

        Without ``replace``, an upload already at ``key`` is left as it is.
        """
        stored = await self._resolve(key)
        if stored is not None and not replace:
            return
        s3 = await self._s3()
        await s3.put_object(Bucket=self.options.bucket, Key=self._object(marker_name(key)), Body=b"")
        if stored is not None:
            await self._delete_names([name for name in stored.names if name != marker_name(key)])
            if stored.plain is not None:
                await self._delete_names([key])

    async def append(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        expected_offset: int,
        observer: WriteObserver | None = None,
        length_hint: int | None = None,
    ) -> int:
        """Stream the chunks into a new segment claimed at ``expected_offset`` (``length_hint`` is not needed).

        The size is checked first, so a stale offset fails before any byte is sent; the
        claim itself is the conditional write at the end, which fails with
        :class:`OffsetMismatch` when a concurrent append claimed the offset first.
        """
        stored = await self._resolve(key)
        if stored is None or stored.plain is not None or not stored.segmented:
            raise ObjectMissing(key)  # no upload here (a committed object is never appended to)
        if stored.size != expected_offset:
            raise OffsetMismatch(stored.size)
        writer = SegmentWriter(self, segment_name(key, expected_offset), observer)
        try:
            async for chunk in chunks:
                await writer.feed(chunk)
            written = await writer.finish()
        except Taken:
            await writer.abort()
            actual = await self.stat(key)
            raise OffsetMismatch(actual if actual is not None else 0) from None
        except BaseException:
            await writer.abort()
            raise
        return expected_offset + written

    async def commit(self, source_key: str, target_key: str) -> None:
        """Assemble the source into the target with a conditional multipart upload, then drop the source."""
        check_key(target_key)
        if not await self._exists(target_key):
            stored = await self._resolve(source_key)
            if stored is None:
                raise ObjectMissing(source_key)
            await self._assemble(stored.pieces, target_key)
        await self.delete(source_key)

    async def _exists(self, name: str) -> bool:
        s3 = await self._s3()
        try:
            await s3.head_object(Bucket=self.options.bucket, Key=self._object(name))
        except ClientError as exc:
            if _is_missing(exc):
                return False
            raise
        return True

    async def _gather(self, part: UploadPart) -> bytes:
        """Read an uploaded part's spans into one buffer (at most ``PART_SIZE`` bytes)."""
        data = bytearray()
        for span in part.sources:
            body = await self._open(span.name, span.start, span.end)
            if body is not None:
                async for chunk in self._drain(body):
                    data += chunk
        if len(data) != part.size:
            raise ObjectMissing(part.sources[0].name)
        return bytes(data)

    async def _assemble(self, pieces: tuple[Piece, ...], target: str) -> None:
        """Write the pieces' bytes to ``target`` unless it exists: one PUT when small, else a multipart upload."""
        s3 = await self._s3()
        bucket, object_key = self.options.bucket, self._object(target)
        parts = plan_parts(pieces)
        only = parts[0] if len(parts) == 1 else None
        if not parts or isinstance(only, UploadPart):
            data = await self._gather(only) if isinstance(only, UploadPart) else b""
            with contextlib.suppress(Taken):
                await self._conditional(
                    lambda: s3.put_object(Bucket=bucket, Key=object_key, Body=data, IfNoneMatch="*")
                )
            return
        upload_id = (await s3.create_multipart_upload(Bucket=bucket, Key=object_key))["UploadId"]
        try:
            limit = asyncio.Semaphore(ASSEMBLY_CONCURRENCY)

            async def send(number: int, part: Part) -> CompletedPartTypeDef:
                async with limit:
                    return {"PartNumber": number, "ETag": await self._send_part(upload_id, target, number, part)}

            done = await asyncio.gather(*(send(number, part) for number, part in enumerate(parts, 1)))
            await self._conditional(
                lambda: s3.complete_multipart_upload(
                    Bucket=bucket,
                    Key=object_key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": list(done)},
                    IfNoneMatch="*",
                )
            )
        except Taken:  # committed meanwhile by another request: that copy stands
            await self._abort(target, upload_id)
        except BaseException:
            await self._abort(target, upload_id)
            raise

    async def _send_part(self, upload_id: str, target: str, number: int, part: Part) -> str:
        s3 = await self._s3()
        bucket, object_key = self.options.bucket, self._object(target)
        if isinstance(part, CopyPart):
            source: Span = part.source
            copied = await s3.upload_part_copy(
                Bucket=bucket,
                Key=object_key,
                UploadId=upload_id,
                PartNumber=number,
                CopySource={"Bucket": bucket, "Key": self._object(source.name)},
                CopySourceRange=f"bytes={source.start}-{source.end - 1}",
            )
            return copied["CopyPartResult"]["ETag"]
        data = await self._gather(part)
        uploaded = await s3.upload_part(Bucket=bucket, Key=object_key, UploadId=upload_id, PartNumber=number, Body=data)
        return uploaded["ETag"]

    async def _abort(self, name: str, upload_id: str) -> None:
        """Abandon a multipart upload; the bucket's lifecycle rule catches any this misses."""
        s3 = await self._s3()
        with contextlib.suppress(ClientError):
            await asyncio.shield(
                s3.abort_multipart_upload(Bucket=self.options.bucket, Key=self._object(name), UploadId=upload_id)
            )

    async def delete(self, key: str) -> None:
        """Remove the object, or the upload's marker and every segment."""
        check_key(key)
        names = [name async for name, _size in self._listing(key) if logical_key(name) == key]
        await self._delete_names(names)

    async def _delete_names(self, names: Sequence[str]) -> None:
        s3 = await self._s3()
        for start in range(0, len(names), DELETE_BATCH):
            batch = names[start : start + DELETE_BATCH]
            result = await s3.delete_objects(
                Bucket=self.options.bucket,
                Delete={"Objects": [{"Key": self._object(name)} for name in batch], "Quiet": True},
            )
            errors = [error for error in result.get("Errors", []) if error.get("Code") != "NoSuchKey"]
            if errors:
                raise OSError(f"S3 refused to delete {len(errors)} objects, first: {errors[0]}")

    # Redirects

    async def presigned_url(self, key: str, expires_in: int | None = None) -> str:
        """A time-limited URL that GETs the committed object (``Range`` requests included)."""
        check_key(key)
        s3 = await self._s3()
        return await s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.options.bucket, "Key": self._object(key)},
            ExpiresIn=expires_in or self.options.redirect_expiry_seconds,
        )

    async def redirect_url(self, key: str) -> str | None:
        """A presigned URL when the settings send blob reads straight to the bucket."""
        return await self.presigned_url(key) if self.options.redirect_blobs else None
