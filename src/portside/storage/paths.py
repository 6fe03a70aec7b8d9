"""Where things live in blob storage: the one mapping from identities to storage keys."""

from __future__ import annotations

from portside.digits import parse_digits
from portside.oci.digest import Digest


def blob_key(digest: Digest) -> str:
    """The key of a committed blob; fanned out by two hex digits to keep directories small."""
    return f"blobs/{digest.algorithm}/{digest.encoded[:2]}/{digest.encoded}"


def upload_key(upload_id: str) -> str:
    """The key of an upload's bytes while it is in progress."""
    return f"uploads/{upload_id}"


def temporary_upload_key(created: float, nonce: str) -> str:
    """The key of a one-request upload (``POST ?digest=``), which has no session row.

    Its creation time is in its name, so leftovers of a crash can be found and removed.
    """
    return f"{UPLOADS_PREFIX}{TEMPORARY_MARK}{int(created)}-{nonce}"


def temporary_upload_created(key: str) -> float | None:
    """When a temporary upload was created, from its key; ``None`` for other keys."""
    name = key.removeprefix(UPLOADS_PREFIX)
    if not name.startswith(TEMPORARY_MARK):
        return None
    stamp = name[len(TEMPORARY_MARK) :].split("-", 1)[0]
    seconds = parse_digits(stamp)
    return None if seconds is None else float(seconds)


UPLOADS_PREFIX = "uploads/"
TEMPORARY_MARK = "tmp-"
BLOBS_PREFIX = "blobs/"
