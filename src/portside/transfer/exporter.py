"""``portside export``: a repository's image as an OCI image layout or a docker-archive tarball.

* ``oci``: ``DEST`` is a directory (created if absent; an existing layout is extended, and its
  entry of the same name replaced). Blobs are written as ``blobs/<alg>/<hex>`` byte-exact, the
  manifest (or, with ``--all``, the index and every child) too, and ``index.json`` names the
  image with ``org.opencontainers.image.ref.name`` = the tag.
* ``docker-archive``: ``DEST`` is a tar file as ``docker save`` writes it (``manifest.json``, the
  config as ``<hex>.json``, each layer as an uncompressed ``<diff_id hex>.tar``): gzip layers are
  decompressed on the way, so ``docker load`` and skopeo read it. It holds one image: from a
  multi-platform index the platform's image is taken (``--platform``); ``--all`` needs ``oci``.

Files are written under a temporary name and renamed into place, so a failed export leaves no
half-written archive.
"""

# The exporter runs in the CLI's own event loop, where nothing else waits on it: plain file I/O is fine.
# ruff: noqa: ASYNC240

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from portside.metadata.records import ManifestRecord
from portside.oci.digest import parse_digest
from portside.oci.manifest import Descriptor, ParsedManifest, parse_manifest
from portside.registry.services import Registry
from portside.transfer.platforms import choose_platform
from portside.transfer.sources import REF_NAME, Progress, TransferError

OCI_LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    digest: str
    media_type: str
    manifests: int
    blobs: int
    bytes: int


@dataclass(frozen=True)
class _Image:
    record: ManifestRecord
    parsed: ParsedManifest


async def _manifest(registry: Registry, repository: str, reference: str) -> _Image:
    record = await registry.manifests.get(repository, reference, [])
    return _Image(record, parse_manifest(record.content, record.media_type))


async def _resolve(
    registry: Registry, repository: str, reference: str, all_platforms: bool, platform: str | None
) -> tuple[_Image, list[_Image]]:
    """The top manifest and every image manifest to write (children first for an index with --all)."""
    top = await _manifest(registry, repository, reference)
    if not top.parsed.children:
        return top, [top]
    if not all_platforms:
        try:
            child = choose_platform(top.parsed.children, platform)
        except ValueError as exc:
            raise TransferError(str(exc)) from exc
        image = await _manifest(registry, repository, str(child.digest))
        return image, [image]
    children = [await _manifest(registry, repository, str(c.digest)) for c in top.parsed.children]
    return top, [*children, top]


def _blobs_of(images: list[_Image]) -> list[Descriptor]:
    seen: dict[str, Descriptor] = {}
    for image in images:
        for descriptor in ([image.parsed.config] if image.parsed.config else []) + list(image.parsed.layers):
            if not descriptor.is_foreign:
                seen.setdefault(str(descriptor.digest), descriptor)
    return list(seen.values())


async def _stream(registry: Registry, repository: str, digest: str) -> AsyncIterator[bytes]:
    parsed = parse_digest(digest)
    content = await registry.blobs.open(repository, parsed)  # the repository must link it
    async for chunk in registry.blobs.stream(content, None):
        yield chunk


async def _write_blob(
    registry: Registry, repository: str, descriptor: Descriptor, target: Path, progress: Progress | None
) -> int:
    """Copy a blob to ``target`` (skipped when a file of the right size is there), verifying its digest."""
    if target.is_file() and target.stat().st_size == descriptor.size:
        if progress is not None:
            progress(descriptor.size)
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    hasher = hashlib.new(descriptor.digest.algorithm)
    partial = target.with_name(target.name + ".partial")
    with partial.open("wb") as out:
        async for chunk in _stream(registry, repository, str(descriptor.digest)):
            out.write(chunk)
            hasher.update(chunk)
            if progress is not None:
                progress(len(chunk))
    if f"{descriptor.digest.algorithm}:{hasher.hexdigest()}" != str(descriptor.digest):
        partial.unlink()
        raise TransferError(f"blob {descriptor.digest} in storage does not match its digest; run `portside fsck`")
    os.replace(partial, target)
    return descriptor.size


