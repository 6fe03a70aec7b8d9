"""Registry API steps used by the scenarios and their setup, over :class:`bench.httpclient.Connection`."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass

from bench.httpclient import Connection, HttpError, Response

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
# What containerd and docker send when they resolve a tag.
MANIFEST_ACCEPT = ", ".join(
    [
        OCI_MANIFEST,
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)
OCTET = {"Content-Type": "application/octet-stream"}

# How a client sends one blob: (connection, repository, bytes, digest).
BlobPush = Callable[[Connection, str, bytes | bytearray | memoryview, str], None]


class ProtocolError(RuntimeError):
    """The registry answered something other than what the protocol step expects."""


def sha256_digest(data: bytes | bytearray | memoryview) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def expect(response: Response, status: int | tuple[int, ...], what: str) -> Response:
    """Raise :class:`ProtocolError` unless ``response`` has one of the expected statuses."""
    allowed = (status,) if isinstance(status, int) else status
    if response.status not in allowed:
        body = response.body[:500].decode(errors="replace")
        raise ProtocolError(f"{what}: expected {allowed}, got {response.status}: {body}")
    return response


def with_digest(target: str, digest: str) -> str:
    """``target`` with ``digest=`` added to its query."""
    return f"{target}{'&' if '?' in target else '?'}digest={digest}"


def start_upload(conn: Connection, repo: str) -> str:
    """``POST /v2/<repo>/blobs/uploads/``; the upload's Location."""
    response = conn.request("POST", f"/v2/{repo}/blobs/uploads/", {"Content-Length": "0"})
    return expect(response, 202, f"POST upload in {repo}").location()


def push_blob(conn: Connection, repo: str, data: bytes | bytearray | memoryview, digest: str) -> None:
    """POST, then PUT the whole body with ``?digest=`` (how containerd and oras push a blob)."""
    location = start_upload(conn, repo)
    response = conn.request("PUT", with_digest(location, digest), OCTET, memoryview(data))
    expect(response, 201, f"PUT blob {digest[:19]} in {repo}")


def push_blob_patched(conn: Connection, repo: str, data: bytes | bytearray | memoryview, digest: str) -> None:
    """POST, one PATCH with the whole body, then an empty PUT ``?digest=`` (how docker, podman and skopeo push)."""
    location = start_upload(conn, repo)
    response = expect(conn.request("PATCH", location, OCTET, memoryview(data)), 202, f"PATCH blob {digest[:19]}")
    response = conn.request("PUT", with_digest(response.location(), digest), {"Content-Length": "0"})
    expect(response, 201, f"PUT to finish blob {digest[:19]} in {repo}")


def push_blob_chunked(
    conn: Connection, repo: str, data: bytes | bytearray | memoryview, digest: str, chunk: int
) -> int:
    """POST, PATCH ``chunk``-sized pieces with ``Content-Range``, then PUT ``?digest=``; the PATCH count."""
    view = memoryview(data)
    location = start_upload(conn, repo)
    patches = 0
    for start in range(0, len(view), chunk):
        piece = view[start : start + chunk]
        headers = {**OCTET, "Content-Range": f"{start}-{start + len(piece) - 1}"}
        response = expect(conn.request("PATCH", location, headers, piece), 202, f"PATCH at {start}")
        location = response.location()
        patches += 1
    response = conn.request("PUT", with_digest(location, digest), {"Content-Length": "0"})
    expect(response, 201, f"PUT to finish chunked upload of {digest[:19]}")
    return patches


def blob_exists(conn: Connection, repo: str, digest: str) -> bool:
    """``HEAD`` the blob: 200 or 404."""
    return expect(conn.request("HEAD", f"/v2/{repo}/blobs/{digest}"), (200, 404), "HEAD blob").status == 200


def mount_blob(conn: Connection, repo: str, digest: str, source: str) -> None:
    """Cross-repository mount; falls back to nothing (the caller pushes) only on a 202."""
    response = conn.request("POST", f"/v2/{repo}/blobs/uploads/?mount={digest}&from={source}", {"Content-Length": "0"})
    if response.status == 202:
        # The registry declined to mount: cancel the session it opened instead.
        conn.request("DELETE", response.location())
        raise ProtocolError(f"mount of {digest[:19]} from {source} into {repo} was refused")
    expect(response, 201, f"mount into {repo}")


def put_manifest(conn: Connection, repo: str, reference: str, manifest: bytes, media_type: str = OCI_MANIFEST) -> str:
    """``PUT`` a manifest; its digest."""
    response = conn.request("PUT", f"/v2/{repo}/manifests/{reference}", {"Content-Type": media_type}, manifest)
    expect(response, 201, f"PUT manifest {repo}:{reference}")
    return response.header("docker-content-digest") or sha256_digest(manifest)


def get_json(conn: Connection, target: str, accept: str | None = None) -> tuple[Response, object]:
    """``GET`` a JSON document."""
    response = expect(conn.request("GET", target, {"Accept": accept} if accept else None), 200, f"GET {target}")
    try:
        return response, json.loads(response.body)
    except ValueError as exc:
        raise HttpError(f"GET {target}: body is not JSON: {response.body[:200]!r}") from exc


def next_link(response: Response) -> str | None:
    """The target of a ``Link: <...>; rel="next"`` header, if any."""
    value = response.header("link")
    if not value or 'rel="next"' not in value:
        return None
    start, end = value.find("<"), value.find(">")
    if start < 0 or end < start:
        return None
    return value[start + 1 : end]


@dataclass(frozen=True)
class Blob:
    """Bytes and their digest."""

    data: bytes
    digest: str

    @staticmethod
    def of(data: bytes) -> Blob:
        """Wrap ``data``."""
        return Blob(data, sha256_digest(data))


@dataclass(frozen=True)
class Image:
    """A small image: a config, its layers and the manifest that names them."""

    config: Blob
    layers: tuple[Blob, ...]
    manifest: bytes

    @property
    def blobs(self) -> tuple[Blob, ...]:
        """Config first, then the layers."""
        return (self.config, *self.layers)

    @property
    def digest(self) -> str:
        """The manifest's digest."""
        return sha256_digest(self.manifest)


def make_image(label: str, layer_sizes: tuple[int, ...]) -> Image:
    """An OCI image with random layers of the given sizes and a config unique to ``label``."""
    layers = tuple(Blob.of(os.urandom(size)) for size in layer_sizes)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {"bench.portside.id": label}},
        "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]},
    }
    config_blob = Blob.of(json.dumps(config, separators=(",", ":")).encode())
    return Image(config_blob, layers, manifest_for(config_blob, layers))


def manifest_for(config: Blob, layers: tuple[Blob, ...]) -> bytes:
    """The OCI image manifest for ``config`` and ``layers``."""
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": len(config.data)},
        "layers": [{"mediaType": OCI_LAYER, "digest": layer.digest, "size": len(layer.data)} for layer in layers],
    }
    return json.dumps(document, separators=(",", ":")).encode()


def push_image(conn: Connection, repo: str, tag: str, image: Image, push: BlobPush = push_blob) -> None:
    """What a client does: for each blob HEAD, then ``push`` it if missing; then PUT the manifest."""
    for blob in image.blobs:
        if not blob_exists(conn, repo, blob.digest):
            push(conn, repo, blob.data, blob.digest)
    put_manifest(conn, repo, tag, image.manifest)
