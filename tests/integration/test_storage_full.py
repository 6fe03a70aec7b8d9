"""A full disk: the write that finds no room gets a clear 507, nothing stored is lost, and the
registry goes on once there is room again.

Either the server's blob storage or its SQLite database is on a small tmpfs (mounting one needs
root, as CI runs the suite); the other stays on the ordinary disk.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.protocol import random_bytes, sha256, unique_repo
from tests.support.server import ServerProcess
from tests.support.web import ADMIN, ADMIN_ENV, Browser

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs for blob storage needs root (CI runs as root)"),
]

MIB = 1024 * 1024
# Each PATCH stays under the size the server writes from a thread as it arrives (4 MiB), so it is
# written whole after its body is read, and the 507 reaches a client that has sent everything.
CHUNK = 2 * MIB


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` for the duration."""
    path.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False)


@pytest.fixture
def small_disk_data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data directory whose ``storage`` is a 7 MiB tmpfs."""
    with small_disk(tmp_path / "data" / "storage", "7m"):
        yield tmp_path / "data"


@pytest.fixture
def small_database_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs for the SQLite database (an empty one takes about half of it)."""
    with small_disk(tmp_path / "database", "1m") as path:
        yield path


def session_id(location: str) -> str:
    """The upload session's id (its file's name) from its ``Location``."""
    return location.rsplit("/", 1)[1].split("?")[0]


def patch(http: httpx.Client, location: str, offset: int, chunk: bytes) -> httpx.Response:
    headers = {"Content-Range": f"{offset}-{offset + len(chunk) - 1}", "Content-Type": "application/octet-stream"}
    return http.patch(location, content=chunk, headers=headers)


def test_a_full_disk_answers_507_and_the_upload_resumes_once_there_is_room(
    start_server: Callable[..., ServerProcess], small_disk_data_dir: Path
) -> None:
    server = start_server(data_dir=small_disk_data_dir)
    uploads = small_disk_data_dir / "storage" / "uploads"
    repo, filler_bytes, data = unique_repo(), random_bytes(4 * MIB), random_bytes(6 * MIB)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        # Another client's unfinished upload takes 4 MiB of the 7.
        filler = http.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
        filler = patch(http, filler, 0, filler_bytes[:CHUNK]).headers["Location"]
        assert patch(http, filler, CHUNK, filler_bytes[CHUNK:]).status_code == 202

        location = http.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
        first = patch(http, location, 0, data[:CHUNK])
        assert first.status_code == 202, first.text
        full = patch(http, first.headers["Location"], CHUNK, data[CHUNK : 2 * CHUNK])
        assert full.status_code == 507, full.text
        error = full.json()["errors"][0]
        assert error["code"] == "UNKNOWN"
        assert "storage is full" in error["message"]

        # Nothing acknowledged is lost: the session still holds its first chunk, and whatever of
        # the second found room, all of it the client's bytes.
        status = http.get(location)
        assert status.status_code == 204
        stored = int(status.headers["Range"].split("-")[1]) + 1
        assert CHUNK <= stored < 2 * CHUNK
        session_file = uploads / session_id(location)
        assert session_file.read_bytes() == data[:stored]

        # A monolithic push that finds no room leaves no temporary file behind.
        blob = random_bytes(512 * 1024)
        refused = http.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(blob)}, content=blob)
        assert refused.status_code == 507, refused.text
        assert sorted(path.name for path in uploads.iterdir()) == sorted([session_file.name, session_id(filler)])

        # Room again (the other upload is cancelled): the session goes on from where it stopped.
        assert http.delete(filler).status_code == 204
        resumed = patch(http, status.headers["Location"], stored, data[stored:])
        assert resumed.status_code == 202, resumed.text
        done = http.put(resumed.headers["Location"], params={"digest": sha256(data)}, headers={"Content-Length": "0"})
        assert done.status_code == 201, done.text
        assert http.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data
        assert http.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(blob)}, content=blob).status_code == 201


def test_a_full_database_answers_507_keeps_what_it_acknowledged_and_takes_writes_again_once_there_is_room(
    start_server: Callable[..., ServerProcess], small_database_disk: Path
) -> None:
    database_url = f"sqlite+aiosqlite:///{small_database_disk / 'portside.db'}"
    server = start_server(env={"PORTSIDE_DATABASE_URL": database_url, "PORTSIDE_AUTH": "basic", **ADMIN_ENV})
    repo = unique_repo()
    stored: list[bytes] = []
    refused: bytes | None = None
    browser = Browser(server)
    browser.sign_in(*ADMIN)
    browser.get("/organizations")
    with browser, httpx.Client(base_url=server.url, timeout=30, auth=ADMIN) as http:
        # Small blobs are kept in the database, so pushing them fills it.
        for _ in range(100):
            blob = random_bytes(30_000)
            pushed = http.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(blob)}, content=blob)
            if pushed.status_code != 201:
                refused = blob
                break
            stored.append(blob)
        assert refused is not None, "the 1 MiB database never filled"
        assert pushed.status_code == 507, pushed.text
        assert "storage is full" in pushed.json()["errors"][0]["message"]
        assert stored, "the database was full before the first push"

        # Every blob acknowledged before is whole; the refused one is not there.
        for blob in stored:
            assert http.get(f"/v2/{repo}/blobs/{sha256(blob)}").content == blob
        assert http.head(f"/v2/{repo}/blobs/{sha256(refused)}").status_code == 404
        # The management API says the same, once the pages' last free bytes are used up too.
        for number in range(2000):
            organization = http.post("/api/v1/organizations", json={"name": f"full{number}"})
            if organization.status_code != 201:
                break
        assert organization.status_code == 507, organization.text
        assert "storage is full" in organization.json()["errors"][0]["message"]
        # And so does the web UI's form.
        form = browser.post("/organizations", {"name": "fullweb"})
        assert form.status_code == 507, form.text
        assert "storage is full" in form.text
        # Each said so in one line of the log, none with a traceback (an expected condition, not a bug).
        log = server.log()
        assert "storage full: POST /api/v1/organizations" in log
        assert "storage full: POST /organizations" in log
        assert "Application callable raised an exception" not in log

        # Room again: the same push succeeds on the same server.
        subprocess.run(["mount", "-o", "remount,size=4m", str(small_database_disk)], check=True)
        again = http.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(refused)}, content=refused)
        assert again.status_code == 201, again.text
        assert http.get(f"/v2/{repo}/blobs/{sha256(refused)}").content == refused
