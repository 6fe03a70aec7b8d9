"""What a manifest says about itself, for search: labels, annotations, artifact type, platforms. Pure.

Read once when the manifest is pushed (the image config blob is small and read then), stored in
``manifest_facets``, and never re-read at query time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from portside.oci import media_types as mt
from portside.oci.manifest import ParsedManifest

# Config blobs larger than this are not read for labels (image configs are a few KiB).
MAX_CONFIG_BYTES = 256 * 1024
MAX_KEY = 255
MAX_VALUE = 4096

IMAGE_CONFIG_TYPES = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)


@dataclass(frozen=True)
class Facet:
    """One fact: ``kind`` is label, annotation, artifact_type or platform."""

    kind: str
    key: str
    value: str = ""


def wants_config(manifest: ParsedManifest) -> bool:
    """True if the manifest's config is an image config worth reading for labels and platform."""
    config = manifest.config
    return (
        config is not None
        and config.media_type in IMAGE_CONFIG_TYPES
        and 0 < config.size <= MAX_CONFIG_BYTES
        and str(config.digest) != mt.EMPTY_JSON_DIGEST
    )


def _platform(os: Any, architecture: Any, variant: Any = None) -> str | None:
    if not isinstance(os, str) or not os:
        return None
    parts = [os.lower()]
    if isinstance(architecture, str) and architecture:
        parts.append(architecture.lower())
        if isinstance(variant, str) and variant:
            parts.append(variant.lower())
    return "/".join(parts)


def _clip(key: str, value: str) -> tuple[str, str]:
    # PostgreSQL text cannot hold NUL, which JSON strings may; a label must never fail a push.
    return key.replace("\x00", "")[:MAX_KEY], value.replace("\x00", "")[:MAX_VALUE]


def facets_of(manifest: ParsedManifest, config: bytes | None) -> list[Facet]:
    """The facets of a manifest and, for images, of its config blob's bytes (``None``: not read)."""
    found: dict[tuple[str, str], Facet] = {}

    def add(kind: str, key: str, value: str = "") -> None:
        key, value = _clip(key, value)
        found.setdefault((kind, key), Facet(kind, key, value))

    for key, value in manifest.annotations.items():
        add("annotation", key, value)
    artifact_type = manifest.referrer_artifact_type
    if artifact_type and not (manifest.config is not None and manifest.config.media_type in IMAGE_CONFIG_TYPES):
        add("artifact_type", artifact_type)
    for child in manifest.children:
        platform = child.platform or {}
        name = _platform(platform.get("os"), platform.get("architecture"), platform.get("variant"))
        if name:
            add("platform", name)
    if config is not None:
        for kind, key, value in _config_facts(config):
            add(kind, key, value)
    return list(found.values())


def _config_facts(config: bytes) -> list[tuple[str, str, str]]:
    try:
        document = json.loads(config)
    except ValueError:
        return []
    if not isinstance(document, dict):
        return []
    facts: list[tuple[str, str, str]] = []
    name = _platform(document.get("os"), document.get("architecture"), document.get("variant"))
    if name:
        facts.append(("platform", name, ""))
    inner = document.get("config")
    labels = inner.get("Labels") if isinstance(inner, dict) else None
    if isinstance(labels, dict):
        facts.extend(("label", str(k), str(v)) for k, v in labels.items() if isinstance(k, str) and k)
    return facts
