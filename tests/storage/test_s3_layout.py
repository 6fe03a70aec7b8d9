"""The S3 driver's key layout and its plan for assembling segments into one object (pure functions)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.storage.s3_layout import (
    MAX_PART,
    CopyPart,
    Piece,
    TooManyParts,
    UploadPart,
    check_key,
    logical_key,
    marker_name,
    plan_parts,
    resolve,
    segment_name,
    upload_part_size,
)

KEY = "uploads/abc"


def segments(*sizes: int) -> list[Piece]:
    pieces, offset = [], 0
    for size in sizes:
        pieces.append(Piece(segment_name(KEY, offset), offset, size))
        offset += size
    return pieces


def covered(parts: list[CopyPart | UploadPart]) -> list[tuple[str, int, int]]:
    """The spans the parts read, merged where one continues the last."""
    spans: list[tuple[str, int, int]] = []
    for part in parts:
        for span in [part.source] if isinstance(part, CopyPart) else list(part.sources):
            if spans and spans[-1][0] == span.name and spans[-1][2] == span.start:
                spans[-1] = (span.name, spans[-1][1], span.end)
            else:
                spans.append((span.name, span.start, span.end))
    return spans


def size_of(part: CopyPart | UploadPart) -> int:
    return part.source.size if isinstance(part, CopyPart) else part.size


def test_segment_names_sort_by_offset_and_map_back_to_their_key() -> None:
    names = [segment_name(KEY, offset) for offset in (0, 9, 10, 5 * 1024**3)]
    assert names == sorted(names)
    assert {logical_key(name) for name in [*names, marker_name(KEY), KEY]} == {KEY}


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a~b"])
def test_keys_that_would_be_ambiguous_are_refused(key: str) -> None:
    with pytest.raises(ValueError):
        check_key(key)


def test_resolve_reads_a_contiguous_chain_and_ignores_other_keys_gaps_and_orphans() -> None:
    listing = [
        (KEY, 0),  # not here in practice; a committed object wins
        (marker_name(KEY), 0),
        (segment_name(KEY, 0), 4),
        (segment_name(KEY, 4), 6),
        (segment_name(KEY, 20), 1),  # past a gap
        ("uploads/abcd~00000000000000000000", 99),  # another key
    ]
    stored = resolve(KEY, listing[1:])
    assert stored is not None
    assert stored.segmented
    assert stored.size == 10
    assert [piece.start for piece in stored.pieces] == [0, 4]
    assert segment_name(KEY, 20) in stored.names
    with_plain = resolve(KEY, listing)
    assert with_plain is not None and with_plain.size == 0 and with_plain.pieces[0].name == KEY
    assert resolve(KEY, [(segment_name(KEY, 7), 3)]) is None
    assert resolve(KEY, [("uploads/abcd", 3)]) is None
    empty = resolve(KEY, [(marker_name(KEY), 0)])
    assert empty is not None and empty.size == 0 and empty.pieces == ()


def test_large_segments_are_copied_server_side_and_small_runs_uploaded() -> None:
    parts = plan_parts(segments(3, 1, 6, 2), min_part=5, part_size=8, copy_part_size=100)
    # 3 + 1 is below the minimum: topped up with 1 byte of the 6, whose other 5 are copied.
    assert [type(part) for part in parts] == [UploadPart, CopyPart, UploadPart]
    assert [size_of(part) for part in parts] == [5, 5, 2]


def test_one_small_upload_is_a_single_uploaded_part() -> None:
    parts = plan_parts(segments(1, 2, 3), min_part=5, part_size=8, copy_part_size=100)
    assert [size_of(part) for part in parts] == [6]


def test_huge_segments_are_copied_in_parts_under_the_copy_limit() -> None:
    parts = plan_parts(segments(12 * 1024**3 + 1), copy_part_size=MAX_PART)
    assert len(parts) == 3
    assert all(isinstance(part, CopyPart) and part.source.size <= MAX_PART for part in parts)


def test_more_parts_than_s3_allows_is_refused() -> None:
    with pytest.raises(TooManyParts):
        plan_parts(segments(*[6] * 11), min_part=5, part_size=8, copy_part_size=100, max_parts=10)


def test_streamed_part_sizes_grow_every_thousand_parts() -> None:
    assert upload_part_size(1) == upload_part_size(1000) < upload_part_size(1001)
    assert sum(upload_part_size(n) for n in range(1, 10_001)) > 400 * 1024**3


@given(st.lists(st.integers(min_value=1, max_value=40), max_size=30))
def test_a_plan_covers_every_byte_once_in_order_with_parts_s3_accepts(sizes: list[int]) -> None:
    pieces = segments(*sizes)
    parts = plan_parts(pieces, min_part=5, part_size=8, copy_part_size=12)
    assert covered(parts) == [(piece.name, 0, piece.size) for piece in pieces]
    assert all(size_of(part) >= 5 for part in parts[:-1])
    assert all(size_of(part) <= (8 if isinstance(part, UploadPart) else 12) for part in parts)
    assert sum(size_of(part) for part in parts) == sum(sizes)
