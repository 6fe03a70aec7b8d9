"""Small blobs pushed whole in one request are kept in the database, and read back like any other.

Runs on every backend of the shared ``registry`` fixture (SQLite and PostgreSQL, and the cluster
on S3); where blobs are local files the tests also check that no file was made.
"""

from __future__ import annotations

import hashlib

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
    patched = client.patch(started.headers["Location"], content=chunked, headers={"Content-Range": "0-1999"})
    assert patched.status_code == 202
    assert client.put(patched.headers["Location"], params={"digest": sha256(chunked)}).status_code == 201
    assert len(_files_named(registry, sha256(chunked))) == 1
    assert client.get(f"/v2/{repo}/blobs/{sha256(chunked)}").content == chunked


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
