"""Manifest media types and ``Accept`` negotiation (distribution-spec content-negotiation.md)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portside.oci import media_types as mt
from portside.oci.digest import digest_of

MANIFEST_TYPES = [mt.OCI_MANIFEST, mt.OCI_INDEX, mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST_LIST]


# --- bare_media_type ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "bare"),
    [
        (None, ""),
        ("", ""),
        (mt.OCI_MANIFEST, mt.OCI_MANIFEST),
        ("application/json; charset=utf-8", "application/json"),
        ("  Application/VND.OCI.Image.Manifest.v1+JSON ; q=1", mt.OCI_MANIFEST),
        ("text/plain;", "text/plain"),
    ],
)
def test_bare_media_type_drops_parameters_and_case(content_type: str | None, bare: str) -> None:
    assert mt.bare_media_type(content_type) == bare


# --- parse_accept ------------------------------------------------------------------------


def test_accept_with_no_lines_is_empty() -> None:
    assert mt.parse_accept([]) == []


def test_accept_lines_and_comma_lists_are_merged_in_order() -> None:
    lines = [
        mt.OCI_MANIFEST,
        f"{mt.DOCKER_MANIFEST};q=0.5, {mt.OCI_INDEX}",
        f"{mt.DOCKER_MANIFEST_LIST} ; q=0.9 ,application/json",
    ]
    assert mt.parse_accept(lines) == [
        mt.OCI_MANIFEST,
        mt.DOCKER_MANIFEST,
        mt.OCI_INDEX,
        mt.DOCKER_MANIFEST_LIST,
        "application/json",
    ]


def test_accept_parameters_are_dropped() -> None:
    assert mt.parse_accept([f"{mt.OCI_INDEX};q=0.5;foo=bar"]) == [mt.OCI_INDEX]


def test_accept_types_are_lower_cased() -> None:
    assert mt.parse_accept(["Application/VND.Docker.Distribution.Manifest.V2+JSON"]) == [mt.DOCKER_MANIFEST]


@pytest.mark.parametrize("lines", [[""], [" "], [",,"], [" , ;q=1, "], ["", ""]])
def test_empty_accept_entries_are_skipped(lines: list[str]) -> None:
    assert mt.parse_accept(lines) == []


def test_docker_clients_several_accept_lines_are_all_understood() -> None:
    # What `docker pull` sends: one header line per media type it understands.
    lines = [mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST_LIST, mt.OCI_INDEX, mt.OCI_MANIFEST]
    accepted = mt.parse_accept(lines)
    assert all(mt.accepts(accepted, media_type) for media_type in MANIFEST_TYPES)


# --- accepts -----------------------------------------------------------------------------


@pytest.mark.parametrize("media_type", MANIFEST_TYPES)
def test_empty_accept_accepts_every_type(media_type: str) -> None:
    assert mt.accepts([], media_type)


def test_listed_type_is_accepted() -> None:
    assert mt.accepts([mt.DOCKER_MANIFEST, mt.OCI_MANIFEST], mt.OCI_MANIFEST)


def test_unlisted_type_is_not_accepted() -> None:
    assert not mt.accepts([mt.DOCKER_MANIFEST], mt.OCI_MANIFEST)
    assert not mt.accepts([mt.OCI_MANIFEST], mt.OCI_INDEX)


@pytest.mark.parametrize("media_type", MANIFEST_TYPES)
def test_any_type_wildcard_accepts_everything(media_type: str) -> None:
    assert mt.accepts(mt.parse_accept(["*/*"]), media_type)
    assert mt.accepts(mt.parse_accept([f"{mt.DOCKER_MANIFEST}, */*;q=0.1"]), media_type)


@pytest.mark.parametrize("media_type", MANIFEST_TYPES)
def test_major_type_wildcard_accepts_types_of_that_major_type(media_type: str) -> None:
    assert mt.accepts(mt.parse_accept(["application/*"]), media_type)


@pytest.mark.parametrize("media_type", MANIFEST_TYPES)
def test_other_major_type_wildcard_does_not_accept(media_type: str) -> None:
    assert not mt.accepts(mt.parse_accept(["text/*", "image/*"]), media_type)


def test_wildcard_subtype_does_not_match_prefixes() -> None:
    assert not mt.accepts(["application/vnd.oci.*"], mt.OCI_MANIFEST)


@settings(deadline=None)
@given(
    types=st.lists(st.sampled_from([*MANIFEST_TYPES, "application/json", "text/plain"]), min_size=1, unique=True),
    q=st.sampled_from(["", ";q=0.5", "; q=1.0", ";q=0.1;x=y"]),
    split=st.booleans(),
)
def test_every_type_listed_in_accept_is_accepted_whatever_the_layout(types: list[str], q: str, split: bool) -> None:
    entries = [t + q for t in types]
    lines = entries if split else [", ".join(entries)]
    accepted = mt.parse_accept(lines)
    assert accepted == types
    assert all(mt.accepts(accepted, t) for t in types)


# --- the tables --------------------------------------------------------------------------


def test_supported_manifest_types_are_images_and_indexes() -> None:
    assert {mt.OCI_MANIFEST, mt.DOCKER_MANIFEST} == mt.IMAGE_MANIFEST_TYPES
    assert {mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST} == mt.INDEX_TYPES
    assert mt.SUPPORTED_MANIFEST_TYPES == mt.IMAGE_MANIFEST_TYPES | mt.INDEX_TYPES
    assert not mt.IMAGE_MANIFEST_TYPES & mt.INDEX_TYPES


def test_schema1_types_are_not_supported() -> None:
    assert not mt.SCHEMA1_TYPES & mt.SUPPORTED_MANIFEST_TYPES


def test_empty_json_digest_is_the_digest_of_the_empty_json_blob() -> None:
    assert mt.EMPTY_JSON == b"{}"
    assert str(digest_of(mt.EMPTY_JSON)) == mt.EMPTY_JSON_DIGEST
