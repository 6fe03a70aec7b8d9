"""Running hashes of uploads, kept in process and rebuilt from storage when missing."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from portside.oci.digest import new_hasher
from portside.storage.base import BlobStorage


@dataclass
class RunningHash:
    """The sha256 state of an upload's first ``offset`` bytes."""

    offset: int
    hasher: hashlib._Hash

    def update(self, data: bytes) -> None:
        """Feed bytes as they are stored (called off the event loop)."""
        self.hasher.update(data)
        self.offset += len(data)


class RunningHashes:
    """A bounded table of running hashes. A request landing in another worker process,
    or after a restart, finds no entry and recomputes from the stored bytes."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._states: OrderedDict[str, RunningHash] = OrderedDict()

    def take(self, upload_id: str) -> RunningHash | None:
        """Remove and return the state (the caller owns it while it writes)."""
        return self._states.pop(upload_id, None)

    def put(self, upload_id: str, state: RunningHash) -> None:
        """Keep a state whose offset matches what storage holds."""
        self._states[upload_id] = state
        self._states.move_to_end(upload_id)
        while len(self._states) > self._capacity:
            self._states.popitem(last=False)

    def discard(self, upload_id: str) -> None:
        """Forget an upload's state."""
        self._states.pop(upload_id, None)


async def hash_stored(storage: BlobStorage, key: str, algorithm: str = "sha256") -> RunningHash:
    """Hash an object already in storage from its first byte."""
    state = RunningHash(0, new_hasher(algorithm))
    async for chunk in storage.read(key):
        state.update(chunk)
    return state
