"""Pure-Python builders of OCI image layouts on disk, for pushing to a registry.

Nothing is pulled from anywhere: layers are real gzip-compressed tar archives
holding seeded random bytes, so the same arguments always produce the same
digests, and different seeds produce images that share no blobs.

The layouts follow the OCI image-layout spec (``oci-layout``, ``index.json``,
``blobs/sha256/<hex>``) and can be used by skopeo as ``oci:<dir>:<tag>``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "MEDIA_TYPE_OCI_CONFIG",
    "MEDIA_TYPE_OCI_INDEX",
    "MEDIA_TYPE_OCI_LAYER_GZIP",
    "MEDIA_TYPE_OCI_MANIFEST",
    "REF_NAME_ANNOTATION",
    "BuiltImage",
    "BuiltIndex",
    "BuiltLayer",
    "Descriptor",
    "Platform",
    "build_image_layout",
    "build_multiarch_layout",
    "canonical_json",
    "read_blob",
    "read_layout_index",
    "resolve_tag",
    "sha256_digest",
]

MEDIA_TYPE_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"

#: ``(os, architecture)`` or ``(os, architecture, variant)``.
Platform = tuple[str, str] | tuple[str, str, str]

# A fixed timestamp keeps every blob reproducible.
_CREATED = "2024-01-01T00:00:00Z"
_TAR_MTIME = 1704067200  # _CREATED as a Unix time
_FILES_PER_LAYER = 3


def sha256_digest(data: bytes) -> str:
    """The OCI digest string (``sha256:<hex>``) of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value: object) -> bytes:
    """Compact, key-ordered-as-given JSON bytes, as stored in the layout."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor (the fields the tests care about)."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] | None = None
    platform: Platform | None = None


@dataclass(frozen=True)
class BuiltLayer:
    """One gzip'd tar layer: ``digest`` of the blob, ``diff_id`` of the tar."""

    digest: str
    size: int
    diff_id: str
    uncompressed_size: int


@dataclass(frozen=True)
class BuiltImage:
    """A single-platform image written into an OCI layout."""

    layout: Path
    tag: str | None
    platform: Platform
    manifest_digest: str
    manifest_size: int
    manifest_bytes: bytes
    config_digest: str
    config_size: int
    config_bytes: bytes
    layers: tuple[BuiltLayer, ...]

    @property
    def layer_digests(self) -> tuple[str, ...]:
        return tuple(layer.digest for layer in self.layers)

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return tuple(layer.diff_id for layer in self.layers)

    @property
    def blob_digests(self) -> tuple[str, ...]:
        """Config and layers: every blob the manifest references."""
        return (self.config_digest, *self.layer_digests)

    @property
    def oci_ref(self) -> str:
        """The containers/image reference of this image, e.g. ``oci:/d:latest``."""
        if self.tag is None:
            raise ValueError("image has no tag in its layout; use the index ref")
        return f"oci:{self.layout}:{self.tag}"

    @property
    def manifest(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.manifest_bytes)
        return parsed

    @property
    def config(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.config_bytes)
        return parsed


@dataclass(frozen=True)
class BuiltIndex:
    """A multi-platform image: an OCI image index over per-platform manifests."""

    layout: Path
    tag: str
    index_digest: str
    index_size: int
    index_bytes: bytes
    images: tuple[BuiltImage, ...]

    @property
    def child_digests(self) -> tuple[str, ...]:
        return tuple(image.manifest_digest for image in self.images)

    @property
    def platforms(self) -> tuple[Platform, ...]:
        return tuple(image.platform for image in self.images)

    @property
    def oci_ref(self) -> str:
        return f"oci:{self.layout}:{self.tag}"

    @property
    def index(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.index_bytes)
        return parsed

    def image_for(self, platform: Platform) -> BuiltImage:
        for image in self.images:
            if image.platform == platform:
                return image
        raise KeyError(platform)


# --------------------------------------------------------------------------
# writing


def _write_blob(layout: Path, data: bytes) -> str:
    digest = sha256_digest(data)
    path = layout / "blobs" / "sha256" / digest.removeprefix("sha256:")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(data)
    return digest


def _init_layout(layout: Path) -> None:
    layout.mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    marker = layout / "oci-layout"
    if not marker.exists():
        marker.write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))


