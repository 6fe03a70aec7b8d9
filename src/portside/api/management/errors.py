"""Errors of the management API: the registry's ``{"errors": [...]}`` body, from the one error table."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.responses import Response

from portside.api.unexpected import known_error_or_raise, last_resort_kind
from portside.oci.errors import ErrorKind, RegistryError

# Framework errors (unknown path, wrong method, ...) by status, as rows of the table.
_KIND_BY_STATUS = {
    400: ErrorKind.REQUEST_INVALID,
    401: ErrorKind.UNAUTHORIZED,
    403: ErrorKind.DENIED,
    404: ErrorKind.NOT_FOUND,
    405: ErrorKind.METHOD_NOT_ALLOWED,
    409: ErrorKind.CONFLICT,
    422: ErrorKind.VALIDATION_FAILED,
}


class ErrorEntry(BaseModel):
    """One error: a code from the table, a message and optional detail."""

    code: str
    message: str
    detail: Any = None


class ErrorBody(BaseModel):
    """What every error answer holds."""

    errors: list[ErrorEntry]


def _documented(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# The error answers every management endpoint documents in the OpenAPI schema.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _documented("An invalid name, password, subject or other value (`NAME_INVALID`, `REQUEST_INVALID`)"),
    401: _documented("Credentials are needed or wrong (`UNAUTHORIZED`, with `WWW-Authenticate: Basic`)"),
    403: _documented("The caller may not do this (`DENIED`)"),
    404: _documented("No such user, organization, team, robot, token or visible repository (`NAME_UNKNOWN`)"),
    409: _documented("The name is taken, or the change would leave no owner or administrator (`CONFLICT`)"),
    422: _documented("The request does not match the schema (`VALIDATION_FAILED`)"),
    429: _documented("Too many failed logins (`TOOMANYREQUESTS`, with `Retry-After`)"),
}


def error_response(error: RegistryError) -> Response:
    """The error's JSON body, status and headers."""
    return Response(error.body(), status_code=error.status, headers=error.headers, media_type="application/json")


async def on_registry_error(request: Request, exc: Exception) -> Response:
    """A service's error."""
    assert isinstance(exc, RegistryError)
    return error_response(exc)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    """The framework's own errors, such as an unknown path."""
    assert isinstance(exc, HTTPException)
    kind = _KIND_BY_STATUS.get(exc.status_code, ErrorKind.INTERNAL)
    message = exc.detail if isinstance(exc.detail, str) and exc.detail else None
    return error_response(RegistryError(kind, message, headers=dict(exc.headers or {})))


def validation_detail(errors: Any) -> list[dict[str, Any]]:
    """Where and why a request failed validation, without echoing the input (it may hold a password)."""
    return [
        {"location": [str(part) for part in error.get("loc", ())], "message": str(error.get("msg", ""))}
        for error in errors
    ]


async def on_validation_error(request: Request, exc: Exception) -> Response:
    """A body, path or query parameter that does not match the schema: ``422``."""
    assert isinstance(exc, RequestValidationError)
    return error_response(RegistryError(ErrorKind.VALIDATION_FAILED, detail=validation_detail(exc.errors())))


async def on_storage_error(request: Request, exc: Exception) -> Response:
    """The :data:`~portside.api.unexpected.STORAGE_ERROR_TYPES`: ``507`` when a disk is full, ``400``
    for a value the database refused (one line in the log, no traceback); anything else goes on to
    :func:`on_unexpected_error`."""
    return error_response(known_error_or_raise(exc, request))


async def on_unexpected_error(request: Request, exc: Exception) -> Response:
    """Anything else: ``507`` when a disk is full, else ``500``, with the same body (the server
    logs the traceback)."""
    return error_response(RegistryError(last_resort_kind(exc)))
