"""What ``portside import`` reads: an OCI image layout directory or a ``docker save`` tarball.

Everything is read and verified before anything is stored: every blob is hashed and its size
checked against its descriptor, every manifest parsed; a missing file, a wrong digest or a file
that is not an archive is a :class:`TransferError` naming it, and nothing is stored.

A docker-archive holds a config and uncompressed layer tars. They become an OCI image manifest
whose layers stay uncompressed (``application/vnd.oci.image.layer.v1.tar``): the layer digests
then equal the ``diff_ids`` the config already lists (checked), nothing is recompressed (fast,
and byte-for-byte reproducible, so an export gives the same archive back), and every current
client pulls it. Layers already gzip-compressed in the archive keep their compression.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import tarfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from portside.oci import media_types as mt
from portside.oci.digest import parse_digest
from portside.oci.errors import RegistryError
from portside.oci.manifest import Descriptor, ParsedManifest, parse_descriptor, parse_manifest
from portside.transfer.platforms import choose_platform

REF_NAME = "org.opencontainers.image.ref.name"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
CHUNK = 1024 * 1024

# Told of progress in bytes.
Progress = Callable[[int], None]


class TransferError(ValueError):
    """The source cannot be imported; the message says why. Nothing was stored."""


@dataclass(frozen=True)
class PlannedBlob:
    """A verified blob and how to read it again."""

    digest: str
    size: int
    open: Callable[[], AbstractContextManager[IO[bytes]]]


@dataclass(frozen=True)
class PlannedManifest:
    """A verified manifest; ``top`` is the one the tag points at."""

    digest: str
    media_type: str
    content: bytes
    top: bool = False


@dataclass
class ImportPlan:
    """Blobs, then manifests (children before their index), all verified."""

    blobs: list[PlannedBlob] = field(default_factory=list)
    manifests: list[PlannedManifest] = field(default_factory=list)
    suggested_tag: str | None = None

    @property
    def total_bytes(self) -> int:
        """Bytes of blob content to store."""
        return sum(blob.size for blob in self.blobs)

    def add_blob(self, blob: PlannedBlob) -> None:
        """Add a blob unless it is already planned."""
        if all(b.digest != blob.digest for b in self.blobs):
            self.blobs.append(blob)

    @property
    def top(self) -> PlannedManifest:
        """The manifest to tag."""
        return next(m for m in self.manifests if m.top)


class Readable(Protocol):
    """Anything with ``read(n)``: files, tar members, gzip streams."""

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes."""
        ...


def _hash_stream(stream: Readable, algorithm: str, progress: Progress | None) -> tuple[str, int]:
    hasher = hashlib.new(algorithm)
    size = 0
    while chunk := stream.read(CHUNK):
        hasher.update(chunk)
        size += len(chunk)
        if progress is not None:
            progress(len(chunk))
    return f"{algorithm}:{hasher.hexdigest()}", size


def _parse(content: bytes, media_type: str | None, where: str) -> ParsedManifest:
    try:
        return parse_manifest(content, media_type)
    except RegistryError as exc:
        raise TransferError(f"{where}: not a valid manifest: {exc.message}") from exc


# OCI image layouts


