"""How the S3 driver lays one storage key out as bucket objects, and how it assembles them: pure, no I/O.

A committed object is one S3 object named by its key. An object that is still being
appended to (an upload) is a *segmented* object: an empty marker ``<key>~`` made by
``create``, and one immutable segment per append, ``<key>~<start offset, 20 digits>``.
Each append claims its start offset by writing its segment with ``If-None-Match: *``,
so two appends that expect the same size cannot both succeed, and segments are never
rewritten or removed while the upload lives. The object's bytes are its segments in
order, starting at 0 and each starting where the one before ends.

``commit`` assembles the segments into one object with a multipart upload: segments
of at least 5 MiB are copied server-side (``UploadPartCopy``); runs of smaller ones are
read and re-uploaded as one part, since S3 refuses parts under 5 MiB but the last.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from portside.digits import parse_digits

MIB = 1024 * 1024
# S3's smallest part (every part of a multipart upload but the last).
MIN_PART = 5 * MIB
# The size of the parts this driver uploads from memory.
PART_SIZE = 8 * MIB
# Server-side copies are split into parts of at most this size, copied in parallel.
COPY_PART_SIZE = 512 * MIB
# S3's largest part, and most parts in one multipart upload.
MAX_PART = 5 * 1024 * MIB
MAX_PARTS = 10_000

SEGMENT_MARK = "~"
_OFFSET_DIGITS = 20


def check_key(key: str) -> None:
    """Refuse keys this layout cannot store unambiguously."""
    if not key or key.startswith("/") or ".." in key.split("/") or SEGMENT_MARK in key:
        raise ValueError(f"unsafe storage key {key!r}")


def marker_name(key: str) -> str:
    """The empty object that says a segmented object exists (it may have no segments yet)."""
    return key + SEGMENT_MARK


def segment_name(key: str, offset: int) -> str:
    """The segment that holds an object's bytes from ``offset``."""
    return f"{key}{SEGMENT_MARK}{offset:0{_OFFSET_DIGITS}d}"


def logical_key(name: str) -> str:
    """The storage key an object name belongs to."""
    return name.split(SEGMENT_MARK, 1)[0]


def upload_part_size(part_number: int) -> int:
    """The size of the ``part_number``-th part (1-based) of a streamed upload.

    It grows every 1000 parts, so that one stream can reach about 440 GiB within
    S3's 10,000 parts while memory stays at a few parts.
    """
    return PART_SIZE * (1 + (part_number - 1) // 1000)


@dataclass(frozen=True)
class Piece:
    """One bucket object holding bytes ``[start, start + size)`` of a stored object."""

    name: str
    start: int
    size: int

    @property
    def end(self) -> int:
        """The offset just past this piece."""
        return self.start + self.size


@dataclass(frozen=True)
class Stored:
    """What a listing says is stored at one key."""

    key: str
    # The committed object, if there is one.
    plain: Piece | None
    # True for an object made by ``create`` (an upload), which may have segments.
    segmented: bool
    # Every other bucket object under this key (marker, segments, orphans): removed on delete.
    names: tuple[str, ...]
    # The segments in order, contiguous from 0.
    segments: tuple[Piece, ...]

    @property
    def size(self) -> int:
        """The object's size in bytes."""
        if self.plain is not None:
            return self.plain.size
        return self.segments[-1].end if self.segments else 0

    @property
    def pieces(self) -> tuple[Piece, ...]:
        """The objects that hold the bytes, in order."""
        return (self.plain,) if self.plain is not None else self.segments


def resolve(key: str, listing: Iterable[tuple[str, int]]) -> Stored | None:
    """Interpret the ``(name, size)`` pairs listed under ``key``; ``None`` if no object is there.

    Names that merely start with ``key`` (another key) are ignored. A segmented object
    needs its marker or a segment at offset 0: segments without either are orphans (an
    append that lost a race with ``delete``) and read as no object. Segments past a gap
    are ignored the same way.
    """
    plain: Piece | None = None
    marker = False
    names: list[str] = []
    segments: dict[int, Piece] = {}
    prefix = key + SEGMENT_MARK
    for name, size in listing:
        if name == key:
            plain = Piece(name, 0, size)
            continue
        if not name.startswith(prefix):
            continue
        names.append(name)
        suffix = name[len(prefix) :]
        if suffix == "":
            marker = True
        elif len(suffix) == _OFFSET_DIGITS and (start := parse_digits(suffix)) is not None:
            segments[start] = Piece(name, start, size)
    chain: list[Piece] = []
    offset = 0
    while offset in segments and segments[offset].size > 0:
        chain.append(segments[offset])
        offset = segments[offset].end
    segmented = marker or bool(chain)
    if plain is None and not segmented:
        return None
    return Stored(key, plain, segmented, tuple(names), tuple(chain))


@dataclass(frozen=True)
class Span:
    """Bytes ``[start, end)`` of one bucket object."""

    name: str
    start: int
    end: int

    @property
    def size(self) -> int:
        """How many bytes the span holds."""
        return self.end - self.start


@dataclass(frozen=True)
class CopyPart:
    """A part copied server-side from a span of one object."""

    source: Span


@dataclass(frozen=True)
class UploadPart:
    """A part read from spans of one or more objects and uploaded from memory."""

    sources: tuple[Span, ...]

    @property
    def size(self) -> int:
        """The part's size."""
        return sum(span.size for span in self.sources)


Part = CopyPart | UploadPart


class TooManyParts(ValueError):
    """The pieces cannot be assembled within S3's 10,000 parts."""


def plan_parts(
    pieces: Iterable[Piece],
    *,
    min_part: int = MIN_PART,
    part_size: int = PART_SIZE,
    copy_part_size: int = COPY_PART_SIZE,
    max_parts: int = MAX_PARTS,
) -> list[Part]:
    """The parts that assemble ``pieces`` into one object, copying server-side where S3 allows.

    Every part but the last is at least ``min_part`` and an uploaded part holds at most
    ``part_size`` bytes, so assembling holds no more than that in memory per part.
    """
    parts: list[Part] = []
    pending: list[Span] = []
    pending_size = 0

    def flush() -> None:
        nonlocal pending, pending_size
        if pending:
            parts.append(UploadPart(tuple(pending)))
            pending, pending_size = [], 0

    def buffer(name: str, start: int, end: int) -> None:
        nonlocal pending_size
        while start < end:
            take = min(end - start, part_size - pending_size)
            pending.append(Span(name, start, start + take))
            pending_size += take
            start += take
            if pending_size >= part_size:
                flush()

    for piece in pieces:
        start = 0
        if pending:
            # A buffered run becomes a part of its own only once it reaches the minimum: top it
            # up from this piece, unless what would be left of the piece is too small to copy.
            top_up = max(0, min_part - pending_size)
            if piece.size - top_up < min_part:
                buffer(piece.name, 0, piece.size)
                continue
            buffer(piece.name, 0, top_up)
            flush()
            start = top_up
        remaining = piece.size - start
        if remaining < min_part:
            buffer(piece.name, start, piece.size)
            continue
        count = -(-remaining // copy_part_size)
        bounds = [start + remaining * i // count for i in range(count + 1)]
        parts.extend(CopyPart(Span(piece.name, a, b)) for a, b in itertools.pairwise(bounds))
    flush()
    if len(parts) > max_parts:
        raise TooManyParts(f"{len(parts)} parts needed, S3 allows {max_parts}")
    return parts
