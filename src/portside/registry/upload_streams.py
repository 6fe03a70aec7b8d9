"""Request bodies as the upload service reads them: whole when small, or as async streams of chunks."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from portside.oci.errors import ErrorKind, RegistryError


async def empty() -> AsyncIterator[bytes]:
    """An empty body stream."""
    return
    yield b""  # pragma: no cover - makes this an async generator


async def just(data: bytes) -> AsyncIterator[bytes]:
    """A stream of one chunk."""
    yield data


async def chain(head: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Chunks already read, then the rest of their stream."""
    for chunk in head:
        yield chunk
    async for chunk in rest:
        yield chunk


async def read_whole(chunks: AsyncIterable[bytes], expected: int) -> bytes:
    """A small body, whole: ``BLOB_UPLOAD_INVALID`` if it is longer than its ``Content-Length``."""
    parts: list[bytes] = []
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if received > expected:
            raise RegistryError(ErrorKind.BLOB_UPLOAD_INVALID, "body longer than its Content-Length")
        parts.append(chunk)
    return b"".join(parts)
