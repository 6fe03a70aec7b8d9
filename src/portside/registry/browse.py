"""What the web UI shows about a repository's tags and manifests: sizes, platforms, config, referrers.

The pure functions (:func:`image_size`, :func:`summarise_config`, :func:`referrer_kind`,
:func:`tag_summaries`) do the reading; :class:`BrowseService` fetches with a constant number of
queries however many tags there are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from portside.metadata.browse_store import BrowseStore, TaggedManifestRow
from portside.metadata.records import ManifestRecord
from portside.metadata.store import MetadataStore
from portside.oci import media_types as mt
from portside.oci.digest import parse_digest
from portside.oci.errors import RegistryError
from portside.oci.manifest import Descriptor, ParsedManifest, parse_manifest
from portside.registry.blobs import BlobService
from portside.registry.referrers import ReferrerService

# Image configs are a few KiB; larger ones are not read for the page.
MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True)
class TagSummary:
    """One row of a repository's tags table."""

    name: str
    digest: str
    media_type: str
    is_index: bool
    # Compressed bytes to pull: config and layers (every platform's, for an index); None if unknown.
    size: int | None
    platforms: tuple[str, ...]
    pushed_at: datetime


@dataclass(frozen=True)
class HistoryEntry:
    """One step of how an image was built."""

    created: str | None
    created_by: str
    comment: str | None
    empty_layer: bool


@dataclass(frozen=True)
class ImageConfigSummary:
    """The parts of an image config people look at."""

    platform: str | None
    created: str | None
    env: tuple[str, ...]
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None
    working_dir: str | None
    user: str | None
    exposed_ports: tuple[str, ...]
    labels: dict[str, str]
    history: tuple[HistoryEntry, ...]


@dataclass(frozen=True)
class ChildManifest:
    """A platform of an index."""

    digest: str
    media_type: str
    size: int
    platform: str
    present: bool


@dataclass(frozen=True)
class ReferrerSummary:
    """A signature, SBOM, attestation or other artifact attached to a manifest."""

    digest: str
    media_type: str
    artifact_type: str | None
    size: int
    kind: str
    annotations: dict[str, str]


@dataclass(frozen=True)
class ManifestView:
    """Everything a tag or manifest page shows."""

    repository: str
    tag: str | None
    digest: str
    media_type: str
    size: int
    pretty_json: str
    is_index: bool
    artifact_type: str | None
    annotations: dict[str, str]
    subject: str | None
    config_descriptor: Descriptor | None
    layers: tuple[Descriptor, ...]
    total_size: int | None
    config: ImageConfigSummary | None
    children: tuple[ChildManifest, ...]
    referrers: tuple[ReferrerSummary, ...] = field(default_factory=tuple)


def image_size(parsed: ParsedManifest) -> int:
    """Bytes a client downloads for an image: its config and its layers (compressed)."""
    return (parsed.config.size if parsed.config else 0) + sum(layer.size for layer in parsed.layers)


def platform_name(platform: dict[str, Any] | None) -> str:
    """``os/architecture[/variant]`` of a descriptor's platform, or ``unknown``."""
    if not platform:
        return "unknown"
    parts = [str(platform.get(key)) for key in ("os", "architecture", "variant") if platform.get(key)]
    return "/".join(parts) or "unknown"


