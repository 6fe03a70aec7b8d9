"""Where things live in blob storage: the one mapping from identities to storage keys."""

from __future__ import annotations

from portside.oci.digest import Digest


def blob_key(digest: Digest) -> str:
    """The key of a committed blob; fanned out by two hex digits to keep directories small."""
    return f"blobs/{digest.algorithm}/{digest.encoded[:2]}/{digest.encoded}"


def upload_key(upload_id: str) -> str:
    """The key of an upload's bytes while it is in progress."""
    return f"uploads/{upload_id}"


UPLOADS_PREFIX = "uploads/"
BLOBS_PREFIX = "blobs/"
