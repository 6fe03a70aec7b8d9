"""End to end: a real `portside serve` keeping its blobs in S3 (moto on loopback), driven over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.storage.conftest import CREDENTIALS, REGION, S3Server
from tests.support.protocol import OCI_MANIFEST, image_manifest, push_blob, random_bytes, sha256, unique_repo
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def _s3_env(s3_server: S3Server, s3_prefix: str) -> dict[str, str]:
    return {
        "PORTSIDE_STORAGE_DRIVER": "s3",
        "PORTSIDE_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "PORTSIDE_S3_BUCKET": s3_server.bucket,
        "PORTSIDE_S3_REGION": REGION,
        "PORTSIDE_S3_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "PORTSIDE_S3_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "PORTSIDE_S3_PREFIX": s3_prefix,
    }


@pytest.fixture
def s3_registry(tmp_path: Path, s3_server: S3Server, s3_prefix: str) -> Iterator[ServerProcess]:
    """A server with two workers, so chunks of one upload land in different processes."""
    server = ServerProcess(tmp_path / "data", workers=2, env=_s3_env(s3_server, s3_prefix)).start()
    yield server
    server.stop()


def test_chunked_push_and_pull_keep_blobs_in_the_bucket(
    s3_registry: ServerProcess, s3_server: S3Server, s3_prefix: str
) -> None:
    repo = unique_repo("s3")
    layer = random_bytes(8 * MIB + 123)
    with httpx.Client(base_url=s3_registry.url, timeout=60.0) as client:
        started = client.post(f"/v2/{repo}/blobs/uploads/")
        assert started.status_code == 202, started.text
        location, offset = started.headers["Location"], 0
        for size in (MIB, 64 * 1024, 5 * MIB, MIB):
            chunk = layer[offset : offset + size]
            response = client.patch(
                location,
                content=chunk,
                headers={"Content-Range": f"{offset}-{offset + size - 1}", "Content-Type": "application/octet-stream"},
            )
            assert response.status_code == 202, response.text
            offset += size
            assert response.headers["Range"] == f"0-{offset - 1}"
            location = response.headers["Location"]
        stale = client.patch(location, content=b"late", headers={"Content-Range": "0-3"})
        assert stale.status_code == 416
        finished = client.put(location, params={"digest": sha256(layer)}, content=layer[offset:])
        assert finished.status_code == 201, finished.text

        config = b'{"architecture":"amd64","os":"linux"}'
        push_blob(client, repo, config)
        manifest = image_manifest(config, [layer])
        pushed = client.put(f"/v2/{repo}/manifests/v1", content=manifest, headers={"Content-Type": OCI_MANIFEST})
        assert pushed.status_code == 201, pushed.text

        pulled = client.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert pulled.status_code == 200
        assert pulled.content == manifest
        blob = client.get(f"/v2/{repo}/blobs/{sha256(layer)}")
        assert blob.status_code == 200
        assert blob.content == layer
        ranged = client.get(f"/v2/{repo}/blobs/{sha256(layer)}", headers={"Range": f"bytes={5 * MIB}-{5 * MIB + 99}"})
        assert ranged.status_code == 206
        assert ranged.content == layer[5 * MIB : 5 * MIB + 100]
        assert client.get(f"/v2/{repo}/blobs/{sha256(config)}").content == config

    names = s3_server.object_names(s3_prefix)
    layer_name, config_name = (
        f"{s3_prefix}/blobs/sha256/{encoded[:2]}/{encoded}"
        for encoded in (sha256(data).removeprefix("sha256:") for data in (layer, config))
    )
    assert layer_name in names
    # The config came whole in one small request: its bytes are kept in the database.
    assert config_name not in names
    assert not [name for name in names if name.startswith(f"{s3_prefix}/uploads/")]
    assert s3_server.multipart_uploads(s3_prefix) == []
    storage_dir = s3_registry.data_dir / "storage"
    assert not storage_dir.exists() or not any(path.is_file() for path in storage_dir.rglob("*"))


def test_blob_reads_redirect_to_presigned_urls_when_enabled(
    tmp_path: Path, s3_server: S3Server, s3_prefix: str
) -> None:
    env = {**_s3_env(s3_server, s3_prefix), "PORTSIDE_S3_REDIRECT_BLOBS": "true"}
    server = ServerProcess(tmp_path / "data", env=env).start()
    try:
        repo, data = unique_repo("s3"), random_bytes(300_000)
        with httpx.Client(base_url=server.url, timeout=60.0) as client:
            digest = push_blob(client, repo, data)
            redirected = client.get(f"/v2/{repo}/blobs/{digest}")
            assert redirected.status_code == 307
            assert redirected.headers["Docker-Content-Digest"] == digest
            location = redirected.headers["Location"]
            assert location.startswith(s3_server.endpoint_url)
            head = client.head(f"/v2/{repo}/blobs/{digest}")
            assert head.status_code == 200
            assert head.headers["Content-Length"] == str(len(data))
            assert client.get(f"/v2/{unique_repo('s3')}/blobs/{digest}").status_code == 404
            # A small blob kept in the database has no object to redirect to: its bytes come from here.
            small = random_bytes(500)
            small_digest = push_blob(client, repo, small)
            direct = client.get(f"/v2/{repo}/blobs/{small_digest}")
            assert (direct.status_code, direct.content) == (200, small)
        assert httpx.get(location, timeout=60.0).content == data
        ranged = httpx.get(location, headers={"Range": "bytes=1000-1999"}, timeout=60.0)
        assert ranged.status_code == 206
        assert ranged.content == data[1000:2000]
    finally:
        server.stop()