async def export_oci(
    registry: Registry,
    repository: str,
    reference: str,
    dest: Path,
    *,
    all_platforms: bool = False,
    platform: str | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """Write the image (or the whole index with ``all_platforms``) into an OCI layout at ``dest``."""
    top, images = await _resolve(registry, repository, reference, all_platforms, platform)
    if dest.exists() and not dest.is_dir():
        raise TransferError(f"{dest} exists and is not a directory")
    if dest.is_dir() and any(dest.iterdir()) and not (dest / "oci-layout").is_file():
        raise TransferError(f"{dest} is a non-empty directory that is not an OCI layout")
    blobs_dir = dest / "blobs"
    written = 0
    descriptors = _blobs_of(images)
    for descriptor in descriptors:
        path = blobs_dir / descriptor.digest.algorithm / descriptor.digest.encoded
        written += await _write_blob(registry, repository, descriptor, path, progress)
    manifests = {image.record.digest: image.record for image in images}
    manifests[top.record.digest] = top.record
    for record in manifests.values():
        digest = parse_digest(record.digest)
        path = blobs_dir / digest.algorithm / digest.encoded
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(record.content)
    (dest / "oci-layout").write_text(json.dumps(OCI_LAYOUT_VERSION))
    index_path = dest / "index.json"
    index: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [],
    }
    if index_path.is_file():
        index = json.loads(index_path.read_bytes())
    ref_name = reference if not reference.startswith(("sha256:", "sha512:")) else None
    entry: dict[str, Any] = {"mediaType": top.record.media_type, "digest": top.record.digest, "size": top.record.size}
    if ref_name:
        entry["annotations"] = {REF_NAME: ref_name}
    index["manifests"] = [
        m for m in index.get("manifests", []) if not ref_name or m.get("annotations", {}).get(REF_NAME) != ref_name
    ] + [entry]
    partial_index = dest / "index.json.partial"
    partial_index.write_text(json.dumps(index, indent=2))
    os.replace(partial_index, index_path)
    return ExportResult(top.record.digest, top.record.media_type, len(manifests), len(descriptors), written)


async def export_docker_archive(
    registry: Registry,
    repository: str,
    reference: str,
    dest: Path,
    *,
    platform: str | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """Write one image as a ``docker save`` tarball at ``dest``."""
    image, _ = await _resolve(registry, repository, reference, False, platform)
    config = image.parsed.config
    if config is None:
        raise TransferError(f"{repository}:{reference} is not an image (it has no config)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    total = 0
    with tempfile.TemporaryDirectory(prefix=".portside-export-", dir=dest.parent) as scratch:
        work = Path(scratch)
        config_bytes = b"".join([chunk async for chunk in _stream(registry, repository, str(config.digest))])
        if progress is not None:
            progress(len(config_bytes))
        config_name = f"{config.digest.encoded}.json"
        (work / config_name).write_bytes(config_bytes)
        layer_names: list[str] = []
        for layer in image.parsed.layers:
            name = await _plain_layer(registry, repository, layer, work, progress)
            layer_names.append(name)
            total += layer.size
        tag = reference if not reference.startswith(("sha256:", "sha512:")) else None
        manifest = [{"Config": config_name, "RepoTags": [f"{repository}:{tag}"] if tag else [], "Layers": layer_names}]
        (work / "manifest.json").write_text(json.dumps(manifest))
        partial = work / "archive.tar"
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as archive:
            for name in [config_name, *dict.fromkeys(layer_names), "manifest.json"]:
                # Fixed owner and times: the same image always makes the same archive.
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = (work / name).stat().st_size, 0o644, 0
                with (work / name).open("rb") as data:
                    archive.addfile(info, data)
        os.replace(partial, dest)
    return ExportResult(image.record.digest, image.record.media_type, 1, 1 + len(layer_names), total)


async def _plain_layer(
    registry: Registry, repository: str, layer: Descriptor, work: Path, progress: Progress | None
) -> str:
    """Write a layer uncompressed into ``work``; its file name (``<diff_id hex>.tar``)."""
    if layer.media_type.endswith("zstd"):
        raise TransferError(f"layer {layer.digest} is zstd-compressed, which a docker-archive cannot hold")
    gzipped = layer.media_type.endswith("gzip")
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16) if gzipped else None
    hasher = hashlib.sha256()
    path = work / f"layer-{layer.digest.encoded}.tmp"
    out: IO[bytes]
    try:
        with path.open("wb") as out:
            async for chunk in _stream(registry, repository, str(layer.digest)):
                data = inflater.decompress(chunk) if inflater is not None else chunk
                out.write(data)
                hasher.update(data)
                if progress is not None:
                    progress(len(chunk))
            if inflater is not None:
                rest = inflater.flush()
                out.write(rest)
                hasher.update(rest)
    except zlib.error as exc:
        raise TransferError(f"layer {layer.digest} is typed {layer.media_type} but is not gzip data ({exc})") from exc
    name = f"{hasher.hexdigest()}.tar"
    with contextlib.suppress(FileNotFoundError):
        (work / name).unlink()
    shutil.move(path, work / name)
    return name
