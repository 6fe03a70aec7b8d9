"""Content digests: parsing, validation and hashing (OCI image-spec, descriptor.md)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from portside.oci.errors import ErrorKind, RegistryError

_ALGORITHM_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*$")
_ENCODED_RE = re.compile(r"^[a-zA-Z0-9=_-]+$")

# Registered algorithms and the exact shape of their encoded part.
_HEX_LENGTHS = {"sha256": 64, "sha512": 128}


@dataclass(frozen=True, order=True)
class Digest:
    """A validated ``algorithm:encoded`` digest of a supported algorithm."""

    algorithm: str
    encoded: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"

    def hasher(self) -> hashlib._Hash:
        """A fresh hash object of this digest's algorithm."""
        return new_hasher(self.algorithm)


def new_hasher(algorithm: str = "sha256") -> hashlib._Hash:
    """A fresh hash object for a supported algorithm."""
    if algorithm not in _HEX_LENGTHS:
        raise RegistryError(ErrorKind.DIGEST_INVALID, f"unsupported digest algorithm {algorithm!r}")
    return hashlib.new(algorithm)


def parse_digest(text: str) -> Digest:
    """Parse and validate a digest string; raise ``DIGEST_INVALID`` if it is malformed or unsupported."""
    algorithm, sep, encoded = text.partition(":")
    if not sep or not _ALGORITHM_RE.match(algorithm) or not _ENCODED_RE.match(encoded):
        raise RegistryError(ErrorKind.DIGEST_INVALID, "invalid digest format", {"digest": text})
    expected = _HEX_LENGTHS.get(algorithm)
    if expected is None:
        raise RegistryError(ErrorKind.DIGEST_INVALID, f"unsupported digest algorithm {algorithm!r}", {"digest": text})
    if len(encoded) != expected or not all(c in "0123456789abcdef" for c in encoded):
        raise RegistryError(
            ErrorKind.DIGEST_INVALID,
            f"invalid {algorithm} digest: expected {expected} lower-case hex digits",
            {"digest": text},
        )
    return Digest(algorithm, encoded)


def looks_like_digest(reference: str) -> bool:
    """True if a manifest reference is a digest rather than a tag (tags cannot contain ':')."""
    return ":" in reference


def digest_of(data: bytes, algorithm: str = "sha256") -> Digest:
    """The digest of some bytes."""
    hasher = new_hasher(algorithm)
    hasher.update(data)
    return Digest(algorithm, hasher.hexdigest())
