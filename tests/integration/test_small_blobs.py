"""Small blobs pushed whole in one request are kept in the database, and read back like any other.

Runs on every backend of the shared ``registry`` fixture (SQLite and PostgreSQL, and the cluster
on S3); where blobs are local files the tests also check that no file was made.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import httpx
import pytest

from tests.support.protocol import error_codes, push_blob, random_bytes, sha256, unique_repo
from tests.support.server import RegistryEndpoint

pytestmark = pytest.mark.integration

INLINE_MAX = 64 * 1024  # the default of `inline_blob_max_bytes`


def _files_named(registry: RegistryEndpoint, digest: str) -> list[str]:
    """Files in the registry's blob storage whose name is the digest's hex (empty on S3)."""
    if registry.data_dir is None:
        return []
    root = registry.data_dir / "storage" / "blobs"
    return [str(path) for path in root.rglob(digest.split(":", 1)[1])]


def _no_upload_files(registry: RegistryEndpoint, session_ids: list[str]) -> bool:
    if registry.data_dir is None:
        return True
    uploads = registry.data_dir / "storage" / "uploads"
    return not any((uploads / session).exists() for session in session_ids)


def test_a_small_blob_pushed_whole_reads_back_whole_in_ranges_and_by_head(
    client: httpx.Client, registry: RegistryEndpoint
) -> None:
    repo, data = unique_repo("small"), random_bytes(1000)
    digest = push_blob(client, repo, data)  # POST ?digest=
    assert _files_named(registry, digest) == []
    whole = client.get(f"/v2/{repo}/blobs/{digest}")
    assert whole.status_code == 200
    assert whole.content == data
    assert whole.headers["Docker-Content-Digest"] == digest
    assert whole.headers["Content-Length"] == "1000"
    ranged = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206
    assert ranged.content == data[10:20]
    assert ranged.headers["Content-Range"] == "bytes 10-19/1000"
    head = client.head(f"/v2/{repo}/blobs/{digest}")
    assert (head.status_code, head.headers["Content-Length"]) == (200, "1000")
    outside = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=1000-1001"})
    assert outside.status_code == 416


def test_post_then_put_with_the_whole_body_keeps_no_file(client: httpx.Client, registry: RegistryEndpoint) -> None:
    repo, data = unique_repo("small"), random_bytes(INLINE_MAX)
    started = client.post(f"/v2/{repo}/blobs/uploads/")
    assert started.status_code == 202
    session = started.headers["Docker-Upload-UUID"]
    put = client.put(started.headers["Location"], params={"digest": sha256(data)}, content=data)
    assert put.status_code == 201, put.text
    assert _files_named(registry, sha256(data)) == []
    assert _no_upload_files(registry, [session])
    assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_the_empty_blob_closes_a_session_without_a_body(client: httpx.Client) -> None:
    repo, empty = unique_repo("small"), hashlib.sha256(b"").hexdigest()
    started = client.post(f"/v2/{repo}/blobs/uploads/")
    put = client.put(started.headers["Location"], params={"digest": f"sha256:{empty}"})
    assert put.status_code == 201, put.text
    pulled = client.get(f"/v2/{repo}/blobs/sha256:{empty}")
    assert (pulled.status_code, pulled.content) == (200, b"")


def test_blobs_over_the_limit_or_sent_in_chunks_are_files(client: httpx.Client, registry: RegistryEndpoint) -> None:
    if registry.data_dir is None:
        pytest.skip(reason="blobs are in S3 here; the file checks need the filesystem driver")
    repo = unique_repo("small")
    large = random_bytes(INLINE_MAX + 1)
    assert len(_files_named(registry, push_blob(client, repo, large))) == 1
    chunked = random_bytes(2000)
    started = client.post(f"/v2/{repo}/blobs/uploads/")
    session = started.headers["Docker-Upload-UUID"]
    first = client.patch(started.headers["Location"], content=chunked[:1000], headers={"Content-Range": "0-999"})
    assert first.status_code == 202
    assert _no_upload_files(registry, [session])  # a small first chunk is kept in the session's row
    second = client.patch(first.headers["Location"], content=chunked[1000:], headers={"Content-Range": "1000-1999"})
    assert (second.status_code, second.headers["Range"]) == (202, "0-1999")
    # The second chunk moved the first to the session's file, and went after it.
    assert (registry.data_dir / "storage" / "uploads" / session).read_bytes() == chunked
    assert client.put(second.headers["Location"], params={"digest": sha256(chunked)}).status_code == 201
    assert len(_files_named(registry, sha256(chunked))) == 1
    assert client.get(f"/v2/{repo}/blobs/{sha256(chunked)}").content == chunked


def test_one_patch_then_an_empty_put_keeps_no_file(client: httpx.Client, registry: RegistryEndpoint) -> None:
    # How docker, podman and skopeo push every blob: the whole blob in one PATCH, then an empty PUT.
    repo, data = unique_repo("small"), random_bytes(INLINE_MAX)
    started = client.post(f"/v2/{repo}/blobs/uploads/")
    session = started.headers["Docker-Upload-UUID"]
    patched = client.patch(started.headers["Location"], content=data)
    assert (patched.status_code, patched.headers["Range"]) == (202, f"0-{INLINE_MAX - 1}")
    assert _no_upload_files(registry, [session])
    status = client.get(patched.headers["Location"])
    assert (status.status_code, status.headers["Range"]) == (204, f"0-{INLINE_MAX - 1}")
    put = client.put(patched.headers["Location"], params={"digest": sha256(data)})
    assert put.status_code == 201, put.text
    assert _files_named(registry, sha256(data)) == [] and _no_upload_files(registry, [session])
    assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data
    assert error_codes(client.get(patched.headers["Location"])) == ["BLOB_UPLOAD_UNKNOWN"]


def test_a_chunked_body_without_a_length_is_kept_in_the_row_when_small(
    client: httpx.Client, registry: RegistryEndpoint
) -> None:
    # buildah and the docker CLI send the PATCH with Transfer-Encoding: chunked and no length.
    repo = unique_repo("small")
    small, large = random_bytes(1500), random_bytes(INLINE_MAX + 1000)
    for data in (small, large):
        started = client.post(f"/v2/{repo}/blobs/uploads/")
        session = started.headers["Docker-Upload-UUID"]
        pieces = [data[start : start + 700] for start in range(0, len(data), 700)]
        patched = client.patch(started.headers["Location"], content=iter(pieces))
        assert (patched.status_code, patched.headers["Range"]) == (202, f"0-{len(data) - 1}")
        if registry.data_dir is not None:
            upload_file = registry.data_dir / "storage" / "uploads" / session
            assert upload_file.read_bytes() == data if data is large else not upload_file.exists()
        assert client.put(patched.headers["Location"], params={"digest": sha256(data)}).status_code == 201
        assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data
    assert _files_named(registry, sha256(small)) == []
    if registry.data_dir is not None:
        assert len(_files_named(registry, sha256(large))) == 1


def test_a_first_patch_over_the_limit_is_a_file(client: httpx.Client, registry: RegistryEndpoint) -> None:
    if registry.data_dir is None:
        pytest.skip(reason="blobs are in S3 here; the file checks need the filesystem driver")
    repo, data = unique_repo("small"), random_bytes(INLINE_MAX + 1)
    started = client.post(f"/v2/{repo}/blobs/uploads/")
    session = started.headers["Docker-Upload-UUID"]
    patched = client.patch(started.headers["Location"], content=data)
    assert patched.status_code == 202
    assert (registry.data_dir / "storage" / "uploads" / session).stat().st_size == INLINE_MAX + 1
    assert client.put(patched.headers["Location"], params={"digest": sha256(data)}).status_code == 201
    assert len(_files_named(registry, sha256(data))) == 1


def test_a_kept_first_chunk_and_the_puts_body_make_one_blob(client: httpx.Client, registry: RegistryEndpoint) -> None:
    repo = unique_repo("small")
    small, large = random_bytes(1500), random_bytes(INLINE_MAX + 500)
    for data in (small, large):  # within the limit: kept in the database; over it: a file
        started = client.post(f"/v2/{repo}/blobs/uploads/")
        session = started.headers["Docker-Upload-UUID"]
        patched = client.patch(started.headers["Location"], content=data[:1000], headers={"Content-Range": "0-999"})
        assert patched.status_code == 202
        put = client.put(
            patched.headers["Location"],
            params={"digest": sha256(data)},
            content=data[1000:],
            headers={"Content-Range": f"1000-{len(data) - 1}"},
        )
        assert put.status_code == 201, put.text
        assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data
        assert _no_upload_files(registry, [session])
    assert _files_named(registry, sha256(small)) == []
    if registry.data_dir is not None:
        assert len(_files_named(registry, sha256(large))) == 1


def test_a_kept_first_chunk_survives_a_wrong_digest_and_a_misplaced_chunk(client: httpx.Client) -> None:
    repo, data = unique_repo("small"), random_bytes(800)
    started = client.post(f"/v2/{repo}/blobs/uploads/")
    location = client.patch(started.headers["Location"], content=data[:500]).headers["Location"]
    wrong = client.put(location, params={"digest": sha256(b"something else")})
    assert (wrong.status_code, error_codes(wrong)) == (400, ["DIGEST_INVALID"])
    misplaced = client.patch(location, content=data[500:], headers={"Content-Range": "0-299"})
    assert (misplaced.status_code, misplaced.headers["Range"]) == (416, "0-499")
    assert client.get(location).headers["Range"] == "0-499"
    right = client.patch(location, content=data[500:], headers={"Content-Range": "500-799"})
    assert (right.status_code, right.headers["Range"]) == (202, "0-799")
    assert client.put(right.headers["Location"], params={"digest": sha256(data)}).status_code == 201
    assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_a_move_to_a_file_cut_short_is_finished_by_the_next_chunk(
    client: httpx.Client, registry: RegistryEndpoint
) -> None:
    if registry.data_dir is None:
        pytest.skip(reason="blobs are in S3 here; the partial file is made on the filesystem driver")
    repo, data = unique_repo("small"), random_bytes(3000)
    started = client.post(f"/v2/{repo}/blobs/uploads/")
    session = started.headers["Docker-Upload-UUID"]
    location = client.patch(started.headers["Location"], content=data[:1000]).headers["Location"]
    # What a crash while a second chunk moved the first to a file leaves: a file with part of it.
    (registry.data_dir / "storage" / "uploads" / session).write_bytes(data[:300])
    assert client.get(location).headers["Range"] == "0-999"  # the row's bytes still count
    patched = client.patch(location, content=data[1000:], headers={"Content-Range": "1000-2999"})
    assert (patched.status_code, patched.headers["Range"]) == (202, "0-2999")
    assert client.put(patched.headers["Location"], params={"digest": sha256(data)}).status_code == 201
    assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def _patch(client: httpx.Client, location: str, content: bytes) -> httpx.Response:
    return client.patch(location, content=content)


def test_racing_patches_of_one_session_lose_no_acknowledged_chunk(client: httpx.Client) -> None:
    # Clients do not race their own chunks, but a retry can: each 202 must stay counted.
    repo = unique_repo("small")
    for _ in range(5):
        location = client.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(partial(_patch, client, location), [bytes([n]) * 1000 for n in range(6)]))
        assert {answer.status_code for answer in answers} <= {202, 416}
        accepted = sum(answer.status_code == 202 for answer in answers)
        assert accepted >= 1
        assert client.get(location).headers["Range"] == f"0-{accepted * 1000 - 1}"


def test_a_wrong_digest_keeps_the_session_for_a_retry(client: httpx.Client) -> None:
    repo, data = unique_repo("small"), random_bytes(500)
    started = client.post(f"/v2/{repo}/blobs/uploads/")
    location = started.headers["Location"]
    wrong = client.put(location, params={"digest": sha256(b"something else")}, content=data)
    assert wrong.status_code == 400
    assert error_codes(wrong) == ["DIGEST_INVALID"]
    assert client.head(f"/v2/{repo}/blobs/{sha256(data)}").status_code == 404
    status = client.get(location)
    assert (status.status_code, status.headers["Range"]) == (204, "0-0")
    right = client.put(location, params={"digest": sha256(data)}, content=data)
    assert right.status_code == 201, right.text
    assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_a_body_without_content_length_is_stored_in_blob_storage(client: httpx.Client) -> None:
    repo = unique_repo("small")
    data = random_bytes(300)
    # Chunked transfer encoding carries no Content-Length: the blob goes to storage, as a file.
    response = client.post(
        f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(data)}, content=iter([data[:100], data[100:]])
    )
    assert response.status_code == 201, response.text
    assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_a_small_blob_mounts_into_another_repository(client: httpx.Client) -> None:
    source, target, data = unique_repo("small"), unique_repo("small"), random_bytes(700)
    digest = push_blob(client, source, data)
    mounted = client.post(f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source})
    assert mounted.status_code == 201, mounted.text
    assert client.get(f"/v2/{target}/blobs/{digest}").content == data
    deleted = client.delete(f"/v2/{source}/blobs/{digest}")
    assert deleted.status_code == 202
    assert client.get(f"/v2/{source}/blobs/{digest}").status_code == 404
    assert client.get(f"/v2/{target}/blobs/{digest}").content == data
