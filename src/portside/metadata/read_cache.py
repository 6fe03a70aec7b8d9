"""An in-process cache of the hottest reads (manifests, blob links, tags lists), for SQLite.

Every entry is dropped as soon as the database changes:

- Every write transaction Portside commits (any worker, any CLI command on the same data dir)
  then stores a new random stamp in a small shared file next to the database (:class:`ChangeStamp`),
  before the request that wrote answers. Each lookup compares the mapped stamp with the one it
  last saw, which costs a memory read, so a repeated manifest GET or blob HEAD needs no query at
  all and no reader can see an answer older than a write that was acknowledged before it asked.
- Writers that bypass Portside (someone editing the file with ``sqlite3``) are caught by SQLite's
  ``PRAGMA data_version``, which changes whenever another connection commits; it is read at most
  every ``EXTERNAL_CHECK_SECONDS`` because it takes the file's shared-memory locks.

PostgreSQL nodes are separate machines with no shared file; there the store reads the database
every time.
"""

from __future__ import annotations

import mmap
import os
import sqlite3
import struct
import time
from collections.abc import Hashable
from typing import Generic, TypeVar

from portside.metadata.engines import sqlite_file
from portside.metadata.records import BlobRecord, ManifestRecord

Value = TypeVar("Value")

# Bounds per cache: manifests are small (a few KiB), and a full cache is simply emptied.
MAX_ENTRIES = 8192
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
# Complete tags lists of this many repositories (each at most the tags of one repository).
MAX_TAG_LISTS = 256
# How stale the cache may be after a write that bypassed Portside.
EXTERNAL_CHECK_SECONDS = 0.1
_STAMP = struct.Struct("<Q")


class ChangeStamp:
    """Eight bytes in a file shared by every process using one database, rewritten after each commit.

    A new stamp is random rather than an increment: two processes writing at once cannot both
    write a value some reader has already seen.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._map: mmap.mmap | None = None

    def _mapping(self) -> mmap.mmap:
        if self._map is None:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if os.fstat(fd).st_size < _STAMP.size:
                    os.ftruncate(fd, _STAMP.size)
                self._map = mmap.mmap(fd, _STAMP.size)
            finally:
                os.close(fd)
        return self._map

    def current(self) -> int:
        """The stamp now."""
        return int(_STAMP.unpack_from(self._mapping(), 0)[0])

    def renew(self) -> None:
        """Store a new stamp: every process's cache drops what it holds at its next lookup."""
        _STAMP.pack_into(self._mapping(), 0, int.from_bytes(os.urandom(_STAMP.size), "little"))

    def close(self) -> None:
        """Unmap the file."""
        if self._map is not None:
            self._map.close()
            self._map = None


class DataVersion:
    """SQLite's commit counter as seen by one dedicated connection."""

    def __init__(self, database_path: str) -> None:
        self._path = database_path
        self._conn: sqlite3.Connection | None = None

    def current(self) -> int:
        """The counter now; it differs from an earlier value if anyone else committed since."""
        if self._conn is None:
            # Opened on first use, after migrations made the file. Autocommit and never in a
            # transaction, so each PRAGMA sees the latest commit.
            self._conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        row = self._conn.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _Entries(Generic[Value]):
    """A bounded dictionary, emptied when a new entry would take it past its count or weight."""

    def __init__(self, max_entries: int, max_weight: int | None = None) -> None:
        self.items: dict[Hashable, Value] = {}
        self.max_entries = max_entries
        self.max_weight = max_weight
        self.weight = 0

    def put(self, key: Hashable, value: Value, weight: int = 0) -> None:
        too_heavy = self.max_weight is not None and self.weight + weight > self.max_weight
        if len(self.items) >= self.max_entries or too_heavy:
            self.clear()
        self.items[key] = value
        self.weight += weight

    def clear(self) -> None:
        self.items.clear()
        self.weight = 0


class ReadCache:
    """Manifests and blob links read since the database last changed."""

    def __init__(self, stamp: ChangeStamp, version: DataVersion) -> None:
        self._stamp = stamp
        self._version = version
        self._seen_stamp: int | None = None
        self._seen_version: int | None = None
        self._version_due = 0.0
        self._manifests: _Entries[ManifestRecord] = _Entries(MAX_ENTRIES, MAX_MANIFEST_BYTES)
        self._blobs: _Entries[BlobRecord] = _Entries(MAX_ENTRIES)
        self._tag_names: _Entries[list[str]] = _Entries(MAX_TAG_LISTS)

    def _fresh(self) -> None:
        """Drop everything if the database changed since the last look."""
        stamp = self._stamp.current()
        if stamp != self._seen_stamp:
            self._seen_stamp = stamp
            self.clear()
        now = time.monotonic()
        if now >= self._version_due:
            self._version_due = now + EXTERNAL_CHECK_SECONDS
            version = self._version.current()
            if version != self._seen_version:
                self._seen_version = version
                self.clear()

    def note_commit(self) -> None:
        """Called after this process committed a write: tell every process, this one included."""
        self._stamp.renew()

    def clear(self) -> None:
        """Forget every entry."""
        self._manifests.clear()
        self._blobs.clear()
        self._tag_names.clear()

    def manifest(self, repository: str, reference: str) -> ManifestRecord | None:
        """A cached manifest of ``repository`` by tag or digest, if the database has not changed since."""
        self._fresh()
        return self._manifests.items.get((repository, reference))

    def keep_manifest(self, repository: str, reference: str, record: ManifestRecord) -> None:
        """Remember a manifest just read from the database."""
        self._manifests.put((repository, reference), record, len(record.content))

    def blob(self, repository: str, digest: str) -> BlobRecord | None:
        """A cached blob link of ``repository``, if the database has not changed since."""
        self._fresh()
        return self._blobs.items.get((repository, digest))

    def keep_blob(self, repository: str, digest: str, record: BlobRecord) -> None:
        """Remember a blob link just read from the database."""
        self._blobs.put((repository, digest), record)

    def tag_names(self, repository: str) -> list[str] | None:
        """A cached complete tags list of ``repository`` in lexical order, if the database has not changed since."""
        self._fresh()
        return self._tag_names.items.get(repository)

    def keep_tag_names(self, repository: str, names: list[str]) -> None:
        """Remember a complete tags list just read from the database."""
        self._tag_names.put(repository, names)

    def close(self) -> None:
        """Release the stamp's mapping and the counter's connection."""
        self._stamp.close()
        self._version.close()


def read_cache_for(url: str) -> ReadCache | None:
    """The hot-read cache for a SQLite file; None for PostgreSQL or an in-memory database."""
    path = sqlite_file(url)
    return None if path is None else ReadCache(ChangeStamp(f"{path}-changes"), DataVersion(path))
