"""Images and artifacts that describe themselves (labels, annotations, platforms, artifact types), for search tests."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from tests.support.protocol import (
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    descriptor,
    image_manifest,
    push_blob,
    push_manifest,
    random_bytes,
    sha256,
)

EMPTY_CONFIG = {"mediaType": OCI_EMPTY, "digest": sha256(b"{}"), "size": 2}


def image_config(labels: dict[str, str] | None = None, os: str = "linux", architecture: str = "amd64") -> bytes:
    """An image config blob with ``config.Labels``."""
    return json.dumps(
        {
            "architecture": architecture,
            "os": os,
            "config": {"Labels": labels or {}, "Env": ["PATH=/usr/bin"]},
            "rootfs": {"type": "layers", "diff_ids": []},
            "nonce": uuid.uuid4().hex,
        }
    ).encode()


def push_described_image(
    client: httpx.Client,
    repo: str,
    tag: str | None,
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    os: str = "linux",
    architecture: str = "amd64",
) -> str:
    """Push an image whose config carries ``labels`` and whose manifest ``annotations``; its digest."""
    config = image_config(labels, os, architecture)
    layer = random_bytes(256)
    push_blob(client, repo, config)
    push_blob(client, repo, layer)
    fields: dict[str, Any] = {"annotations": annotations} if annotations else {}
    manifest = image_manifest(config, [layer], **fields)
    digest = sha256(manifest)
    response = push_manifest(client, repo, tag or digest, manifest, OCI_MANIFEST)
    assert response.status_code == 201, response.text
    return digest


def push_index(
    client: httpx.Client,
    repo: str,
    tag: str,
    platforms: list[tuple[str, str]],
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> str:
    """Push one image per (os, architecture) by digest, each with ``labels``, then an index of them
    tagged ``tag`` with ``annotations``; its digest."""
    entries = []
    for os, architecture in platforms:
        digest = push_described_image(client, repo, None, labels=labels, os=os, architecture=architecture)
        manifest = client.get(f"/v2/{repo}/manifests/{digest}", headers={"Accept": OCI_MANIFEST}).content
        entries.append(descriptor(OCI_MANIFEST, manifest, platform={"os": os, "architecture": architecture}))
    document: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    if annotations:
        document["annotations"] = annotations
    index = json.dumps(document).encode()
    response = push_manifest(client, repo, tag, index, OCI_INDEX)
    assert response.status_code == 201, response.text
    return sha256(index)


def push_artifact(client: httpx.Client, repo: str, tag: str, artifact_type: str) -> str:
    """Push an OCI artifact (empty config, one blob) of ``artifact_type``; its digest."""
    payload = random_bytes(64)
    push_blob(client, repo, b"{}")
    push_blob(client, repo, payload)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": EMPTY_CONFIG,
            "layers": [descriptor("application/octet-stream", payload)],
        }
    ).encode()
    response = push_manifest(client, repo, tag, manifest, OCI_MANIFEST)
    assert response.status_code == 201, response.text
    return sha256(manifest)
