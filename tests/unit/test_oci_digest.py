"""Digests, as the OCI image-spec defines them (descriptor.md#digests).

``digest ::= algorithm ":" encoded``; the registered algorithms pin the encoded part:
sha256 is exactly 64 and sha512 exactly 128 lower-case hex digits.
"""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portside.oci.digest import Digest, digest_of, looks_like_digest, new_hasher, parse_digest
from portside.oci.errors import ErrorKind, RegistryError

SHA256_OF_EMPTY = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
SHA512_OF_EMPTY = (
    "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
)
HEX64 = "a" * 64
HEX128 = "b" * 128

LOWER_HEX = "0123456789abcdef"
lower_hex_64 = st.text(LOWER_HEX, min_size=64, max_size=64)
lower_hex_128 = st.text(LOWER_HEX, min_size=128, max_size=128)


def assert_digest_invalid(text: str) -> RegistryError:
    with pytest.raises(RegistryError) as info:
        parse_digest(text)
    assert info.value.kind is ErrorKind.DIGEST_INVALID
    return info.value


# --- parse_digest: what is accepted ------------------------------------------------------


def test_sha256_digest_parses_into_algorithm_and_encoded_part() -> None:
    digest = parse_digest(SHA256_OF_EMPTY)
    assert digest.algorithm == "sha256"
    assert digest.encoded == SHA256_OF_EMPTY.removeprefix("sha256:")


def test_sha512_digest_parses_into_algorithm_and_encoded_part() -> None:
    digest = parse_digest(SHA512_OF_EMPTY)
    assert digest.algorithm == "sha512"
    assert len(digest.encoded) == 128


@pytest.mark.parametrize("text", [SHA256_OF_EMPTY, SHA512_OF_EMPTY])
def test_parsed_digest_prints_as_the_original_string(text: str) -> None:
    assert str(parse_digest(text)) == text


def test_equal_digests_compare_and_hash_equal() -> None:
    assert parse_digest(SHA256_OF_EMPTY) == Digest("sha256", SHA256_OF_EMPTY[7:])
    assert len({parse_digest(SHA256_OF_EMPTY), parse_digest(SHA256_OF_EMPTY)}) == 1


# --- parse_digest: what is rejected ------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "sha256:" + "A" * 64,
        "sha256:" + SHA256_OF_EMPTY[7:].upper(),
        "sha256:" + "a" * 63 + "F",
        "sha512:" + "B" * 128,
    ],
)
def test_upper_case_hex_is_invalid(text: str) -> None:
    error = assert_digest_invalid(text)
    assert "lower-case hex" in error.message


@pytest.mark.parametrize(
    "text",
    [
        "sha256:" + "a" * 63,
        "sha256:" + "a" * 65,
        "sha256:" + "a" * 128,
        "sha256:abc",
        "sha512:" + "a" * 64,
        "sha512:" + "a" * 127,
        "sha512:" + "a" * 129,
    ],
)
def test_encoded_part_of_wrong_length_is_invalid(text: str) -> None:
    assert_digest_invalid(text)


@pytest.mark.parametrize("text", ["sha256:" + "g" * 64, "sha256:" + "a" * 63 + "_", "sha256:" + "a" * 63 + "="])
def test_encoded_part_with_non_hex_characters_is_invalid_for_sha256(text: str) -> None:
    assert_digest_invalid(text)


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha384", "sha256+b64u", "multihash+base58"])
def test_unknown_algorithm_is_invalid_and_named_in_the_message(algorithm: str) -> None:
    error = assert_digest_invalid(f"{algorithm}:{HEX64}")
    assert "unsupported" in error.message
    assert algorithm in error.message


@pytest.mark.parametrize("text", ["SHA256:" + HEX64, "Sha256:" + HEX64, "sha 256:" + HEX64, "-sha256:" + HEX64])
def test_algorithm_outside_the_grammar_is_invalid(text: str) -> None:
    assert_digest_invalid(text)


@pytest.mark.parametrize("text", [HEX64, "sha256" + HEX64, "sha256-" + HEX64])
def test_digest_without_colon_is_invalid(text: str) -> None:
    assert_digest_invalid(text)


