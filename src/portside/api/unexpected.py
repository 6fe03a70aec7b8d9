"""The answer to an exception no handler expected: ``507`` when a disk found no room, else ``500``.

A full disk is no bug in Portside and no fault of the client's: the answer says what happened
(``ErrorKind.STORAGE_FULL``), whether blob storage or the database ran out of room, and the log
says it at level ``error`` without a traceback. Anything else is an internal error, logged with
its traceback.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
from collections.abc import Iterator

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from portside.oci.errors import ErrorKind, RegistryError

log = logging.getLogger("portside.api")

# A write that found no room: the disk is full, or the data directory's quota is used up.
STORAGE_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# PostgreSQL's SQLSTATE disk_full (asyncpg raises DiskFullError with it).
POSTGRES_DISK_FULL = "53100"


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


def unexpected_error(exc: Exception, method: str, path: str) -> RegistryError:
    """The error to answer ``method path`` with after ``exc``, which is logged here."""
    if storage_is_full(exc):
        log.error("storage full: %s %s: %s", method, path, exc)
        return RegistryError(ErrorKind.STORAGE_FULL)
    log.error("unhandled error in %s %s", method, path, exc_info=exc)
    return RegistryError(ErrorKind.INTERNAL)


async def on_unexpected_page_error(request: Request, exc: Exception) -> Response:
    """The last resort of routes without their own (the web UI's pages): the table's message as
    plain text, ``507`` for a full disk, else ``500``. Starlette logs the traceback either way."""
    kind = ErrorKind.STORAGE_FULL if storage_is_full(exc) else ErrorKind.INTERNAL
    return PlainTextResponse(kind.spec.message, status_code=kind.spec.status)
