"""Blob uploads: sessions, chunks, monolithic pushes, mounts and their errors, against a real server."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.protocol import error_codes, push_blob, random_bytes, sha256, unique_repo
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration

# A first write larger than this is stored in a file; up to it, in the session's row
# (`inline_blob_max_bytes`' default; tests/integration/test_small_blobs.py).
ROW_KEPT_MAX = 64 * 1024


def start_session(client: httpx.Client, repo: str) -> str:
    response = client.post(f"/v2/{repo}/blobs/uploads/")
    assert response.status_code == 202, response.text
    assert response.headers["Docker-Upload-UUID"]
    assert response.headers["Range"] == "0-0"
    return response.headers["Location"]


def test_post_then_put_with_body_pushes_a_blob(client: httpx.Client) -> None:
    repo, data = unique_repo(), random_bytes(10_000)
    location = start_session(client, repo)
    response = client.put(location, params={"digest": sha256(data)}, content=data)
    assert response.status_code == 201
    assert response.headers["Location"] == f"/v2/{repo}/blobs/{sha256(data)}"
    assert response.headers["Docker-Content-Digest"] == sha256(data)
    assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_chunked_upload_with_content_range_then_empty_put(client: httpx.Client) -> None:
    repo, data = unique_repo(), random_bytes(3 * 1024 * 1024 + 5)
    location = start_session(client, repo)
    offset = 0
    for size in (1024 * 1024, 1024 * 1024, 1024 * 1024 + 5):
        chunk = data[offset : offset + size]
        response = client.patch(
            location,
            content=chunk,
            headers={"Content-Range": f"{offset}-{offset + size - 1}", "Content-Type": "application/octet-stream"},
        )
        assert response.status_code == 202, response.text
        offset += size
        assert response.headers["Range"] == f"0-{offset - 1}"
        location = response.headers["Location"]
    status = client.get(location)
    assert status.status_code == 204
    assert status.headers["Range"] == f"0-{len(data) - 1}"
    response = client.put(location, params={"digest": sha256(data)}, headers={"Content-Length": "0"})
    assert response.status_code == 201
    assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_streamed_patch_without_content_range_then_put_with_last_chunk(client: httpx.Client) -> None:
    repo, data = unique_repo(), random_bytes(200_000)
    location = start_session(client, repo)
    response = client.patch(location, content=data[:150_000])
    assert response.status_code == 202
    response = client.put(
        response.headers["Location"],
        params={"digest": sha256(data)},
        content=data[150_000:],
        headers={"Content-Range": "150000-199999"},
    )
    assert response.status_code == 201
    assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_patch_with_transfer_encoding_chunked_works(client: httpx.Client) -> None:
    repo, data = unique_repo(), random_bytes(2 * 1024 * 1024 + 3)

    def body() -> Iterator[bytes]:
        for start in range(0, len(data), 65536):
            yield data[start : start + 65536]

    location = start_session(client, repo)
    response = client.patch(location, content=body())
    assert response.status_code == 202
    assert response.headers["Range"] == f"0-{len(data) - 1}"
    assert client.put(response.headers["Location"], params={"digest": sha256(data)}).status_code == 201
    assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_out_of_order_chunk_is_416_and_changes_nothing(client: httpx.Client) -> None:
    repo, data = unique_repo(), random_bytes(1000)
    location = start_session(client, repo)
    assert client.patch(location, content=data[:500], headers={"Content-Range": "0-499"}).status_code == 202
    response = client.patch(location, content=data[600:], headers={"Content-Range": "600-999"})
    assert response.status_code == 416
    assert response.headers["Range"] == "0-499"
    assert error_codes(response) == ["RANGE_INVALID"]
    assert client.get(location).headers["Range"] == "0-499"
    assert client.patch(location, content=data[500:], headers={"Content-Range": "500-999"}).status_code == 202
    assert client.put(location, params={"digest": sha256(data)}).status_code == 201


def test_content_range_that_disagrees_with_length_is_416(client: httpx.Client) -> None:
    location = start_session(client, unique_repo())
    response = client.patch(location, content=b"x" * 10, headers={"Content-Range": "0-19"})
    assert response.status_code == 416
    assert client.get(location).headers["Range"] == "0-0"


def test_malformed_content_range_is_416(client: httpx.Client) -> None:
    location = start_session(client, unique_repo())
    response = client.patch(location, content=b"abc", headers={"Content-Range": "zero-two"})
    assert response.status_code == 416
    assert error_codes(response) == ["RANGE_INVALID"]


def test_put_with_wrong_digest_is_digest_invalid_and_nothing_is_stored(client: httpx.Client) -> None:
    repo, data = unique_repo(), random_bytes(1000)
    location = start_session(client, repo)
    wrong = sha256(b"something else")
    response = client.put(location, params={"digest": wrong}, content=data)
    assert response.status_code == 400
    assert error_codes(response) == ["DIGEST_INVALID"]
    assert client.head(f"/v2/{repo}/blobs/{wrong}").status_code == 404
    assert client.head(f"/v2/{repo}/blobs/{sha256(data)}").status_code == 404


def test_monolithic_post_with_wrong_digest_stores_nothing(client: httpx.Client) -> None:
    repo, data = unique_repo(), random_bytes(100)
    wrong = sha256(b"other")
    response = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": wrong}, content=data)
    assert response.status_code == 400
    assert error_codes(response) == ["DIGEST_INVALID"]
    assert client.head(f"/v2/{repo}/blobs/{wrong}").status_code == 404


def test_put_without_digest_is_digest_invalid(client: httpx.Client) -> None:
    location = start_session(client, unique_repo())
    response = client.put(location, content=b"abc")
    assert response.status_code == 400
    assert error_codes(response) == ["DIGEST_INVALID"]


def test_sha512_digest_is_accepted(client: httpx.Client) -> None:
    import hashlib

    repo, data = unique_repo(), random_bytes(3000)
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    location = start_session(client, repo)
    assert client.put(location, params={"digest": digest}, content=data).status_code == 201
    response = client.get(f"/v2/{repo}/blobs/{digest}")
    assert response.content == data
    assert response.headers["Docker-Content-Digest"] == digest


@pytest.mark.parametrize("upload_id", ["nonexistent", "0" * 32, "ABCDEF0123456789ABCDEF0123456789"])
def test_unknown_upload_is_blob_upload_unknown(client: httpx.Client, upload_id: str) -> None:
    repo = unique_repo()
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        response = client.request(method, f"/v2/{repo}/blobs/uploads/{upload_id}", params={"digest": sha256(b"")})
        assert response.status_code == 404, (method, response.text)
        assert error_codes(response) == ["BLOB_UPLOAD_UNKNOWN"]


def test_upload_of_another_repository_is_unknown_here(client: httpx.Client) -> None:
    owner, other = unique_repo(), unique_repo()
    location = start_session(client, owner)
    upload_id = location.rsplit("/", 1)[1]
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        response = client.request(
            method, f"/v2/{other}/blobs/uploads/{upload_id}", params={"digest": sha256(b"abc")}, content=b"abc"
        )
        assert response.status_code == 404
        assert error_codes(response) == ["BLOB_UPLOAD_UNKNOWN"]
    assert client.get(location).status_code == 204


def test_cancelled_upload_is_gone(client: httpx.Client) -> None:
    location = start_session(client, unique_repo())
    assert client.delete(location).status_code == 204
    assert error_codes(client.get(location)) == ["BLOB_UPLOAD_UNKNOWN"]


def test_mount_from_a_repository_holding_the_blob_is_201(client: httpx.Client) -> None:
    source, target, data = unique_repo(), unique_repo(), random_bytes(500)
    digest = push_blob(client, source, data)
    response = client.post(f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source})
    assert response.status_code == 201
    assert response.headers["Location"] == f"/v2/{target}/blobs/{digest}"
    assert response.headers["Docker-Content-Digest"] == digest
    assert client.get(f"/v2/{target}/blobs/{digest}").content == data


def test_mount_parameters_in_containerd_order_work(client: httpx.Client) -> None:
    source, target = unique_repo(), unique_repo()
    digest = push_blob(client, source, random_bytes(50))
    response = client.post(f"/v2/{target}/blobs/uploads/?mount={digest}&from={source}")
    assert response.status_code == 201


def test_mount_from_a_repository_without_the_blob_falls_back_to_a_session(client: httpx.Client) -> None:
    source, target = unique_repo(), unique_repo()
    push_blob(client, source, b"something")
    missing = sha256(b"never pushed")
    response = client.post(f"/v2/{target}/blobs/uploads/", params={"mount": missing, "from": source})
    assert response.status_code == 202
    assert response.headers["Location"].startswith(f"/v2/{target}/blobs/uploads/")
    assert client.head(f"/v2/{target}/blobs/{missing}").status_code == 404


def test_mount_without_from_falls_back_to_a_session(client: httpx.Client) -> None:
    source, target = unique_repo(), unique_repo()
    digest = push_blob(client, source, random_bytes(10))
    response = client.post(f"/v2/{target}/blobs/uploads/", params={"mount": digest})
    assert response.status_code == 202
    assert client.head(f"/v2/{target}/blobs/{digest}").status_code == 404


def test_mount_with_malformed_digest_is_digest_invalid(client: httpx.Client) -> None:
    response = client.post(f"/v2/{unique_repo()}/blobs/uploads/", params={"mount": "sha256:zz", "from": "a/b"})
    assert response.status_code == 400
    assert error_codes(response) == ["DIGEST_INVALID"]


def test_upload_session_survives_a_restart(start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    repo, data = unique_repo(), random_bytes(300_000)
    with httpx.Client(base_url=server.url) as http:
        location = start_session(http, repo)
        assert http.patch(location, content=data[:100_000], headers={"Content-Range": "0-99999"}).status_code == 202
    server.stop()
    server.start()
    with httpx.Client(base_url=server.url) as http:
        assert http.get(location).headers["Range"] == "0-99999"
        response = http.patch(location, content=data[100_000:], headers={"Content-Range": "100000-299999"})
        assert response.status_code == 202
        assert http.put(location, params={"digest": sha256(data)}).status_code == 201
        assert http.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_idle_upload_sessions_expire(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(env={"PORTSIDE_UPLOAD_EXPIRY_SECONDS": "60", "PORTSIDE_UPLOAD_PURGE_INTERVAL_SECONDS": "1"})
    with httpx.Client(base_url=server.url) as http:
        location = start_session(http, unique_repo())
        assert http.patch(location, content=random_bytes(ROW_KEPT_MAX + 1)).status_code == 202
        in_row = start_session(http, unique_repo())
        assert http.patch(in_row, content=b"partial").status_code == 202  # kept in the session's row
        upload_id = location.rsplit("/", 1)[1]
        upload_file = server.data_dir / "storage" / "uploads" / upload_id
        assert upload_file.exists()
        # Age the sessions by moving their last activity back in time through the database.
        import sqlite3

        with sqlite3.connect(server.data_dir / "portside.db") as db:
            db.execute("UPDATE uploads SET updated_at = '2000-01-01 00:00:00'")
            assert db.execute("SELECT count(*) FROM uploads WHERE first_chunk = ?", (b"partial",)).fetchone() == (1,)

        def gone() -> bool:
            return http.get(location).status_code == 404 and http.get(in_row).status_code == 404

        deadline = time.monotonic() + 20
        # Expiry closes the sessions, then deletes their bytes: wait for both.
        while time.monotonic() < deadline and (not gone() or upload_file.exists()):
            time.sleep(0.5)
        assert error_codes(http.get(location)) == ["BLOB_UPLOAD_UNKNOWN"]
        assert error_codes(http.get(in_row)) == ["BLOB_UPLOAD_UNKNOWN"]
        assert not upload_file.exists()
        with sqlite3.connect(server.data_dir / "portside.db") as db:  # the row's bytes went with it
            assert db.execute("SELECT count(*) FROM uploads WHERE first_chunk IS NOT NULL").fetchone() == (0,)


def test_a_chunk_renews_the_activity_time_only_when_it_is_stale(start_server: Callable[..., ServerProcess]) -> None:
    # The activity time is rewritten at most once a minute (a hundredth of the expiry, 60 s at most).
    server = start_server(env={"PORTSIDE_UPLOAD_EXPIRY_SECONDS": "6000"})
    import sqlite3

    def activity(upload_id: str) -> str:
        with sqlite3.connect(server.data_dir / "portside.db") as db:
            return str(db.execute("SELECT updated_at FROM uploads WHERE id = ?", (upload_id,)).fetchone()[0])

    with httpx.Client(base_url=server.url) as http:
        location = start_session(http, unique_repo())
        upload_id = location.rsplit("/", 1)[1]
        started = ""
        for offset in range(0, 30, 10):
            response = http.patch(location, content=b"x" * 10, headers={"Content-Range": f"{offset}-{offset + 9}"})
            assert response.status_code == 202
            location = response.headers["Location"]
            started = started or activity(upload_id)  # the first chunk made the session's row
        assert activity(upload_id) == started  # two more chunks within a minute of the first: no write
        with sqlite3.connect(server.data_dir / "portside.db") as db:
            db.execute("UPDATE uploads SET updated_at = '2000-01-01 00:00:00' WHERE id = ?", (upload_id,))
        assert http.patch(location, content=b"y" * 5, headers={"Content-Range": "30-34"}).status_code == 202
        renewed = activity(upload_id)
        assert renewed > started
        assert http.patch(location, content=b"z" * 5, headers={"Content-Range": "35-39"}).status_code == 202
        assert activity(upload_id) == renewed
        assert http.get(location).headers["Range"] == "0-39"


def test_temporary_files_of_interrupted_monolithic_pushes_are_swept(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server(env={"PORTSIDE_UPLOAD_EXPIRY_SECONDS": "60", "PORTSIDE_UPLOAD_PURGE_INTERVAL_SECONDS": "1"})
    uploads = server.data_dir / "storage" / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    # What a crash in the middle of a `POST ?digest=` leaves: a temporary file, created long ago.
    stale = uploads / f"tmp-{int(time.time()) - 3600}-{'a' * 32}"
    fresh = uploads / f"tmp-{int(time.time())}-{'b' * 32}"
    stale.write_bytes(b"half a blob")
    fresh.write_bytes(b"a push in flight")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and stale.exists():
        time.sleep(0.5)
    assert not stale.exists()
    assert fresh.exists()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_bytes_of_sessions_no_longer_open_are_swept(
    database: str, start_server: Callable[..., ServerProcess], request: pytest.FixtureRequest
) -> None:
    env = {"PORTSIDE_UPLOAD_EXPIRY_SECONDS": "60", "PORTSIDE_UPLOAD_PURGE_INTERVAL_SECONDS": "1"}
    if database == "postgresql":
        env["PORTSIDE_DATABASE_URL"] = request.getfixturevalue("postgres").create_database()
    server = start_server(env=env)
    uploads = server.data_dir / "storage" / "uploads"
    # First writes larger than a session's row keeps: these sessions have files.
    first = ROW_KEPT_MAX + 1000
    repo, done, kept = unique_repo(), random_bytes(first + 4000), random_bytes(first + 6000)
    with httpx.Client(base_url=server.url) as http:
        finished = http.patch(start_session(http, repo), content=done[:first]).headers["Location"]
        assert http.put(finished, params={"digest": sha256(done)}, content=done[first:]).status_code == 201
        in_progress = http.patch(start_session(http, repo), content=kept[:first]).headers["Location"]
        # What a PATCH racing its session's PUT leaves behind (the PUT took the session's bytes
        # first), and a session file whose row is gone: neither belongs to an open session.
        late = uploads / finished.rsplit("/", 1)[1].split("?")[0]
        late.write_bytes(b"written after the session was finished")
        rowless = uploads / ("d" * 32)
        rowless.write_bytes(b"left by a crash")
        foreign = uploads / "notes.txt"  # not a session's name: not the registry's to remove
        foreign.write_bytes(b"someone else's")
        open_file = uploads / in_progress.rsplit("/", 1)[1].split("?")[0]
        assert open_file.exists()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (late.exists() or rowless.exists()):
            time.sleep(0.5)
        assert not late.exists() and not rowless.exists()
        assert open_file.exists() and foreign.exists()
        assert http.get(in_progress).headers["Range"] == f"0-{first - 1}"
        assert http.put(in_progress, params={"digest": sha256(kept)}, content=kept[first:]).status_code == 201
        assert http.get(f"/v2/{repo}/blobs/{sha256(kept)}").content == kept
        assert http.get(f"/v2/{repo}/blobs/{sha256(done)}").content == done


def test_a_session_has_no_file_until_its_first_write_and_survives_a_crash(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server()
    repo, data = unique_repo(), random_bytes(1000)
    with httpx.Client(base_url=server.url) as http:
        location = start_session(http, repo)
        # The 202 made the session row durable; its file is made by the first PATCH.
        assert not (server.data_dir / "storage" / "uploads" / location.rsplit("/", 1)[1]).exists()
        server.kill()
        server.start()
        assert http.get(location).headers["Range"] == "0-0"
        assert http.patch(location, content=data, headers={"Content-Range": "0-999"}).status_code == 202
        assert http.put(location, params={"digest": sha256(data)}).status_code == 201
        assert http.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_an_error_on_a_request_with_a_large_body_reaches_the_client(client: httpx.Client) -> None:
    # Through a streaming proxy an answer sent before the body was read would become a 502.
    response = client.patch(f"/v2/{unique_repo()}/blobs/uploads/{'0' * 32}", content=random_bytes(3 * 1024 * 1024))
    assert response.status_code == 404
    assert error_codes(response) == ["BLOB_UPLOAD_UNKNOWN"]
