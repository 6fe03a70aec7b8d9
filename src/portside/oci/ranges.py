"""Byte ranges: ``Content-Range`` of chunked uploads and ``Range`` of blob reads."""

from __future__ import annotations

import re
from dataclasses import dataclass

from portside.oci.errors import ErrorKind, RegistryError

# oras sends "a-b" without a unit; RFC 9110 and curl send "bytes a-b/total" or "bytes=a-b".
_CONTENT_RANGE_RE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?\Z", re.IGNORECASE)
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)\Z", re.IGNORECASE)


@dataclass(frozen=True)
class ByteRange:
    """An inclusive byte range ``start``..``end``."""

    start: int
    end: int

    @property
    def length(self) -> int:
        """Number of bytes in the range."""
        return self.end - self.start + 1


def parse_content_range(header: str) -> ByteRange:
    """Parse an upload chunk's ``Content-Range``; raise ``RANGE_INVALID`` if malformed."""
    match = _CONTENT_RANGE_RE.match(header.strip())
    if not match:
        raise RegistryError(ErrorKind.RANGE_INVALID, "malformed Content-Range", {"Content-Range": header})
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        raise RegistryError(ErrorKind.RANGE_INVALID, "Content-Range ends before it starts", {"Content-Range": header})
    return ByteRange(start, end)


def upload_range_header(size: int) -> str:
    """The ``Range`` header of an upload holding ``size`` bytes (Distribution says ``0-0`` when empty)."""
    return f"0-{max(size - 1, 0)}"


def parse_request_range(header: str | None, size: int) -> ByteRange | None:
    """Resolve a read's ``Range`` header against a blob of ``size`` bytes.

    Returns ``None`` to serve the whole blob: no header, a unit other than bytes (which
    RFC 9110 says to ignore), or several ranges (which it allows us to ignore).
    Raises ``RANGE_INVALID`` when the bytes range is malformed or unsatisfiable.
    """
    if not header:
        return None
    text = header.strip()
    if "," in text or not text.lower().startswith("bytes="):
        return None
    match = _RANGE_RE.match(text)
    if not match or (match.group(1) == "" and match.group(2) == ""):
        raise RegistryError(ErrorKind.RANGE_INVALID, "malformed Range", {"Range": header})
    first, last = match.group(1), match.group(2)
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RegistryError(ErrorKind.RANGE_INVALID, "unsatisfiable Range", {"Range": header})
        return ByteRange(max(size - suffix, 0), size - 1)
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or (last != "" and int(last) < start):
        raise RegistryError(ErrorKind.RANGE_INVALID, "unsatisfiable Range", {"Range": header})
    return ByteRange(start, end)
