"""Writing one segment of an S3 upload: a conditional PUT, or a conditional multipart upload.

Split from :mod:`portside.storage.s3`, whose :class:`~portside.storage.s3.S3Storage` owns the
client and the conditional-write retries this writer uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

from portside.storage.base import WriteObserver
from portside.storage.s3_layout import upload_part_size

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef

    from portside.storage.s3 import S3Storage

T = TypeVar("T")

# User metadata naming the append that wrote a segment, to recognise our own write
# when a retried request finds its first attempt already succeeded.
WRITER_METADATA = "portside-writer"


class Taken(Exception):
    """A conditional write found its key already written by someone else."""


class SegmentWriter:
    """Streams one append into one segment: a single conditional PUT when it fits in a part,
    else a multipart upload (one part sent while the next is received) completed conditionally."""

    def __init__(self, storage: S3Storage, name: str, observer: WriteObserver | None) -> None:
        self._storage = storage
        self._name = name
        self._observer = observer
        self._writer = uuid.uuid4().hex
        self._buffer = bytearray()
        self._size = 0
        self._upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []
        self._pending: asyncio.Task[None] | None = None

    @property
    def _bucket(self) -> str:
        return self._storage.options.bucket

    @property
    def _key(self) -> str:
        return self._storage._object(self._name)

    async def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._buffer += chunk
        self._size += len(chunk)
        if len(self._buffer) >= upload_part_size(len(self._parts) + 1):
            await self._send_buffer()

    async def _observed(self, data: bytes, write: Awaitable[T]) -> T:
        """Await ``write`` while the observer sees ``data`` in a worker thread; both finish before this returns."""
        if self._observer is None:
            return await write
        observing = asyncio.ensure_future(asyncio.to_thread(self._observer, data))
        try:
            return await write
        finally:
            await observing

    async def _send_buffer(self) -> None:
        s3 = await self._storage._s3()
        if self._upload_id is None:
            created = await s3.create_multipart_upload(
                Bucket=self._bucket, Key=self._key, Metadata={WRITER_METADATA: self._writer}
            )
            self._upload_id = created["UploadId"]
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending
        data, self._buffer = bytes(self._buffer), bytearray()
        number = len(self._parts) + 1
        self._parts.append({"PartNumber": number, "ETag": ""})
        self._pending = asyncio.ensure_future(self._send_part(s3, self._upload_id, number, data))

    async def _send_part(self, s3: S3Client, upload_id: str, number: int, data: bytes) -> None:
        uploaded = await self._observed(
            data, s3.upload_part(Bucket=self._bucket, Key=self._key, UploadId=upload_id, PartNumber=number, Body=data)
        )
        self._parts[number - 1] = {"PartNumber": number, "ETag": uploaded["ETag"]}

    async def finish(self) -> int:
        """Write what is left and claim the segment; the bytes written (0: nothing was sent)."""
        s3 = await self._storage._s3()
        if self._upload_id is None:
            if not self._buffer:
                return 0
            data = bytes(self._buffer)
            self._buffer = bytearray()
            bucket, key, metadata = self._bucket, self._key, {WRITER_METADATA: self._writer}
            try:
                await self._observed(
                    data,
                    self._storage._conditional(
                        lambda: s3.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*", Metadata=metadata)
                    ),
                )
            except Taken:
                if not await self._storage._written_by(self._name, self._writer):
                    raise
            return self._size
        if self._buffer:
            await self._send_buffer()
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending
        upload_id, parts = self._upload_id, list(self._parts)
        try:
            await self._storage._conditional(
                lambda: s3.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=self._key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                    IfNoneMatch="*",
                )
            )
        except Taken:
            if not await self._storage._written_by(self._name, self._writer):
                raise
        self._upload_id = None
        return self._size

    async def abort(self) -> None:
        """Abandon a half-written segment."""
        if self._pending is not None:
            self._pending.cancel()
            with contextlib.suppress(BaseException):
                await self._pending
            self._pending = None
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            await self._storage._abort(self._name, upload_id)
