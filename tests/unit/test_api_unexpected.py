"""Which unexpected exceptions mean a full disk (507), a refused value (400) or an internal error (500)."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import asyncpg.exceptions
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from starlette.requests import Request

from portside.api.unexpected import known_error_or_raise, storage_is_full, unexpected_error, value_refused
from portside.oci.errors import ErrorKind


def _sqlite_full_error(tmp_path: Path) -> OperationalError:
    """A real "database or disk is full", as SQLAlchemy raises it, from a database capped at 8 pages."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'capped.db'}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA max_page_count = 8")
            conn.exec_driver_sql("CREATE TABLE t (data BLOB)")
            with pytest.raises(OperationalError) as raised:
                for _ in range(64):
                    conn.exec_driver_sql("INSERT INTO t VALUES (randomblob(4096))")
        return raised.value
    finally:
        engine.dispose()


def _raised_from(cause: BaseException) -> RuntimeError:
    try:
        raise RuntimeError("the commit failed") from cause
    except RuntimeError as wrapper:
        return wrapper


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_write_with_no_room_on_the_disk_is_storage_full(code: int) -> None:
    assert storage_is_full(OSError(code, "no room"))
    assert storage_is_full(_raised_from(OSError(code, "no room")))


def test_sqlite_full_through_sqlalchemy_is_storage_full(tmp_path: Path) -> None:
    error = _sqlite_full_error(tmp_path)
    assert "full" in str(error)
    assert storage_is_full(error)


def test_postgres_disk_full_is_storage_full_wherever_it_sits_in_the_chain() -> None:
    assert storage_is_full(asyncpg.exceptions.DiskFullError("could not extend file"))
    assert storage_is_full(_raised_from(asyncpg.exceptions.DiskFullError("could not extend file")))


def test_other_errors_are_not_storage_full() -> None:
    assert not storage_is_full(OSError(errno.EIO, "input/output error"))
    assert not storage_is_full(asyncpg.exceptions.UniqueViolationError("duplicate key"))
    assert not storage_is_full(_raised_from(ValueError("a bug")))


def test_a_cycle_of_causes_ends() -> None:
    first, second = RuntimeError("first"), RuntimeError("second")
    first.__context__, second.__context__ = second, first
    assert not storage_is_full(first)


def test_the_answer_and_the_log_say_what_happened(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="portside.api"):
        full = unexpected_error(OSError(errno.ENOSPC, "No space left on device"), "PATCH", "/v2/a/blobs/uploads/x")
        internal = unexpected_error(ValueError("a bug"), "GET", "/v2/a/tags/list")
    assert full.kind is ErrorKind.STORAGE_FULL and full.status == 507
    assert internal.kind is ErrorKind.INTERNAL and internal.status == 500
    first, second = caplog.records
    assert first.getMessage().startswith("storage full: PATCH /v2/a/blobs/uploads/x") and first.exc_info is None
    assert second.getMessage() == "unhandled error in GET /v2/a/tags/list" and second.exc_info is not None


def test_a_page_or_management_handler_answers_a_full_disk_and_passes_anything_else_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    request = Request({"type": "http", "method": "POST", "path": "/organizations", "headers": [], "query_string": b""})
    with caplog.at_level(logging.ERROR, logger="portside.api"):
        full = known_error_or_raise(_sqlite_full_error(tmp_path), request)
    assert full.kind is ErrorKind.STORAGE_FULL
    assert caplog.records[-1].getMessage().startswith("storage full: POST /organizations")
    # Anything else is raised again, unchanged, for the last resort (500, with its traceback).
    other = OSError(errno.EIO, "input/output error")
    with pytest.raises(OSError) as raised:
        known_error_or_raise(other, request)
    assert raised.value is other


def _postgres_refusal() -> sa.exc.DataError:
    """A DataError as SQLAlchemy wraps PostgreSQL's refusal of a NUL in text (SQLSTATE 22021)."""
    return sa.exc.DataError("INSERT ...", {}, asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence"))


def test_a_value_the_database_refuses_is_the_clients_error(caplog: pytest.LogCaptureFixture) -> None:
    assert asyncpg.exceptions.CharacterNotInRepertoireError.sqlstate == "22021"
    assert value_refused(_postgres_refusal())
    assert value_refused(_raised_from(asyncpg.exceptions.NumericValueOutOfRangeError("out of range")))
    assert not value_refused(asyncpg.exceptions.UniqueViolationError("duplicate key"))
    assert not value_refused(ValueError("a bug"))
    with caplog.at_level(logging.WARNING, logger="portside.api"):
        refused = unexpected_error(_postgres_refusal(), "POST", "/api/v1/robots/acme")
    assert refused.kind is ErrorKind.REQUEST_INVALID and refused.status == 400
    assert caplog.records[-1].getMessage().startswith("value refused by the database: POST /api/v1/robots/acme")
    assert caplog.records[-1].exc_info is None
    request = Request({"type": "http", "method": "POST", "path": "/robots/acme", "headers": [], "query_string": b""})
    assert known_error_or_raise(_postgres_refusal(), request).kind is ErrorKind.REQUEST_INVALID
