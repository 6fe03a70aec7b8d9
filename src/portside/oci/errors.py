"""The one table of errors a registry client can see.

Every error that leaves Portside is a member of :class:`ErrorKind`: an OCI/Docker error
code, the HTTP status that goes with it and a default message. Services raise
:class:`RegistryError`; the HTTP layer turns it into ``{"errors": [...]}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any


@dataclass(frozen=True)
class ErrorSpec:
    """One row of the error table."""

    code: str
    status: int
    message: str


class ErrorKind(Enum):
    """Every error Portside answers with. The codes are the OCI distribution-spec's."""

    BLOB_UNKNOWN = ErrorSpec("BLOB_UNKNOWN", 404, "blob unknown to registry")
    BLOB_UPLOAD_INVALID = ErrorSpec("BLOB_UPLOAD_INVALID", 400, "blob upload invalid")
    BLOB_UPLOAD_UNKNOWN = ErrorSpec("BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry")
    DIGEST_INVALID = ErrorSpec("DIGEST_INVALID", 400, "provided digest did not match uploaded content")
    MANIFEST_BLOB_UNKNOWN = ErrorSpec(
        "MANIFEST_BLOB_UNKNOWN", 400, "manifest references a manifest or blob unknown to registry"
    )
    MANIFEST_INVALID = ErrorSpec("MANIFEST_INVALID", 400, "manifest invalid")
    MANIFEST_UNSUPPORTED = ErrorSpec("MANIFEST_INVALID", 415, "manifest media type not supported")
    MANIFEST_TOO_LARGE = ErrorSpec("SIZE_INVALID", 413, "manifest exceeds the size limit")
    MANIFEST_UNKNOWN = ErrorSpec("MANIFEST_UNKNOWN", 404, "manifest unknown to registry")
    NAME_INVALID = ErrorSpec("NAME_INVALID", 400, "invalid repository name")
    NAME_UNKNOWN = ErrorSpec("NAME_UNKNOWN", 404, "repository name not known to registry")
    TAG_INVALID = ErrorSpec("TAG_INVALID", 400, "invalid tag")
    SIZE_INVALID = ErrorSpec("SIZE_INVALID", 400, "provided length did not match content length")
    RANGE_INVALID = ErrorSpec("RANGE_INVALID", 416, "invalid content range")
    PAGINATION_INVALID = ErrorSpec("PAGINATION_NUMBER_INVALID", 400, "invalid number of results requested")
    UNAUTHORIZED = ErrorSpec("UNAUTHORIZED", 401, "authentication required")
    DENIED = ErrorSpec("DENIED", 403, "requested access to the resource is denied")
    UNSUPPORTED = ErrorSpec("UNSUPPORTED", 405, "the operation is unsupported")
    TOO_MANY_REQUESTS = ErrorSpec("TOOMANYREQUESTS", 429, "too many requests")
    NOT_FOUND = ErrorSpec("UNSUPPORTED", 404, "no such endpoint")
    METHOD_NOT_ALLOWED = ErrorSpec("UNSUPPORTED", 405, "method not allowed on this endpoint")
    UNAVAILABLE = ErrorSpec("UNAVAILABLE", 503, "service unavailable")
    CLIENT_DISCONNECTED = ErrorSpec("BLOB_UPLOAD_INVALID", 400, "the client closed the connection mid-request")
    INTERNAL = ErrorSpec("UNKNOWN", 500, "internal server error")
    # The spec has no code for it; 507 (Insufficient Storage) tells clients and people what happened.
    STORAGE_FULL = ErrorSpec("UNKNOWN", 507, "the registry's storage is full: an operator must free space")
    # The management API's own rows (never answered under /v2/).
    REQUEST_INVALID = ErrorSpec("REQUEST_INVALID", 400, "the request is invalid")
    CONFLICT = ErrorSpec("CONFLICT", 409, "the name is taken or the resource already exists")
    VALIDATION_FAILED = ErrorSpec("VALIDATION_FAILED", 422, "the request does not match the API's schema")

    @property
    def spec(self) -> ErrorSpec:
        """The row of the table for this kind."""
        value: ErrorSpec = self.value
        return value


class RegistryError(Exception):
    """An error a client sees: a kind from the table plus optional message and detail."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str | None = None,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.kind = kind
        self.message = message or kind.spec.message
        self.detail = detail
        self.headers = headers or {}
        super().__init__(f"{kind.spec.code}: {self.message}")

    @property
    def status(self) -> int:
        """The HTTP status of this error."""
        return self.kind.spec.status

    def body(self) -> bytes:
        """The JSON body the distribution-spec prescribes."""
        entry: dict[str, Any] = {"code": self.kind.spec.code, "message": self.message}
        entry["detail"] = self.detail if self.detail is not None else {}
        return json.dumps({"errors": [entry]}).encode()