def _tag_in_layout(layout: Path, descriptor: dict[str, Any], tag: str) -> None:
    """Add ``descriptor`` to ``index.json`` under ``tag``, replacing that tag."""
    index_path = layout / "index.json"
    index: dict[str, Any]
    if index_path.exists():
        index = json.loads(index_path.read_bytes())
    else:
        index = {"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": []}
    kept = [
        entry for entry in index.get("manifests", []) if entry.get("annotations", {}).get(REF_NAME_ANNOTATION) != tag
    ]
    entry = dict(descriptor)
    entry["annotations"] = {**entry.get("annotations", {}), REF_NAME_ANNOTATION: tag}
    kept.append(entry)
    index["manifests"] = kept
    index_path.write_bytes(canonical_json(index))


def _platform_json(platform: Platform) -> dict[str, str]:
    result = {"architecture": platform[1], "os": platform[0]}
    if len(platform) == 3:
        result["variant"] = platform[2]
    return result


def _layer_tar(rng: random.Random, index: int, layer_size: int) -> bytes:
    """An uncompressed tar with about ``layer_size`` bytes of random file data."""
    buffer = io.BytesIO()
    sizes = [layer_size // _FILES_PER_LAYER] * _FILES_PER_LAYER
    sizes[-1] += layer_size - sum(sizes)
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        directory = tarfile.TarInfo(f"layer{index}")
        directory.type = tarfile.DIRTYPE
        directory.mode = 0o755
        directory.mtime = _TAR_MTIME
        tar.addfile(directory)
        for number, size in enumerate(sizes):
            content = rng.randbytes(size)
            info = tarfile.TarInfo(f"layer{index}/file{number}.bin")
            info.size = size
            info.mode = 0o644
            info.mtime = _TAR_MTIME
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _gzip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    # mtime=0 and no file name: identical input gives identical output.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as stream:
        stream.write(data)
    return buffer.getvalue()


def _write_image_blobs(
    layout: Path,
    *,
    layers: int,
    layer_size: int,
    seed: int,
    platform: Platform,
    labels: Mapping[str, str] | None,
    annotations: Mapping[str, str] | None,
    tag: str | None,
) -> BuiltImage:
    if layers < 1:
        raise ValueError("an image needs at least one layer")
    if layer_size < 0:
        raise ValueError("layer_size must not be negative")
    rng = random.Random(f"portside-test-image:{seed}:{'/'.join(platform)}")

    built_layers: list[BuiltLayer] = []
    history: list[dict[str, Any]] = []
    for index in range(layers):
        tar_bytes = _layer_tar(rng, index, layer_size)
        blob = _gzip(tar_bytes)
        digest = _write_blob(layout, blob)
        built_layers.append(
            BuiltLayer(
                digest=digest,
                size=len(blob),
                diff_id=sha256_digest(tar_bytes),
                uncompressed_size=len(tar_bytes),
            )
        )
        history.append(
            {
                "created": _CREATED,
                "created_by": f"portside-test: add layer{index} (seed {seed})",
            }
        )

    image_config: dict[str, Any] = {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["/bin/sh"],
        "WorkingDir": "/",
    }
    if labels:
        image_config["Labels"] = dict(labels)
    config: dict[str, Any] = {
        "created": _CREATED,
        "author": "portside tests",
        **_platform_json(platform),
        "config": image_config,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in built_layers]},
        "history": history,
    }
    config_bytes = canonical_json(config)
    config_digest = _write_blob(layout, config_bytes)

    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": {
            "mediaType": MEDIA_TYPE_OCI_CONFIG,
            "digest": config_digest,
            "size": len(config_bytes),
        },
        "layers": [
            {"mediaType": MEDIA_TYPE_OCI_LAYER_GZIP, "digest": layer.digest, "size": layer.size}
            for layer in built_layers
        ],
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    manifest_bytes = canonical_json(manifest)
    manifest_digest = _write_blob(layout, manifest_bytes)

    return BuiltImage(
        layout=layout,
        tag=tag,
        platform=platform,
        manifest_digest=manifest_digest,
        manifest_size=len(manifest_bytes),
        manifest_bytes=manifest_bytes,
        config_digest=config_digest,
        config_size=len(config_bytes),
        config_bytes=config_bytes,
        layers=tuple(built_layers),
    )


