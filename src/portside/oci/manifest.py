"""Parsing and structural validation of manifests (OCI image-spec, Docker schema 2)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from portside.oci import media_types as mt
from portside.oci.digest import Digest, parse_digest
from portside.oci.errors import ErrorKind, RegistryError

# Content-Types that say nothing about which manifest this is.
_GENERIC_CONTENT_TYPES = frozenset({"", "application/json", "application/octet-stream"})


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: what a manifest says about one blob or manifest it references."""

    media_type: str
    digest: Digest
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    platform: dict[str, Any] | None = None
    urls: tuple[str, ...] = ()

    @property
    def is_foreign(self) -> bool:
        """Foreign/non-distributable layers live elsewhere; a registry need not hold them."""
        return bool(self.urls) and (
            self.media_type == mt.DOCKER_FOREIGN_LAYER or self.media_type.startswith(mt.OCI_NONDISTRIBUTABLE_PREFIX)
        )


@dataclass(frozen=True)
class ParsedManifest:
    """A manifest's media type and every reference it makes."""

    media_type: str
    config: Descriptor | None
    layers: tuple[Descriptor, ...]
    children: tuple[Descriptor, ...]
    subject: Descriptor | None
    artifact_type: str | None
    annotations: dict[str, str]

    @property
    def is_index(self) -> bool:
        """True for OCI indexes and Docker manifest lists."""
        return self.media_type in mt.INDEX_TYPES

    @property
    def referrer_artifact_type(self) -> str | None:
        """The artifactType the referrers API reports: ``artifactType``, else the config's media type."""
        if self.artifact_type:
            return self.artifact_type
        if self.config is not None:
            return self.config.media_type
        return None


def _invalid(message: str, detail: Any = None) -> RegistryError:
    return RegistryError(ErrorKind.MANIFEST_INVALID, message, detail)


def _string_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _invalid(f"{what} must be an object of strings")
    return dict(value)


def parse_descriptor(value: Any, where: str) -> Descriptor:
    """Validate one descriptor object; ``where`` names it in error messages."""
    if not isinstance(value, dict):
        raise _invalid(f"{where} must be a descriptor object")
    media_type = value.get("mediaType")
    if not isinstance(media_type, str) or not media_type:
        raise _invalid(f"{where}.mediaType must be a non-empty string")
    raw_digest = value.get("digest")
    if not isinstance(raw_digest, str):
        raise _invalid(f"{where}.digest must be a string")
    try:
        digest = parse_digest(raw_digest)
    except RegistryError as exc:
        raise _invalid(f"{where}.digest: {exc.message}", {"digest": raw_digest}) from exc
    size = value.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{where}.size must be a non-negative integer")
    artifact_type = value.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise _invalid(f"{where}.artifactType must be a string")
    platform = value.get("platform")
    if platform is not None and not isinstance(platform, dict):
        raise _invalid(f"{where}.platform must be an object")
    urls = value.get("urls") or []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise _invalid(f"{where}.urls must be a list of strings")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        artifact_type=artifact_type,
        annotations=_string_map(value.get("annotations"), f"{where}.annotations"),
        platform=platform,
        urls=tuple(urls),
    )


def _resolve_media_type(document: dict[str, Any], content_type: str) -> str:
    declared = document.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise _invalid("mediaType must be a string")
    schema_version = document.get("schemaVersion")
    if content_type in mt.SCHEMA1_TYPES or declared in mt.SCHEMA1_TYPES or schema_version == 1:
        raise _invalid(
            "Docker schema 1 manifests are not supported; push schema 2 or OCI manifests instead",
            {"mediaType": declared or content_type},
        )
    if content_type in mt.SUPPORTED_MANIFEST_TYPES:
        if declared and declared != content_type:
            raise _invalid(
                "manifest mediaType does not match Content-Type", {"mediaType": declared, "contentType": content_type}
            )
        return content_type
    if content_type not in _GENERIC_CONTENT_TYPES:
        raise RegistryError(
            ErrorKind.MANIFEST_UNSUPPORTED,
            f"unsupported manifest media type {content_type!r}",
            {"supported": sorted(mt.SUPPORTED_MANIFEST_TYPES)},
        )
    if declared in mt.SUPPORTED_MANIFEST_TYPES:
        return declared
    if declared:
        raise RegistryError(
            ErrorKind.MANIFEST_UNSUPPORTED,
            f"unsupported manifest media type {declared!r}",
            {"supported": sorted(mt.SUPPORTED_MANIFEST_TYPES)},
        )
    raise _invalid("manifest media type unknown: send it in Content-Type or mediaType")


def parse_manifest(data: bytes, content_type: str | None) -> ParsedManifest:
    """Parse manifest bytes as sent with ``content_type``; raise ``MANIFEST_INVALID`` if malformed."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _invalid(f"manifest is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise _invalid("manifest must be a JSON object")
    media_type = _resolve_media_type(document, mt.bare_media_type(content_type))
    if document.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2", {"schemaVersion": document.get("schemaVersion")})
    artifact_type = document.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise _invalid("artifactType must be a string")
    subject = parse_descriptor(document["subject"], "subject") if document.get("subject") is not None else None
    annotations = _string_map(document.get("annotations"), "annotations")

    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    children: tuple[Descriptor, ...] = ()
    if media_type in mt.INDEX_TYPES:
        raw_children = document.get("manifests")
        if not isinstance(raw_children, list):
            raise _invalid("manifests must be a list of descriptors")
        children = tuple(parse_descriptor(c, f"manifests[{i}]") for i, c in enumerate(raw_children))
    else:
        config = parse_descriptor(document.get("config"), "config")
        raw_layers = document.get("layers", [])
        if not isinstance(raw_layers, list):
            raise _invalid("layers must be a list of descriptors")
        layers = tuple(parse_descriptor(layer, f"layers[{i}]") for i, layer in enumerate(raw_layers))
    return ParsedManifest(
        media_type=media_type,
        config=config,
        layers=layers,
        children=children,
        subject=subject,
        artifact_type=artifact_type,
        annotations=annotations,
    )
