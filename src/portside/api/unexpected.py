"""The answer to an exception no handler expected: ``507`` when a disk found no room, ``400`` when
the database refused a value, else ``500``.

A full disk is no bug in Portside and no fault of the client's: the answer says what happened
(``ErrorKind.STORAGE_FULL``), whether blob storage or the database ran out of room, and the log
says it at level ``error`` without a traceback. A value the database refused (PostgreSQL's data
exceptions: a NUL in text, a number out of range, text too long for its column) came from a
request that no check caught: ``REQUEST_INVALID``, and a warning in the log. Anything else is an
internal error, logged with its traceback.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
from collections.abc import Iterator

from sqlalchemy.exc import DataError, DBAPIError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from portside.oci.errors import ErrorKind, RegistryError

log = logging.getLogger("portside.api")

# A write that found no room: the disk is full, or the data directory's quota is used up.
STORAGE_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# PostgreSQL's SQLSTATE disk_full (asyncpg raises DiskFullError with it).
POSTGRES_DISK_FULL = "53100"
# PostgreSQL's SQLSTATE class 22, data exception.
POSTGRES_DATA_EXCEPTION = "22"
# What a full disk raises through to a handler: blob storage's OSError, or the database driver's
# error as SQLAlchemy wraps it. Handlers for these types answer before Starlette's last resort,
# which logs a traceback and re-raises whatever it handled.
STORAGE_ERROR_TYPES: tuple[type[Exception], ...] = (OSError, DBAPIError)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, the driver's error it wraps (SQLAlchemy's ``orig``) and its causes, each once."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for linked in (getattr(current, "orig", None), current.__cause__, current.__context__):
            if isinstance(linked, BaseException):
                pending.append(linked)


def storage_is_full(exc: BaseException) -> bool:
    """Whether ``exc``, or an error it wraps, says a disk found no room: blob storage's
    (``ENOSPC``, ``EDQUOT``), SQLite's (``SQLITE_FULL``) or PostgreSQL's (SQLSTATE 53100)."""
    for cause in _causes(exc):
        if isinstance(cause, OSError) and cause.errno in STORAGE_FULL_ERRNOS:
            return True
        if isinstance(cause, sqlite3.Error) and cause.sqlite_errorcode == sqlite3.SQLITE_FULL:
            return True
        if getattr(cause, "sqlstate", None) == POSTGRES_DISK_FULL:
            return True
    return False


def value_refused(exc: BaseException) -> bool:
    """Whether ``exc``, or an error it wraps, is the database refusing a value it was given
    (the DB-API's ``DataError``, or a PostgreSQL SQLSTATE of class 22)."""
    for cause in _causes(exc):
        if isinstance(cause, DataError):
            return True
        state = getattr(cause, "sqlstate", None)
        if isinstance(state, str) and state.startswith(POSTGRES_DATA_EXCEPTION):
            return True
    return False


def known_error(exc: Exception, method: str, path: str) -> RegistryError | None:
    """``STORAGE_FULL`` for a full disk, ``REQUEST_INVALID`` for a value the database refused
    (each logged in one line, no traceback), else ``None``."""
    if storage_is_full(exc):
        log.error("storage full: %s %s: %s", method, path, exc)
        return RegistryError(ErrorKind.STORAGE_FULL)
    if value_refused(exc):
        log.warning("value refused by the database: %s %s: %s", method, path, exc)
        return RegistryError(
            ErrorKind.REQUEST_INVALID, "a value the database cannot store (a NUL character, or too large)"
        )
    return None


def unexpected_error(exc: Exception, method: str, path: str) -> RegistryError:
    """The error to answer ``method path`` with after ``exc``, which is logged here."""
    known = known_error(exc, method, path)
    if known is not None:
        return known
    log.error("unhandled error in %s %s", method, path, exc_info=exc)
    return RegistryError(ErrorKind.INTERNAL)


def known_error_or_raise(exc: Exception, request: Request) -> RegistryError:
    """:func:`known_error`, or ``exc`` again for the last resort (``500``, with the traceback in
    the log)."""
    known = known_error(exc, request.method, request.url.path)
    if known is None:
        raise exc
    return known


def last_resort_kind(exc: BaseException) -> ErrorKind:
    """What a last-resort handler answers (Starlette logs the traceback): ``STORAGE_FULL`` for a
    full disk, else ``INTERNAL``."""
    return ErrorKind.STORAGE_FULL if storage_is_full(exc) else ErrorKind.INTERNAL


def _plain_text(kind: ErrorKind) -> Response:
    return PlainTextResponse(kind.spec.message, status_code=kind.spec.status)


async def on_page_storage_error(request: Request, exc: Exception) -> Response:
    """The web UI's pages, for the :data:`STORAGE_ERROR_TYPES`: :func:`known_error` in plain text;
    anything else goes on to :func:`on_unexpected_page_error`."""
    return _plain_text(known_error_or_raise(exc, request).kind)


async def on_unexpected_page_error(request: Request, exc: Exception) -> Response:
    """The last resort of routes without their own (the web UI's pages): the table's message as
    plain text (:func:`last_resort_kind`)."""
    return _plain_text(last_resort_kind(exc))
