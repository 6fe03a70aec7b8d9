"""Building and pushing content over plain HTTP, the way a conformant client does."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def sha256(data: bytes) -> str:
    """``sha256:<hex>`` of some bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def unique_repo(prefix: str = "test") -> str:
    """A repository name no other test uses."""
    return f"{prefix}/{uuid.uuid4().hex[:12]}"


def random_bytes(size: int) -> bytes:
    """Incompressible test content."""
    return os.urandom(size)


def push_blob(client: httpx.Client, repo: str, data: bytes) -> str:
    """Push a blob monolithically (``POST ?digest=``) and return its digest."""
    digest = sha256(data)
    response = client.post(
        f"/v2/{repo}/blobs/uploads/",
        params={"digest": digest},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text
    return digest


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    """A descriptor of some bytes."""
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


@dataclass
class Image:
    """An image pushed to a repository: its manifest bytes and what they reference."""

    manifest: bytes
    digest: str
    media_type: str
    config: bytes
    layers: list[bytes]


def image_manifest(config: bytes, layers: list[bytes], *, docker: bool = False, **fields: Any) -> bytes:
    """Manifest bytes for a config and layers (OCI unless ``docker``)."""
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
        "config": descriptor(DOCKER_CONFIG if docker else OCI_CONFIG, config),
        "layers": [descriptor(DOCKER_LAYER if docker else OCI_LAYER, layer) for layer in layers],
        **fields,
    }
    return json.dumps(document, indent=3).encode()


def push_manifest(client: httpx.Client, repo: str, reference: str, manifest: bytes, media_type: str) -> httpx.Response:
    """PUT a manifest and return the response."""
    return client.put(f"/v2/{repo}/manifests/{reference}", content=manifest, headers={"Content-Type": media_type})


def push_image(
    client: httpx.Client,
    repo: str,
    tag: str | None = "latest",
    *,
    layers: int = 2,
    layer_size: int = 1024,
    docker: bool = False,
    **fields: Any,
) -> Image:
    """Push a config, layers and a manifest; tag it unless ``tag`` is None."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "nonce": uuid.uuid4().hex}).encode()
    blobs = [random_bytes(layer_size) for _ in range(layers)]
    for data in [config, *blobs]:
        push_blob(client, repo, data)
    manifest = image_manifest(config, blobs, docker=docker, **fields)
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    digest = sha256(manifest)
    response = push_manifest(client, repo, tag or digest, manifest, media_type)
    assert response.status_code == 201, response.text
    return Image(manifest, digest, media_type, config, blobs)


def error_codes(response: httpx.Response) -> list[str]:
    """The error codes of an error body."""
    return [entry["code"] for entry in response.json()["errors"]]
