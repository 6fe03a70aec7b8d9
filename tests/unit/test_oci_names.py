"""Repository names and tags, per the OCI distribution-spec (spec.md, "Pulling manifests").

``<name>`` MUST match ``[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*``
and a tag MUST match ``[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}``.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portside.oci.errors import ErrorKind, RegistryError
from portside.oci.names import MAX_NAME_LENGTH, validate_name, validate_tag

# The grammars exactly as the spec prints them, used with re.fullmatch as an independent oracle.
SPEC_NAME = re.compile(r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*")
SPEC_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")

ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
alnum_runs = st.text(ALNUM, min_size=1, max_size=8)
separators = st.one_of(st.sampled_from([".", "_", "__"]), st.integers(1, 4).map(lambda n: "-" * n))
components = st.builds(
    lambda first, rest: first + "".join(sep + run for sep, run in rest),
    alnum_runs,
    st.lists(st.tuples(separators, alnum_runs), max_size=3),
)
valid_names = st.lists(components, min_size=1, max_size=5).map("/".join)
valid_tags = st.from_regex(SPEC_TAG, fullmatch=True)


def assert_name_invalid(name: str) -> RegistryError:
    with pytest.raises(RegistryError) as info:
        validate_name(name)
    assert info.value.kind is ErrorKind.NAME_INVALID
    assert info.value.status == 400
    return info.value


def assert_tag_invalid(tag: str) -> RegistryError:
    with pytest.raises(RegistryError) as info:
        validate_tag(tag)
    assert info.value.kind is ErrorKind.TAG_INVALID
    return info.value


# --- repository names --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "0",
        "a/b/c",
        "library/ubuntu",
        "a__b",
        "a_b",
        "a---b",
        "a-b",
        "a.b",
        "a.b-c_d__e",
        "x1/y2-z3/w4.v5",
        "blobs/manifests/uploads/tags/list/referrers",
    ],
)
def test_name_matching_the_spec_grammar_is_valid(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        ("..", "dot-dot"),
        (".", "single dot"),
        ("a/../b", "dot-dot component"),
        ("a/./b", "dot component"),
        ("A", "upper case"),
        ("Library/ubuntu", "upper case"),
        ("library/Ubuntu", "upper case in a later component"),
        ("-a", "leading dash"),
        ("a-", "trailing dash"),
        ("_a", "leading underscore"),
        ("a_", "trailing underscore"),
        (".a", "leading dot"),
        ("a.", "trailing dot"),
        ("/a", "leading slash"),
        ("a/", "trailing slash"),
        ("a//b", "empty component"),
        ("a___b", "three underscores"),
        ("a..b", "two dots"),
        ("a._b", "mixed separators"),
        ("a-_b", "mixed separators"),
        ("a b", "space"),
        ("a:b", "colon"),
        ("a@b", "at sign"),
        ("a+b", "plus"),
        ("caf\u00e9", "non-ASCII letter"),
        ("a\\b", "backslash"),
    ],
)
def test_name_outside_the_spec_grammar_is_invalid(name: str, why: str) -> None:
    assert_name_invalid(name)


def test_name_with_double_dot_component_is_invalid() -> None:
    assert_name_invalid("library/../etc")


def test_name_of_exactly_255_characters_is_valid() -> None:
    name = "a/" * 127 + "a"
    assert len(name) == MAX_NAME_LENGTH == 255
    assert validate_name(name) == name


def test_name_over_255_characters_is_invalid_and_says_why() -> None:
    name = "a/" * 127 + "ab"
    assert len(name) == 256
    error = assert_name_invalid(name)
    assert "255" in error.message


def test_invalid_name_error_carries_the_name_in_its_detail() -> None:
    assert assert_name_invalid("Nope").detail == {"name": "Nope"}


@pytest.mark.parametrize("name", ["library/ubuntu\n", "a\n"])
def test_name_with_trailing_newline_is_invalid(name: str) -> None:
    assert_name_invalid(name)


@settings(deadline=None)
@given(name=valid_names)
def test_any_name_built_from_the_grammar_is_valid_and_round_trips(name: str) -> None:
    assert SPEC_NAME.fullmatch(name)
    assert validate_name(name) == name


@settings(deadline=None)
@given(name=st.text(alphabet="ab09._-/A\u00e9 :", max_size=40))
def test_name_is_valid_exactly_when_it_fully_matches_the_spec_grammar(name: str) -> None:
    if SPEC_NAME.fullmatch(name):
        assert validate_name(name) == name
    else:
        assert_name_invalid(name)


@settings(deadline=None)
@given(name=valid_names, position=st.integers(min_value=0), letter=st.sampled_from("ABCXYZ"))
def test_any_upper_case_letter_makes_a_name_invalid(name: str, position: int, letter: str) -> None:
    position %= len(name) + 1
    assert_name_invalid(name[:position] + letter + name[position:])


# --- tags --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag", ["latest", "v1.0.0", "1", "A", "_private", "UPPER_lower-1.2", "sha256-abc", "a" * 128, "_" * 128]
)
def test_tag_matching_the_spec_grammar_is_valid(tag: str) -> None:
    assert validate_tag(tag) == tag


@pytest.mark.parametrize(
    ("tag", "why"),
    [
        ("", "empty"),
        (".hidden", "leading dot"),
        ("-dash", "leading dash"),
        ("a" * 129, "129 characters"),
        ("a:b", "colon"),
        ("a/b", "slash"),
        ("a b", "space"),
        ("a+b", "plus"),
        ("a@b", "at sign"),
        ("caf\u00e9", "non-ASCII letter"),
        ("sha256:" + "a" * 64, "a digest is not a tag"),
    ],
)
def test_tag_outside_the_spec_grammar_is_invalid(tag: str, why: str) -> None:
    error = assert_tag_invalid(tag)
    assert error.detail == {"tag": tag}


def test_tag_with_trailing_newline_is_invalid() -> None:
    assert_tag_invalid("latest\n")


@settings(deadline=None)
@given(tag=valid_tags)
def test_any_tag_the_spec_regex_generates_is_valid(tag: str) -> None:
    assert validate_tag(tag) == tag


@settings(deadline=None)
@given(tag=st.text(alphabet="aZ09._-:/ +", max_size=130))
def test_tag_is_valid_exactly_when_it_fully_matches_the_spec_grammar(tag: str) -> None:
    if SPEC_TAG.fullmatch(tag):
        assert validate_tag(tag) == tag
    else:
        assert_tag_invalid(tag)
