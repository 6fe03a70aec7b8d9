"""Upload sessions with signed ids: no row until the first write, and closed sessions stay unknown.

The behaviour tests run on every backend of the shared ``registry`` fixture (SQLite, PostgreSQL
and the S3 cluster, whose nodes share the signing key through the database); the ones that look
at rows run a server of their own on SQLite.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from portside.registry.upload_ids import UploadIds
from tests.support.protocol import error_codes, random_bytes, sha256, unique_repo
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration


def _start(client: httpx.Client, repo: str) -> str:
    response = client.post(f"/v2/{repo}/blobs/uploads/")
    assert response.status_code == 202, response.text
    return str(response.headers["Location"])


def _unknown_everywhere(client: httpx.Client, location: str) -> None:
    """Every request on the session's URL answers BLOB_UPLOAD_UNKNOWN."""
    data = b"late"
    for response in (
        client.get(location),
        client.patch(location, content=data),
        client.put(location, params={"digest": sha256(data)}, content=data),
        client.delete(location),
    ):
        assert response.status_code == 404, (response.request.method, response.status_code, response.text)
        assert error_codes(response) == ["BLOB_UPLOAD_UNKNOWN"]


def test_a_session_finished_whole_in_its_put_is_unknown_afterwards(client: httpx.Client) -> None:
    repo, data = unique_repo("sessions"), random_bytes(1000)
    location = _start(client, repo)
    status = client.get(location)
    assert (status.status_code, status.headers["Range"]) == (204, "0-0")
    assert client.put(location, params={"digest": sha256(data)}, content=data).status_code == 201
    _unknown_everywhere(client, location)
    assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_a_session_finished_after_a_patch_is_unknown_afterwards(client: httpx.Client) -> None:
    repo, data = unique_repo("sessions"), random_bytes(200 * 1024)
    location = _start(client, repo)
    patched = client.patch(location, content=data)
    assert (patched.status_code, patched.headers["Range"]) == (202, f"0-{len(data) - 1}")
    location = patched.headers["Location"]
    assert client.put(location, params={"digest": sha256(data)}).status_code == 201
    _unknown_everywhere(client, location)


@pytest.mark.parametrize("written", [False, True], ids=["empty", "after_a_patch"])
def test_a_cancelled_session_is_unknown_afterwards(client: httpx.Client, written: bool) -> None:
    location = _start(client, unique_repo("sessions"))
    if written:
        location = client.patch(location, content=b"some bytes").headers["Location"]
    assert client.delete(location).status_code == 204
    _unknown_everywhere(client, location)


def test_a_session_belongs_to_the_repository_that_started_it(client: httpx.Client) -> None:
    mine, other, data = unique_repo("sessions"), unique_repo("sessions"), random_bytes(100)
    location = _start(client, mine)
    client.post(f"/v2/{other}/blobs/uploads/")  # the other repository exists too
    elsewhere = location.replace(f"/v2/{mine}/", f"/v2/{other}/")
    assert elsewhere != location
    _unknown_everywhere(client, elsewhere)
    assert client.put(location, params={"digest": sha256(data)}, content=data).status_code == 201


def test_made_up_and_altered_ids_are_unknown(client: httpx.Client) -> None:
    repo = unique_repo("sessions")
    location = _start(client, repo)
    upload_id = location.rsplit("/", 1)[1].split("?")[0]
    assert len(upload_id) == 56
    altered = upload_id[:-1] + ("0" if upload_id[-1] != "0" else "1")
    older = upload_id[:32] + "00000001" + upload_id[40:]
    for made_up in (altered, older, "a" * 56, "b" * 32, upload_id[:32]):
        response = client.get(f"/v2/{repo}/blobs/uploads/{made_up}")
        assert response.status_code == 404, made_up
        assert error_codes(response) == ["BLOB_UPLOAD_UNKNOWN"]


def _rows(data_dir: Path) -> dict[str, tuple[str, str | None]]:
    with sqlite3.connect(data_dir / "portside.db") as db:
        return {row[0]: (row[1], row[2]) for row in db.execute("SELECT id, repository, closed_at FROM uploads")}


def _signing_key(data_dir: Path) -> str:
    with sqlite3.connect(data_dir / "portside.db") as db:
        (key,) = db.execute("SELECT value FROM registry_flags WHERE name = 'upload_id_key'").fetchone()
    return str(key)


def test_rows_are_made_by_the_first_write_and_kept_closed(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    repo, data = unique_repo("sessions"), random_bytes(100 * 1024)
    with httpx.Client(base_url=server.url) as http:
        whole = _start(http, repo)
        chunked = _start(http, repo)
        assert _rows(server.data_dir) == {}  # a POST writes nothing
        assert http.put(whole, params={"digest": sha256(b"x")}, content=b"x").status_code == 201
        chunked = http.patch(chunked, content=data).headers["Location"]
        rows = _rows(server.data_dir)
        whole_id, chunked_id = (url.rsplit("/", 1)[1].split("?")[0] for url in (whole, chunked))
        assert rows[chunked_id] == (repo, None)  # open, with its row since the PATCH
        assert rows[whole_id][0] == repo and rows[whole_id][1] is not None  # closed by its PUT
        assert http.put(chunked, params={"digest": sha256(data)}).status_code == 201
        assert _rows(server.data_dir)[chunked_id][1] is not None


def test_an_id_older_than_the_expiry_is_unknown_and_closed_rows_expire(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server(env={"PORTSIDE_UPLOAD_EXPIRY_SECONDS": "60", "PORTSIDE_UPLOAD_PURGE_INTERVAL_SECONDS": "1"})
    repo, data = unique_repo("sessions"), random_bytes(10)
    with httpx.Client(base_url=server.url) as http:
        location = _start(http, repo)  # makes the key
        ids = UploadIds(_signing_key(server.data_dir))
        stale, fresh = ids.new(repo, now=time.time() - 120), ids.new(repo)
        assert http.get(f"/v2/{repo}/blobs/uploads/{stale}").status_code == 404
        assert http.get(f"/v2/{repo}/blobs/uploads/{fresh}").status_code == 204  # the key is the server's
        assert http.put(location, params={"digest": sha256(data)}, content=data).status_code == 201
        closed_id = location.rsplit("/", 1)[1].split("?")[0]
        with sqlite3.connect(server.data_dir / "portside.db") as db:
            db.execute("UPDATE uploads SET closed_at = '2000-01-01 00:00:00' WHERE id = ?", (closed_id,))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and closed_id in _rows(server.data_dir):
            time.sleep(0.5)
        assert closed_id not in _rows(server.data_dir)


def test_a_session_with_a_row_and_an_unsigned_id_still_works(start_server: Callable[..., ServerProcess]) -> None:
    # Sessions opened before ids were signed have 32-digit ids and a row from their POST.
    server = start_server()
    repo, data = unique_repo("sessions"), random_bytes(3000)
    legacy = "c" * 32
    with httpx.Client(base_url=server.url) as http:
        _start(http, repo)
        with sqlite3.connect(server.data_dir / "portside.db") as db:
            db.execute(
                "INSERT INTO uploads (id, repository, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (legacy, repo, "2026-11-28 00:00:00", "2099-01-01 00:00:00"),
            )
        location = f"/v2/{repo}/blobs/uploads/{legacy}"
        assert http.patch(location, content=data[:1000]).status_code == 202
        assert http.put(location, params={"digest": sha256(data)}, content=data[1000:]).status_code == 201
        _unknown_everywhere(http, location)
        assert http.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data