class OciLayout:
    """An OCI image layout directory (``oci-layout``, ``index.json``, ``blobs/<alg>/<hex>``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        if not (root / "index.json").is_file():
            raise TransferError(f"{root} is not an OCI image layout: it has no index.json")
        try:
            layout = json.loads((root / "oci-layout").read_bytes())
            self.index = json.loads((root / "index.json").read_bytes())
        except (OSError, ValueError) as exc:
            raise TransferError(f"{root} is not a readable OCI image layout: {exc}") from exc
        if not isinstance(layout, dict) or "imageLayoutVersion" not in layout:
            raise TransferError(f"{root}/oci-layout does not name an imageLayoutVersion")
        if not isinstance(self.index, dict) or not isinstance(self.index.get("manifests"), list):
            raise TransferError(f"{root}/index.json has no manifests list")

    def blob_path(self, digest: str) -> Path:
        """Where a blob lives in the layout."""
        parsed = parse_digest(digest)
        return self.root / "blobs" / parsed.algorithm / parsed.encoded

    def _verified_bytes(self, descriptor: Descriptor) -> bytes:
        path = self.blob_path(str(descriptor.digest))
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise TransferError(f"blob {descriptor.digest} is missing from the layout ({path})") from exc
        actual = f"{descriptor.digest.algorithm}:{hashlib.new(descriptor.digest.algorithm, data).hexdigest()}"
        if actual != str(descriptor.digest) or len(data) != descriptor.size:
            raise TransferError(
                f"blob {descriptor.digest} in the layout does not match its descriptor "
                f"(it hashes to {actual}, {len(data)} bytes, expected {descriptor.size})"
            )
        return data

    def _verify_blob(self, descriptor: Descriptor, plan: ImportPlan, progress: Progress | None) -> None:
        digest = str(descriptor.digest)
        path = self.blob_path(digest)
        if not path.is_file():
            if descriptor.is_foreign:
                return
            raise TransferError(f"blob {digest} is missing from the layout ({path})")
        with path.open("rb") as stream:
            actual, size = _hash_stream(stream, descriptor.digest.algorithm, progress)
        if actual != digest:
            raise TransferError(f"blob {digest} in the layout is corrupt: its bytes hash to {actual}")
        if size != descriptor.size:
            raise TransferError(
                f"blob {digest} in the layout holds {size} bytes, its descriptor says {descriptor.size}"
            )

        @contextmanager
        def opener() -> Iterator[IO[bytes]]:
            with path.open("rb") as stream:
                yield stream

        plan.add_blob(PlannedBlob(digest, size, opener))

    def top_descriptors(self) -> list[Descriptor]:
        """The manifests ``index.json`` lists."""
        try:
            return [parse_descriptor(d, "index.json") for d in self.index["manifests"]]
        except RegistryError as exc:
            raise TransferError(f"{self.root}/index.json: {exc.message}") from exc

    def select(self, ref: str | None) -> Descriptor:
        """The entry named ``ref`` (``org.opencontainers.image.ref.name``), or the only one."""
        entries = self.top_descriptors()
        if ref is not None:
            named = [d for d in entries if d.annotations.get(REF_NAME) == ref]
            if not named:
                names = ", ".join(sorted({d.annotations.get(REF_NAME, "") for d in entries} - {""})) or "none"
                raise TransferError(f"the layout has no image named {ref!r} (names: {names})")
            return named[0]
        if len(entries) != 1:
            names = ", ".join(d.annotations.get(REF_NAME, str(d.digest)) for d in entries) or "none"
            raise TransferError(f"the layout holds {len(entries)} images; choose one with --ref ({names})")
        return entries[0]

    def plan(
        self, ref: str | None, all_platforms: bool, platform: str | None, progress: Progress | None = None
    ) -> ImportPlan:
        """Verify the chosen image (and its children with ``all_platforms``) into a plan."""
        chosen = self.select(ref)
        plan = ImportPlan(suggested_tag=chosen.annotations.get(REF_NAME))
        self._plan_manifest(chosen, plan, all_platforms, platform, progress, top=True)
        return plan

    def _plan_manifest(
        self,
        descriptor: Descriptor,
        plan: ImportPlan,
        all_platforms: bool,
        platform: str | None,
        progress: Progress | None,
        top: bool,
    ) -> None:
        content = self._verified_bytes(descriptor)
        parsed = _parse(content, descriptor.media_type, f"manifest {descriptor.digest}")
        if parsed.children:
            if not all_platforms:
                try:
                    child = choose_platform(parsed.children, platform)
                except ValueError as exc:
                    raise TransferError(str(exc)) from exc
                self._plan_manifest(child, plan, all_platforms, platform, progress, top=top)
                return
            for child in parsed.children:
                self._plan_manifest(child, plan, all_platforms, platform, progress, top=False)
        for blob in ([parsed.config] if parsed.config else []) + list(parsed.layers):
            self._verify_blob(blob, plan, progress)
        if all(m.digest != str(descriptor.digest) for m in plan.manifests):
            plan.manifests.append(PlannedManifest(str(descriptor.digest), parsed.media_type, content, top))


# docker save archives


class DockerArchive:
    """A ``docker save`` (or ``skopeo copy ... docker-archive:``) tarball."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with tarfile.open(path, "r:*") as archive:
                # `docker save` links layers that several images share (extractfile follows links).
                self.members = {
                    m.name.removeprefix("./"): m for m in archive.getmembers() if m.isfile() or m.issym() or m.islnk()
                }
                manifest_member = self.members.get("manifest.json")
                if manifest_member is None:
                    raise TransferError(f"{path} is a tar archive but not a docker-archive: it has no manifest.json")
                handle = archive.extractfile(manifest_member)
                assert handle is not None
                self.entries = json.loads(handle.read())
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise TransferError(
                f"{path} is neither an OCI image layout directory nor a docker-archive tarball ({exc})"
            ) from exc
        except ValueError as exc:
            if isinstance(exc, TransferError):
                raise
            raise TransferError(f"{path}: manifest.json is not valid JSON ({exc})") from exc
        if not isinstance(self.entries, list) or not self.entries:
            raise TransferError(f"{path}: manifest.json lists no images")

    @contextmanager
    def _open(self, name: str) -> Iterator[IO[bytes]]:
        member = self.members.get(name.removeprefix("./"))
        if member is None:
            raise TransferError(f"{self.path} has no {name}, which its manifest.json names")
        with tarfile.open(self.path, "r:*") as archive:
            handle = archive.extractfile(member)
            assert handle is not None
            yield handle

    def select(self, ref: str | None) -> dict[str, Any]:
        """The entry whose ``RepoTags`` holds ``ref`` (``name:tag`` or just ``tag``), or the only one."""
        if ref is not None:
            for entry in self.entries:
                tags = entry.get("RepoTags") or []
                if ref in tags or any(t.rsplit(":", 1)[-1] == ref for t in tags):
                    return dict(entry)
            raise TransferError(f"{self.path} has no image tagged {ref!r}")
        if len(self.entries) != 1:
            raise TransferError(f"{self.path} holds {len(self.entries)} images; choose one with --ref")
        return dict(self.entries[0])

    def plan(self, ref: str | None, progress: Progress | None = None) -> ImportPlan:
        """Verify one image of the archive and describe it as an OCI image manifest."""
        entry = self.select(ref)
        config_name, layer_names = entry.get("Config"), entry.get("Layers")
        if not isinstance(config_name, str) or not isinstance(layer_names, list):
            raise TransferError(f"{self.path}: manifest.json entry lacks Config or Layers")
        with self._open(config_name) as handle:
            config = handle.read()
        try:
            diff_ids = json.loads(config)["rootfs"]["diff_ids"]
        except (ValueError, KeyError, TypeError) as exc:
            raise TransferError(f"{self.path}: {config_name} is not an image config with rootfs.diff_ids") from exc
        if len(diff_ids) != len(layer_names):
            raise TransferError(
                f"{self.path}: the config lists {len(diff_ids)} layers, manifest.json {len(layer_names)}"
            )
        plan = ImportPlan()
        tags = entry.get("RepoTags") or []
        if tags:
            plan.suggested_tag = str(tags[0]).rsplit(":", 1)[-1]
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        plan.add_blob(PlannedBlob(config_digest, len(config), lambda: self._open(config_name)))
        layers = [
            self._plan_layer(str(name), str(diff_id), plan, progress)
            for name, diff_id in zip(layer_names, diff_ids, strict=True)
        ]
        manifest = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": layers,
        }
        content = json.dumps(manifest, indent=2).encode()
        digest = "sha256:" + hashlib.sha256(content).hexdigest()
        plan.manifests.append(PlannedManifest(digest, mt.OCI_MANIFEST, content, top=True))
        return plan

    def _plan_layer(self, name: str, diff_id: str, plan: ImportPlan, progress: Progress | None) -> dict[str, Any]:
        with self._open(name) as handle:
            compressed = handle.read(2) == b"\x1f\x8b"
        with self._open(name) as handle:
            digest, size = _hash_stream(handle, "sha256", progress)
        if compressed:
            with self._open(name) as handle, gzip.GzipFile(fileobj=handle) as plain:
                uncompressed_digest, _ = _hash_stream(plain, "sha256", None)
        else:
            uncompressed_digest = digest
        if uncompressed_digest != diff_id:
            raise TransferError(
                f"{self.path}: layer {name} does not match the config's diff_id {diff_id} "
                f"(its content hashes to {uncompressed_digest})"
            )
        plan.add_blob(PlannedBlob(digest, size, lambda: self._open(name)))
        return {"mediaType": OCI_LAYER_GZIP if compressed else OCI_LAYER, "digest": digest, "size": size}


def open_source(path: Path) -> OciLayout | DockerArchive:
    """An OCI layout for a directory, a docker-archive for a file; a clear error otherwise."""
    if path.is_dir():
        return OciLayout(path)
    if path.is_file():
        return DockerArchive(path)
    raise TransferError(f"{path} does not exist")