@pytest.mark.parametrize("text", ["", ":", "sha256:", ":" + HEX64])
def test_empty_digest_or_empty_part_is_invalid(text: str) -> None:
    assert_digest_invalid(text)


@pytest.mark.parametrize(
    "text",
    [
        " " + SHA256_OF_EMPTY,
        SHA256_OF_EMPTY + " ",
        SHA256_OF_EMPTY + "\n",
        SHA256_OF_EMPTY + "\x00",
        "sha256\n:" + HEX64,
        "sha256:" + HEX64[:32] + ":" + HEX64[32:],
    ],
)
def test_digest_with_stray_characters_is_invalid(text: str) -> None:
    assert_digest_invalid(text)


def test_invalid_digest_error_carries_the_digest_in_its_detail() -> None:
    error = assert_digest_invalid("sha256:nope")
    assert error.detail == {"digest": "sha256:nope"}
    assert error.status == 400


@settings(deadline=None)
@given(
    encoded=st.one_of(
        lower_hex_64,
        st.text(LOWER_HEX + "ABCDEFxyz=_-", min_size=60, max_size=68),
        st.text(max_size=80),
    )
)
def test_sha256_accepts_exactly_64_lower_case_hex_digits(encoded: str) -> None:
    text = "sha256:" + encoded
    if re.fullmatch(r"[0-9a-f]{64}", encoded):
        assert parse_digest(text) == Digest("sha256", encoded)
    else:
        assert_digest_invalid(text)


@settings(deadline=None)
@given(encoded=st.one_of(lower_hex_128, st.text(LOWER_HEX + "ABCDEF", min_size=126, max_size=130)))
def test_sha512_accepts_exactly_128_lower_case_hex_digits(encoded: str) -> None:
    text = "sha512:" + encoded
    if re.fullmatch(r"[0-9a-f]{128}", encoded):
        assert parse_digest(text) == Digest("sha512", encoded)
    else:
        assert_digest_invalid(text)


@settings(deadline=None)
@given(text=st.text(max_size=200))
def test_parse_digest_raises_only_digest_invalid_on_any_text(text: str) -> None:
    try:
        digest = parse_digest(text)
    except RegistryError as exc:
        assert exc.kind is ErrorKind.DIGEST_INVALID
    else:
        assert str(digest) == text


# --- digest_of and hashers ---------------------------------------------------------------


def test_digest_of_empty_bytes_is_the_well_known_sha256() -> None:
    assert str(digest_of(b"")) == SHA256_OF_EMPTY


def test_digest_of_empty_bytes_with_sha512_is_the_well_known_sha512() -> None:
    assert str(digest_of(b"", "sha512")) == SHA512_OF_EMPTY


@settings(deadline=None)
@given(data=st.binary(max_size=512), algorithm=st.sampled_from(["sha256", "sha512"]))
def test_digest_of_matches_hashlib_and_parses_back(data: bytes, algorithm: str) -> None:
    digest = digest_of(data, algorithm)
    assert digest.encoded == hashlib.new(algorithm, data).hexdigest()
    assert parse_digest(str(digest)) == digest


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha384", ""])
def test_hashing_with_an_unsupported_algorithm_is_digest_invalid(algorithm: str) -> None:
    with pytest.raises(RegistryError) as info:
        digest_of(b"x", algorithm)
    assert info.value.kind is ErrorKind.DIGEST_INVALID
    with pytest.raises(RegistryError):
        new_hasher(algorithm)


def test_digest_hasher_is_a_fresh_hasher_of_the_same_algorithm() -> None:
    digest = parse_digest(SHA512_OF_EMPTY)
    hasher = digest.hasher()
    assert hasher.name == "sha512"
    assert f"sha512:{hasher.hexdigest()}" == SHA512_OF_EMPTY


# --- looks_like_digest -------------------------------------------------------------------


@pytest.mark.parametrize("reference", [SHA256_OF_EMPTY, SHA512_OF_EMPTY, "sha256:short", "x:y"])
def test_reference_with_a_colon_looks_like_a_digest(reference: str) -> None:
    assert looks_like_digest(reference)


@settings(deadline=None)
@given(tag=st.from_regex(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", fullmatch=True))
def test_no_valid_tag_looks_like_a_digest(tag: str) -> None:
    assert not looks_like_digest(tag)