def build_image_layout(
    dest: Path,
    *,
    layers: int,
    layer_size: int,
    seed: int,
    platform: Platform = ("linux", "amd64"),
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    tag: str = "latest",
) -> BuiltImage:
    """Write a single-platform OCI image into the layout at ``dest``.

    ``dest`` is created if needed; an existing layout is extended (the new image
    replaces any entry already tagged ``tag`` in ``index.json``). Each layer is a
    gzip'd tar of a directory ``layer<N>/`` with three files totalling
    ``layer_size`` random bytes drawn from ``seed`` (and the platform).
    """
    dest = Path(dest)
    _init_layout(dest)
    image = _write_image_blobs(
        dest,
        layers=layers,
        layer_size=layer_size,
        seed=seed,
        platform=platform,
        labels=labels,
        annotations=annotations,
        tag=tag,
    )
    _tag_in_layout(
        dest,
        {
            "mediaType": MEDIA_TYPE_OCI_MANIFEST,
            "digest": image.manifest_digest,
            "size": image.manifest_size,
        },
        tag,
    )
    return image


def build_multiarch_layout(
    dest: Path,
    platforms: Sequence[Platform] = (("linux", "amd64"), ("linux", "arm64")),
    *,
    layers: int = 2,
    layer_size: int = 4096,
    seed: int = 0,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    index_annotations: Mapping[str, str] | None = None,
    tag: str = "latest",
) -> BuiltIndex:
    """Write an OCI image index over one image per platform into ``dest``.

    Each platform gets its own layers and config (nothing is shared between
    platforms); the index's descriptors carry ``platform``; ``index.json`` points
    at the index under ``tag``. The child manifests are not tagged themselves.
    """
    if not platforms:
        raise ValueError("an index needs at least one platform")
    if len(set(platforms)) != len(platforms):
        raise ValueError("platforms must be distinct")
    dest = Path(dest)
    _init_layout(dest)
    images = tuple(
        _write_image_blobs(
            dest,
            layers=layers,
            layer_size=layer_size,
            seed=seed,
            platform=platform,
            labels=labels,
            annotations=annotations,
            tag=None,
        )
        for platform in platforms
    )
    index: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_INDEX,
        "manifests": [
            {
                "mediaType": MEDIA_TYPE_OCI_MANIFEST,
                "digest": image.manifest_digest,
                "size": image.manifest_size,
                "platform": _platform_json(image.platform),
            }
            for image in images
        ],
    }
    if index_annotations:
        index["annotations"] = dict(index_annotations)
    index_bytes = canonical_json(index)
    index_digest = _write_blob(dest, index_bytes)
    _tag_in_layout(
        dest,
        {"mediaType": MEDIA_TYPE_OCI_INDEX, "digest": index_digest, "size": len(index_bytes)},
        tag,
    )
    return BuiltIndex(
        layout=dest,
        tag=tag,
        index_digest=index_digest,
        index_size=len(index_bytes),
        index_bytes=index_bytes,
        images=images,
    )


# --------------------------------------------------------------------------
# reading (for layouts written by skopeo and friends)


def read_layout_index(layout: Path) -> list[Descriptor]:
    """The descriptors listed in a layout's ``index.json``."""
    index = json.loads((Path(layout) / "index.json").read_bytes())
    result: list[Descriptor] = []
    for entry in index.get("manifests", []):
        platform_json = entry.get("platform")
        platform: Platform | None = None
        if platform_json is not None:
            variant = platform_json.get("variant")
            if variant:
                platform = (platform_json["os"], platform_json["architecture"], variant)
            else:
                platform = (platform_json["os"], platform_json["architecture"])
        result.append(
            Descriptor(
                media_type=entry["mediaType"],
                digest=entry["digest"],
                size=entry["size"],
                annotations=entry.get("annotations"),
                platform=platform,
            )
        )
    return result


def resolve_tag(layout: Path, tag: str) -> Descriptor:
    """The descriptor that ``tag`` names in a layout's ``index.json``."""
    matches = [
        descriptor
        for descriptor in read_layout_index(layout)
        if (descriptor.annotations or {}).get(REF_NAME_ANNOTATION) == tag
    ]
    if len(matches) != 1:
        raise KeyError(f"{tag!r} names {len(matches)} entries in {layout}/index.json")
    return matches[0]


def read_blob(layout: Path, digest: str) -> bytes:
    """The bytes of a blob in a layout, checked against ``digest``."""
    algorithm, _, hex_digest = digest.partition(":")
    data = (Path(layout) / "blobs" / algorithm / hex_digest).read_bytes()
    if algorithm == "sha256" and sha256_digest(data) != digest:
        raise ValueError(f"blob {digest} in {layout} does not match its digest")
    return data
