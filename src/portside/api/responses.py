"""Small helpers that shape registry HTTP responses."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from portside.oci.errors import ErrorKind, RegistryError
from portside.registry.blobs import DownloadCount
from portside.storage.cached_reads import read_whole_file

API_VERSION_HEADER = {"Docker-Distribution-API-Version": "registry/2.0"}


def error_response(error: RegistryError, method: str) -> Response:
    """The spec's JSON error body with the table's status; a HEAD gets the status and headers only."""
    body = error.body()
    headers = {**API_VERSION_HEADER, **error.headers}
    if method == "HEAD":
        headers["Content-Length"] = str(len(body))
        return Response(b"", status_code=error.status, headers=headers, media_type="application/json")
    return Response(body, status_code=error.status, headers=headers, media_type="application/json")


def json_response(document: Any, headers: dict[str, str] | None = None) -> Response:
    """A 200 JSON response."""
    return Response(
        json.dumps(document).encode(),
        headers={**API_VERSION_HEADER, **(headers or {})},
        media_type="application/json",
    )


def empty_response(status: int, headers: dict[str, str]) -> Response:
    """A response with no body and an explicit ``Content-Length: 0``."""
    return Response(b"", status_code=status, headers={**API_VERSION_HEADER, **headers, "Content-Length": "0"})


def head_response(status: int, headers: dict[str, str], length: int, media_type: str) -> Response:
    """A HEAD answer: the GET's headers, including its Content-Length, and no body."""
    response = Response(
        b"", status_code=status, headers={**API_VERSION_HEADER, **headers, "Content-Length": str(length)}
    )
    response.headers["Content-Type"] = media_type
    return response


PATHSEND = "http.response.pathsend"


class BlobFileResponse(Response):
    """A whole blob from a local file, sent by Python or, under concurrency, by the server itself.

    Measured here (docs/performance.md): one download at a time goes faster sent by Python, in
    1 MiB reads answered by the page cache in the event loop's thread (about 3.3 GiB/s), than
    through Granian's ASGI pathsend (1.4-2.0 GiB/s), while many at once go faster through
    pathsend, where Granian reads and writes the file in its own threads and no byte passes
    through Python or holds the GIL. So a download that starts while another is in flight on
    this worker uses pathsend, if the server offers it.
    """

    def __init__(self, path: Path, digest: str, headers: Mapping[str, str], downloads: DownloadCount) -> None:
        super().__init__(None, status_code=200, headers=dict(headers), media_type="application/octet-stream")
        self.path = path
        self.digest = digest
        self.downloads = downloads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the headers, then the file."""
        pathsend = self.downloads.active > 0 and PATHSEND in scope.get("extensions", {})
        self.downloads.active += 1
        try:
            if pathsend:
                await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
                await send({"type": PATHSEND, "path": str(self.path)})
                return
            pieces = read_whole_file(self.path)
            try:
                try:
                    first = await anext(pieces, b"")
                except FileNotFoundError:
                    # Its bytes went from disk (fsck reports such blobs): say so, before any header.
                    missing = RegistryError(
                        ErrorKind.BLOB_UNKNOWN, "the blob's bytes are missing from storage", {"digest": self.digest}
                    )
                    await error_response(missing, scope["method"])(scope, receive, send)
                    return
                await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
                piece: bytes | bytearray = first
                async for following in pieces:
                    await send({"type": "http.response.body", "body": piece, "more_body": True})
                    piece = following
                await send({"type": "http.response.body", "body": piece, "more_body": False})
            finally:
                await pieces.aclose()
        finally:
            self.downloads.active -= 1