def _strings(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    if isinstance(value, str):
        return (value,)
    return None


def summarise_config(data: bytes) -> ImageConfigSummary | None:
    """The env, entrypoint, cmd, labels and history of an image config; ``None`` if it is not one."""
    try:
        document = json.loads(data)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    inner = document.get("config")
    inner = inner if isinstance(inner, dict) else {}
    labels = inner.get("Labels")
    history: list[HistoryEntry] = []
    for step in document.get("history") or []:
        if isinstance(step, dict):
            history.append(
                HistoryEntry(
                    created=step.get("created") if isinstance(step.get("created"), str) else None,
                    created_by=str(step.get("created_by") or ""),
                    comment=step.get("comment") if isinstance(step.get("comment"), str) else None,
                    empty_layer=bool(step.get("empty_layer")),
                )
            )
    ports = inner.get("ExposedPorts")
    os_name, architecture = document.get("os"), document.get("architecture")
    platform = platform_name({"os": os_name, "architecture": architecture, "variant": document.get("variant")})
    return ImageConfigSummary(
        platform=None if platform == "unknown" else platform,
        created=document.get("created") if isinstance(document.get("created"), str) else None,
        env=_strings(inner.get("Env")) or (),
        entrypoint=_strings(inner.get("Entrypoint")),
        cmd=_strings(inner.get("Cmd")),
        working_dir=inner.get("WorkingDir") or None if isinstance(inner.get("WorkingDir"), str) else None,
        user=inner.get("User") or None if isinstance(inner.get("User"), str) else None,
        exposed_ports=tuple(sorted(ports)) if isinstance(ports, dict) else (),
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
        history=tuple(history),
    )


def referrer_kind(artifact_type: str | None) -> str:
    """What people call an attached artifact: Signature, SBOM, Attestation, or Artifact."""
    kind = (artifact_type or "").lower()
    if "signature" in kind or kind.endswith(".sig.v1+json") or "cosign.artifact.sig" in kind:
        return "Signature"
    if "sbom" in kind or "spdx" in kind or "cyclonedx" in kind or "syft" in kind:
        return "SBOM"
    if "in-toto" in kind or "attestation" in kind or "provenance" in kind or "vex" in kind:
        return "Attestation"
    return "Artifact"


def _parse(media_type: str, content: bytes) -> ParsedManifest | None:
    try:
        return parse_manifest(content, media_type)
    except RegistryError:
        return None


def index_children(parsed: ParsedManifest) -> set[str]:
    """Digests of the manifests an index lists."""
    return {str(child.digest) for child in parsed.children}


@dataclass(frozen=True)
class _Outline:
    """Just what the tags table needs of a stored (already validated) manifest."""

    is_index: bool
    size: int | None
    # (digest, platform name) of an index's children.
    children: tuple[tuple[str, str | None], ...] = ()


def _size(value: Any) -> int | None:
    return value.get("size") if isinstance(value, dict) and isinstance(value.get("size"), int) else None


def outline(media_type: str, content: bytes) -> _Outline | None:
    """Sizes and children of a stored manifest, read without re-validating it (it was checked at push).

    The tags table reads hundreds of manifests per page view; a full parse of each costs several
    times more than this.
    """
    try:
        document = json.loads(content)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    if media_type in mt.INDEX_TYPES:
        children = tuple(
            (str(child.get("digest")), platform_name(child["platform"]) if child.get("platform") else None)
            for child in document.get("manifests") or []
            if isinstance(child, dict)
        )
        return _Outline(True, None, children)
    sizes = [_size(document.get("config")), *(_size(layer) for layer in document.get("layers") or [])]
    return _Outline(False, None if None in sizes else sum(s for s in sizes if s is not None))


def tag_summaries(
    rows: list[TaggedManifestRow], children: dict[str, tuple[str, bytes]], platforms: dict[str, list[str]]
) -> list[TagSummary]:
    """The tags table from the tagged manifests, the children of tagged indexes, and recorded platforms."""
    child_sizes: dict[str, int | None] = {}
    for digest, (media_type, content) in children.items():
        child = outline(media_type, content)
        child_sizes[digest] = child.size if child is not None else None
    summaries: list[TagSummary] = []
    for row in rows:
        found = outline(row.media_type, row.content)
        size: int | None = None
        row_platforms: tuple[str, ...] = tuple(platforms.get(row.digest, ()))
        if found is not None and found.is_index:
            sizes = [child_sizes.get(digest) for digest, _ in found.children]
            size = sum(s for s in sizes if s is not None) if sizes and all(s is not None for s in sizes) else None
            named = [platform for _, platform in found.children if platform]
            row_platforms = tuple(dict.fromkeys(named)) or row_platforms
        elif found is not None:
            size = found.size
        summaries.append(
            TagSummary(
                name=row.tag,
                digest=row.digest,
                media_type=row.media_type,
                is_index=found is not None and found.is_index,
                size=size,
                platforms=row_platforms,
                pushed_at=row.updated_at,
            )
        )
    return summaries


class BrowseService:
    """Tags tables and manifest pages for the web UI (the caller checks access first)."""

    def __init__(self, store: MetadataStore, blobs: BlobService, referrers: ReferrerService) -> None:
        self._store = store
        self._browse = BrowseStore(store)
        self._blobs = blobs
        self._referrers = referrers

    async def tags(self, repository: str) -> list[TagSummary]:
        """Every tag with digest, size, platforms and push time: three queries whatever the count."""
        rows = await self._browse.tagged_manifests(repository)
        wanted: set[str] = set()
        for row in rows:
            if row.media_type in mt.INDEX_TYPES:
                found = outline(row.media_type, row.content)
                if found is not None:
                    wanted |= {digest for digest, _ in found.children}
        children = await self._browse.manifests_content(repository, wanted)
        return tag_summaries(rows, children, await self._browse.platforms(repository))

    async def manifest(self, repository: str, tag: str | None, digest: str | None) -> ManifestView | None:
        """A manifest by tag or digest, with its config, children and referrers; ``None`` if absent."""
        record: ManifestRecord | None
        if tag is not None:
            record = await self._store.get_manifest_by_tag(repository, tag)
        else:
            assert digest is not None
            record = await self._store.get_manifest(repository, digest)
        if record is None:
            return None
        parsed = _parse(record.media_type, record.content)
        try:
            pretty = json.dumps(json.loads(record.content), indent=2, ensure_ascii=False)
        except ValueError:
            pretty = record.content.decode("utf-8", "replace")
        config: ImageConfigSummary | None = None
        children: tuple[ChildManifest, ...] = ()
        total: int | None = None
        if parsed is not None and parsed.is_index:
            present = await self._browse.manifests_content(repository, index_children(parsed))
            children = tuple(
                ChildManifest(
                    str(child.digest),
                    child.media_type,
                    child.size,
                    platform_name(child.platform),
                    str(child.digest) in present,
                )
                for child in parsed.children
            )
        elif parsed is not None:
            total = image_size(parsed)
            if parsed.config is not None and parsed.config.media_type not in (mt.OCI_EMPTY,):
                config = await self._config(repository, parsed.config)
        referrers = await self._referrers_of(repository, record.digest)
        return ManifestView(
            repository=repository,
            tag=tag,
            digest=record.digest,
            media_type=record.media_type,
            size=len(record.content),
            pretty_json=pretty,
            is_index=parsed is not None and parsed.is_index,
            artifact_type=record.artifact_type,
            annotations=record.annotations,
            subject=record.subject_digest,
            config_descriptor=parsed.config if parsed is not None else None,
            layers=parsed.layers if parsed is not None else (),
            total_size=total,
            config=config,
            children=children,
            referrers=referrers,
        )

    async def _config(self, repository: str, descriptor: Descriptor) -> ImageConfigSummary | None:
        if descriptor.size > MAX_CONFIG_BYTES:
            return None
        try:
            content = await self._blobs.open(repository, descriptor.digest)
        except RegistryError:
            return None
        chunks: list[bytes] = []
        async for chunk in self._blobs.stream(content, None):
            chunks.append(chunk)
        return summarise_config(b"".join(chunks))

    async def _referrers_of(self, repository: str, digest: str) -> tuple[ReferrerSummary, ...]:
        index = await self._referrers.list(repository, parse_digest(digest), None)
        found: list[ReferrerSummary] = []
        for item in json.loads(index.content).get("manifests", []):
            artifact_type = item.get("artifactType")
            found.append(
                ReferrerSummary(
                    digest=item["digest"],
                    media_type=item["mediaType"],
                    artifact_type=artifact_type,
                    size=int(item["size"]),
                    kind=referrer_kind(artifact_type),
                    annotations=item.get("annotations") or {},
                )
            )
        return tuple(found)
