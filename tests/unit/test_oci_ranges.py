"""Byte ranges: ``Content-Range`` of upload chunks and ``Range`` of blob reads.

Chunk ranges are inclusive on both ends (distribution-spec, "Pushing a blob in chunks");
read ranges follow RFC 9110 section 14, which the distribution-spec points at for blob GETs.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portside.oci.errors import ErrorKind, RegistryError
from portside.oci.ranges import ByteRange, parse_content_range, parse_request_range, upload_range_header

offsets = st.integers(min_value=0, max_value=10**12)
sizes = st.integers(min_value=0, max_value=2_000)


def assert_range_invalid(call: object, *args: object) -> RegistryError:
    assert callable(call)
    with pytest.raises(RegistryError) as info:
        call(*args)
    assert info.value.kind is ErrorKind.RANGE_INVALID
    assert info.value.status == 416
    return info.value


def test_byte_range_length_counts_both_ends() -> None:
    assert ByteRange(0, 9).length == 10
    assert ByteRange(5, 5).length == 1


# --- Content-Range of upload chunks ------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("0-9", ByteRange(0, 9)),
        ("bytes 0-9/10", ByteRange(0, 9)),
        ("bytes=0-9", ByteRange(0, 9)),
        ("bytes 0-9/*", ByteRange(0, 9)),
        ("bytes 10-19", ByteRange(10, 19)),
        ("  100-199  ", ByteRange(100, 199)),
        ("5-5", ByteRange(5, 5)),
        ("0-0", ByteRange(0, 0)),
    ],
)
def test_content_range_in_every_form_clients_send_is_parsed(header: str, expected: ByteRange) -> None:
    assert parse_content_range(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        "",
        "0",
        "-9",
        "0-",
        "a-b",
        "0 - 9",
        "0-9,10-19",
        "bytes 0-9/",
        "bytes 0-9/ten",
        "bytes: 0-9",
        "bytes */10",
        "items 0-9",
        "-1-5",
        "0x0-0x9",
    ],
)
def test_malformed_content_range_is_range_invalid(header: str) -> None:
    error = assert_range_invalid(parse_content_range, header)
    assert "malformed" in error.message
    assert error.detail == {"Content-Range": header}


@pytest.mark.parametrize("header", ["9-0", "bytes 10-9/20", "bytes=1-0"])
def test_content_range_ending_before_it_starts_is_range_invalid(header: str) -> None:
    error = assert_range_invalid(parse_content_range, header)
    assert "ends before it starts" in error.message


@settings(deadline=None)
@given(start=offsets, extra=offsets, form=st.sampled_from(["{a}-{b}", "bytes {a}-{b}/*", "bytes={a}-{b}"]))
def test_any_ordered_content_range_parses_to_its_bounds(start: int, extra: int, form: str) -> None:
    end = start + extra
    parsed = parse_content_range(form.format(a=start, b=end))
    assert parsed == ByteRange(start, end)
    assert parsed.length == extra + 1


# --- the Range header of an upload ------------------------------------------------------


@pytest.mark.parametrize(("size", "header"), [(0, "0-0"), (1, "0-0"), (10, "0-9"), (1 << 40, f"0-{(1 << 40) - 1}")])
def test_upload_range_header_names_the_last_byte_held(size: int, header: str) -> None:
    assert upload_range_header(size) == header


@settings(deadline=None)
@given(size=st.integers(min_value=1, max_value=10**12))
def test_upload_range_header_parses_back_as_a_content_range_of_the_whole_upload(size: int) -> None:
    assert parse_content_range(upload_range_header(size)) == ByteRange(0, size - 1)


# --- Range of blob reads -----------------------------------------------------------------


@pytest.mark.parametrize("header", [None, ""])
def test_no_range_header_serves_the_whole_blob(header: str | None) -> None:
    assert parse_request_range(header, 10) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-", ByteRange(0, 9)),
        ("bytes=0-4", ByteRange(0, 4)),
        ("bytes=5-", ByteRange(5, 9)),
        ("bytes=9-9", ByteRange(9, 9)),
        ("bytes=9-", ByteRange(9, 9)),
        ("bytes=-5", ByteRange(5, 9)),
        ("bytes=-1", ByteRange(9, 9)),
        ("bytes=-10", ByteRange(0, 9)),
        (" bytes=2-3 ", ByteRange(2, 3)),
    ],
)
def test_satisfiable_range_resolves_against_the_blob_size(header: str, expected: ByteRange) -> None:
    assert parse_request_range(header, 10) == expected


def test_range_ending_beyond_the_blob_is_cut_at_its_last_byte() -> None:
    assert parse_request_range("bytes=3-100", 10) == ByteRange(3, 9)


def test_suffix_range_larger_than_the_blob_serves_all_of_it() -> None:
    assert parse_request_range("bytes=-500", 10) == ByteRange(0, 9)


def test_range_ending_before_it_starts_is_range_invalid() -> None:
    assert_range_invalid(parse_request_range, "bytes=5-2", 10)


@pytest.mark.parametrize("header", ["bytes=10-", "bytes=10-20", "bytes=11-11", "bytes=1000-"])
def test_range_starting_at_or_beyond_the_end_is_range_invalid(header: str) -> None:
    error = assert_range_invalid(parse_request_range, header, 10)
    assert error.message == "unsatisfiable Range"


def test_empty_suffix_range_is_range_invalid() -> None:
    assert_range_invalid(parse_request_range, "bytes=-0", 10)


@pytest.mark.parametrize("header", ["bytes=0-1,4-5", "bytes=0-1, 4-5", "bytes=-1,0-0", "bytes=5-2,0-1"])
def test_multi_range_is_ignored_and_the_whole_blob_served(header: str) -> None:
    assert parse_request_range(header, 10) is None


@pytest.mark.parametrize("header", ["bytes=-", "bytes=", "bytes=a-b", "bytes=0-5-6", "bytes=0x1-", "bytes=1.5-"])
def test_malformed_byte_range_is_range_invalid(header: str) -> None:
    error = assert_range_invalid(parse_request_range, header, 10)
    assert error.detail == {"Range": header}


@pytest.mark.parametrize("header", ["bytes=0-", "bytes=0-0", "bytes=-1", "bytes=-100"])
def test_every_single_range_of_an_empty_blob_is_range_invalid(header: str) -> None:
    # RFC 9110 calls a non-zero suffix of an empty representation "satisfiable" but gives it no
    # sensible bytes to send; Portside answers 416, as it does for every range of an empty blob.
    assert_range_invalid(parse_request_range, header, 0)


def test_empty_blob_without_range_header_is_served_whole() -> None:
    assert parse_request_range(None, 0) is None


@pytest.mark.parametrize("header", ["Bytes=0-4", "BYTES=0-4"])
def test_range_unit_is_case_insensitive(header: str) -> None:
    assert parse_request_range(header, 10) == ByteRange(0, 4)


@pytest.mark.parametrize("header", ["items=0-4", "none=0-4"])
def test_range_in_an_unknown_unit_is_ignored(header: str) -> None:
    assert parse_request_range(header, 10) is None


int_ranges = st.builds(
    lambda first, last: f"bytes={first}-{'' if last is None else last}",
    st.integers(0, 3_000),
    st.none() | st.integers(0, 3_000),
)
suffix_ranges = st.integers(0, 3_000).map(lambda n: f"bytes=-{n}")


@settings(deadline=None)
@given(size=sizes, header=st.one_of(int_ranges, suffix_ranges, st.text(max_size=30)))
def test_range_resolution_never_leaves_the_blob(size: int, header: str) -> None:
    try:
        resolved = parse_request_range(header, size)
    except RegistryError as exc:
        assert exc.kind is ErrorKind.RANGE_INVALID
        return
    if resolved is not None:
        assert 0 <= resolved.start <= resolved.end < size
        assert 1 <= resolved.length <= size


@settings(deadline=None)
@given(size=st.integers(1, 2_000), data=st.data())
def test_int_range_resolves_to_its_first_byte_and_the_earlier_of_its_last_and_the_blob_end(
    size: int, data: st.DataObject
) -> None:
    first = data.draw(st.integers(0, size - 1), label="first")
    last = data.draw(st.integers(first, 3_000), label="last")
    assert parse_request_range(f"bytes={first}-{last}", size) == ByteRange(first, min(last, size - 1))


@settings(deadline=None)
@given(size=st.integers(1, 2_000), suffix=st.integers(1, 3_000))
def test_suffix_range_resolves_to_the_last_bytes_of_the_blob(size: int, suffix: int) -> None:
    resolved = parse_request_range(f"bytes=-{suffix}", size)
    assert resolved == ByteRange(max(size - suffix, 0), size - 1)
    assert resolved.length == min(suffix, size)
