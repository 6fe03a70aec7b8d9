"""The blob storage interface every driver implements.

Keys are relative slash-separated strings from :mod:`portside.storage.paths`. Drivers
must make a write durable before returning from it, and make :meth:`BlobStorage.commit`
atomic: a committed key is either absent or complete, never partial.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path


class OffsetMismatch(Exception):
    """An append found the object at another size than the caller expected."""

    def __init__(self, actual: int) -> None:
        self.actual = actual
        super().__init__(f"object holds {actual} bytes")


class ObjectMissing(Exception):
    """The key does not exist."""


# Called with every buffer as it is written, off the event loop (used to hash while storing).
WriteObserver = Callable[[bytes], None]


class BlobStorage(ABC):
    """Byte storage for blobs and in-progress uploads."""

    @abstractmethod
    async def stat(self, key: str) -> int | None:
        """The size of the object at ``key``, or ``None`` if there is none."""

    @abstractmethod
    def read(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """Stream ``length`` bytes (all, if ``None``) of the object from ``offset``."""

    @abstractmethod
    async def create(self, key: str, durable: bool = True, replace: bool = True) -> None:
        """Create an empty object (an upload's start); with ``durable``, make it survive a power cut.

        Without ``replace``, an object already at ``key`` is left as it is (an upload's first write
        makes its object, and two first writes may race).
        """

    @abstractmethod
    async def append(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        expected_offset: int,
        observer: WriteObserver | None = None,
        length_hint: int | None = None,
    ) -> int:
        """Append a stream to an existing object that holds exactly ``expected_offset`` bytes.

        Raises :class:`OffsetMismatch` (with the actual size) when it holds another number,
        or another append is under way. Returns the new size once it is durable.
        ``length_hint`` is how many bytes the stream announced (its ``Content-Length``), if known.
        """

    @abstractmethod
    async def commit(self, source_key: str, target_key: str) -> None:
        """Atomically move an object into place; if the target exists, drop the source."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove an object if it exists."""

    @abstractmethod
    def list(self, prefix: str) -> AsyncIterator[str]:
        """Every key under ``prefix``."""

    def local_path(self, key: str) -> Path | None:
        """A filesystem path to the object for zero-copy serving, where the driver has one."""
        return None

    async def redirect_url(self, key: str) -> str | None:
        """A URL clients may GET the committed object from directly (``Range`` included), where
        the driver and its settings offer one; ``None`` means serve the bytes from here."""
        return None

    async def close(self) -> None:  # noqa: B027 - drivers without resources need nothing here
        """Release connections and file handles."""
