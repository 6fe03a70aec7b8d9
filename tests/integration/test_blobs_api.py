"""Blob reads, ranges, deletes and repository isolation, against a real server."""

from __future__ import annotations

import httpx
import pytest

from tests.support.protocol import error_codes, push_blob, random_bytes, sha256, unique_repo
from tests.support.rawhttp import raw_request
from tests.support.server import RegistryEndpoint

pytestmark = pytest.mark.integration


def test_base_endpoint_answers_with_api_version(client: httpx.Client) -> None:
    response = client.get("/v2/")
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert response.json() == {}


def test_head_blob_gives_length_and_digest_without_body(client: httpx.Client) -> None:
    repo = unique_repo()
    data = random_bytes(5000)
    digest = push_blob(client, repo, data)
    response = client.head(f"/v2/{repo}/blobs/{digest}")
    assert response.status_code == 200
    assert response.headers["Content-Length"] == "5000"
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.content == b""


def test_get_blob_returns_exact_bytes(client: httpx.Client) -> None:
    repo = unique_repo()
    data = random_bytes(3 * 1024 * 1024 + 17)
    digest = push_blob(client, repo, data)
    response = client.get(f"/v2/{repo}/blobs/{digest}")
    assert response.status_code == 200
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.content == data


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-99", 0, 99), ("bytes=100-", 100, 1999), ("bytes=-10", 1990, 1999), ("bytes=1500-5000", 1500, 1999)],
)
def test_range_read_answers_206_with_content_range(client: httpx.Client, header: str, start: int, end: int) -> None:
    repo = unique_repo()
    data = random_bytes(2000)
    digest = push_blob(client, repo, data)
    response = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": header})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {start}-{end}/2000"
    assert response.content == data[start : end + 1]


def test_unsatisfiable_range_answers_416(client: httpx.Client) -> None:
    repo = unique_repo()
    digest = push_blob(client, repo, random_bytes(100))
    response = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=200-300"})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == "bytes */100"
    assert error_codes(response) == ["RANGE_INVALID"]


def test_unknown_blob_is_blob_unknown(client: httpx.Client) -> None:
    response = client.get(f"/v2/{unique_repo()}/blobs/{sha256(b'nothing here')}")
    assert response.status_code == 404
    assert error_codes(response) == ["BLOB_UNKNOWN"]


def test_head_of_unknown_blob_is_404_without_body(client: httpx.Client) -> None:
    response = client.head(f"/v2/{unique_repo()}/blobs/{sha256(b'nothing')}")
    assert response.status_code == 404
    assert response.content == b""


@pytest.mark.parametrize(
    "digest", ["sha256:abc", "md5:d41d8cd98f00b204e9800998ecf8427e", "nocolon", "sha256:" + "A" * 64]
)
def test_malformed_digest_is_digest_invalid(client: httpx.Client, digest: str) -> None:
    response = client.get(f"/v2/{unique_repo()}/blobs/{digest}")
    assert response.status_code == 400
    assert error_codes(response) == ["DIGEST_INVALID"]


def test_blob_is_not_readable_from_a_repository_that_does_not_link_it(client: httpx.Client) -> None:
    owner, stranger = unique_repo(), unique_repo()
    digest = push_blob(client, owner, random_bytes(64))
    push_blob(client, stranger, b"x")
    assert client.head(f"/v2/{stranger}/blobs/{digest}").status_code == 404
    assert client.get(f"/v2/{stranger}/blobs/{digest}").status_code == 404


def test_same_blob_in_two_repositories_is_stored_once(client: httpx.Client, registry: RegistryEndpoint) -> None:
    data = random_bytes(80 * 1024)  # over the 64 KiB kept in the database: stored as a file
    first, second = unique_repo(), unique_repo()
    digest = push_blob(client, first, data)
    push_blob(client, second, data)
    if registry.data_dir is None:
        pytest.skip(reason="blobs are in S3 here; the shared storage suite checks S3 keys per digest")
    storage = registry.data_dir / "storage" / "blobs" / "sha256"
    assert len(list(storage.rglob(digest.split(":")[1]))) == 1
    assert client.get(f"/v2/{second}/blobs/{digest}").content == data


def test_a_blob_whose_file_is_gone_is_blob_unknown_before_any_byte(
    client: httpx.Client, registry: RegistryEndpoint
) -> None:
    if registry.data_dir is None:
        pytest.skip(reason="blobs are in S3 here: there is no local file to remove")
    repository = unique_repo()
    data = random_bytes(300 * 1024)
    digest = push_blob(client, repository, data)
    assert client.get(f"/v2/{repository}/blobs/{digest}").content == data
    (path,) = (registry.data_dir / "storage" / "blobs" / "sha256").rglob(digest.split(":")[1])
    path.unlink()
    response = client.get(f"/v2/{repository}/blobs/{digest}")
    assert response.status_code == 404
    assert error_codes(response) == ["BLOB_UNKNOWN"]
    assert response.json()["errors"][0]["detail"] == {"digest": digest}


def test_delete_blob_unlinks_it_from_the_repository_only(client: httpx.Client) -> None:
    data = random_bytes(256)
    first, second = unique_repo(), unique_repo()
    digest = push_blob(client, first, data)
    push_blob(client, second, data)
    response = client.delete(f"/v2/{first}/blobs/{digest}")
    assert response.status_code == 202
    assert client.head(f"/v2/{first}/blobs/{digest}").status_code == 404
    assert client.get(f"/v2/{second}/blobs/{digest}").content == data
    assert error_codes(client.delete(f"/v2/{first}/blobs/{digest}")) == ["BLOB_UNKNOWN"]


@pytest.mark.parametrize("name", ["Upper/case", "a//b", "-lead", "x" * 256, "a/b_", "a..b", "a___b"])
def test_invalid_repository_names_are_name_invalid(client: httpx.Client, name: str) -> None:
    response = client.get(f"/v2/{name}/tags/list")
    assert response.status_code == 400
    assert error_codes(response) == ["NAME_INVALID"]


@pytest.mark.parametrize(
    "path", ["/v2/a/../b/blobs/uploads/", "/v2/../blobs/uploads/", "/v2/a/%2e%2e/b/blobs/uploads/"]
)
def test_dot_dot_in_a_name_is_refused_and_opens_no_session(registry: RegistryEndpoint, path: str) -> None:
    response = raw_request(
        "127.0.0.1", registry.port, f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n".encode()
    )
    assert response.status in (400, 404)


def test_unknown_endpoint_is_a_json_404(client: httpx.Client) -> None:
    response = client.get("/v2/foo/bar/nonsense")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"]


def test_wrong_method_is_405_with_allow(client: httpx.Client) -> None:
    response = client.post(f"/v2/{unique_repo()}/tags/list")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert error_codes(response) == ["UNSUPPORTED"]
