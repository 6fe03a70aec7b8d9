"""Images for the browser tests: configs with labels, env and history, an index, and a referrer."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
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

SBOM_TYPE = "application/spdx+json"


@dataclass(frozen=True)
class Pushed:
    """A pushed manifest: its digest and bytes."""

    digest: str
    manifest: bytes


def image_config(
    *,
    os: str = "linux",
    architecture: str = "amd64",
    labels: dict[str, str] | None = None,
    env: list[str] | None = None,
    entrypoint: list[str] | None = None,
    cmd: list[str] | None = None,
) -> bytes:
    """An image config with what the tag page shows: labels, env, entrypoint, cmd and history."""
    document: dict[str, Any] = {
        "architecture": architecture,
        "os": os,
        "created": "2026-11-01T10:00:00Z",
        "config": {
            "Env": env or ["PATH=/usr/local/bin:/usr/bin:/bin"],
            "Entrypoint": entrypoint,
            "Cmd": cmd or ["serve"],
            "Labels": labels or {},
        },
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [
            {"created": "2026-11-01T10:00:00Z", "created_by": "ADD rootfs.tar /"},
            {"created": "2026-11-01T10:00:01Z", "created_by": 'CMD ["serve"]', "empty_layer": True},
        ],
        "nonce": uuid.uuid4().hex,
    }
    return json.dumps(document).encode()


def push_configured_image(
    client: httpx.Client,
    repository: str,
    tag: str | None,
    config: bytes,
    *,
    layer_sizes: tuple[int, ...] = (2048, 1024),
    annotations: dict[str, str] | None = None,
) -> Pushed:
    """Push an OCI image with this config and random layers; tag it unless ``tag`` is None."""
    layers = [random_bytes(size) for size in layer_sizes]
    for data in [config, *layers]:
        push_blob(client, repository, data)
    fields: dict[str, Any] = {"annotations": annotations} if annotations else {}
    manifest = image_manifest(config, layers, **fields)
    digest = sha256(manifest)
    response = push_manifest(client, repository, tag or digest, manifest, OCI_MANIFEST)
    assert response.status_code == 201, response.text
    return Pushed(digest, manifest)


def push_index(client: httpx.Client, repository: str, tag: str, platforms: list[tuple[str, str]]) -> Pushed:
    """Push one image per (os, arch) and an OCI index over them, tagged ``tag``."""
    children = []
    for os_name, architecture in platforms:
        child = push_configured_image(client, repository, None, image_config(os=os_name, architecture=architecture))
        children.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": child.digest,
                "size": len(child.manifest),
                "platform": {"os": os_name, "architecture": architecture},
            }
        )
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}).encode()
    response = push_manifest(client, repository, tag, index, OCI_INDEX)
    assert response.status_code == 201, response.text
    return Pushed(sha256(index), index)


def push_sbom(client: httpx.Client, repository: str, subject: Pushed) -> Pushed:
    """Attach an SPDX SBOM artifact to ``subject`` (an OCI 1.1 referrer)."""
    empty = b"{}"
    sbom = json.dumps({"spdxVersion": "SPDX-2.3", "name": repository}).encode()
    push_blob(client, repository, empty)
    push_blob(client, repository, sbom)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": SBOM_TYPE,
            "config": descriptor(OCI_EMPTY, empty),
            "layers": [descriptor(SBOM_TYPE, sbom)],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject.digest, "size": len(subject.manifest)},
            "annotations": {"org.opencontainers.image.created": "2026-11-02T00:00:00Z"},
        }
    ).encode()
    digest = sha256(manifest)
    response = push_manifest(client, repository, digest, manifest, OCI_MANIFEST)
    assert response.status_code == 201, response.text
    return Pushed(digest, manifest)
