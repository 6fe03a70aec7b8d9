"""Media types of manifests and the negotiation of ``Accept`` headers."""

from __future__ import annotations

import functools

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_NONDISTRIBUTABLE_PREFIX = "application/vnd.oci.image.layer.nondistributable."

IMAGE_MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
SUPPORTED_MANIFEST_TYPES = IMAGE_MANIFEST_TYPES | INDEX_TYPES
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})

# The digest and size of the two-byte ``{}`` blob that artifacts use as an empty config.
EMPTY_JSON = b"{}"
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def bare_media_type(content_type: str | None) -> str:
    """A Content-Type without parameters, lower-cased (``a/b; charset=x`` -> ``a/b``)."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def parse_accept(header_lines: list[str]) -> list[str]:
    """Merge every ``Accept`` line (clients send several) into one list of bare media types."""
    return list(_parse_accept_lines(tuple(header_lines)))


@functools.lru_cache(maxsize=256)
def _parse_accept_lines(header_lines: tuple[str, ...]) -> tuple[str, ...]:
    # A client sends the same Accept with every pull: parse each distinct one once.
    accepted: list[str] = []
    for line in header_lines:
        for part in line.split(","):
            media_type = bare_media_type(part)
            if media_type:
                accepted.append(media_type)
    return tuple(accepted)


def accepts(accepted: list[str], media_type: str) -> bool:
    """True if ``media_type`` is acceptable; no Accept header at all accepts everything."""
    if not accepted:
        return True
    major = media_type.split("/", 1)[0]
    return any(a in (media_type, "*/*", f"{major}/*") for a in accepted)
