"""Pure helpers the templates use to show sizes, digests and times."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from portside.oci.names import MAX_NAME_LENGTH, NAME_RE, TAG_RE

# Digests as they appear in page paths; the manifest lookup checks the rest.
DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+\Z")

UNITS = ["B", "KB", "MB", "GB", "TB", "PB"]


def human_size(size: int | None) -> str:
    """A byte count as people read it (decimal units, as ``docker images`` shows them)."""
    if size is None:
        return "-"
    value = float(size)
    for unit in UNITS:
        if value < 1000 or unit == UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def short_digest(digest: str | None, length: int = 12) -> str:
    """``sha256:0123456789ab``: the algorithm and the first ``length`` hex digits."""
    if not digest:
        return ""
    algorithm, _, encoded = digest.partition(":")
    return f"{algorithm}:{encoded[:length]}" if encoded else digest[:length]


def timestamp(value: datetime | None) -> str:
    """A UTC time to the minute, e.g. ``2026-11-28 09:15 UTC``."""
    if value is None:
        return "-"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def repository_path(name: str) -> str:
    """The repository page's path (names keep their slashes)."""
    return "/r/" + quote(name, safe="/")


def tag_path(name: str, tag: str) -> str:
    """A tag's page."""
    return f"{repository_path(name)}/-/tag/{quote(tag, safe='')}"


def manifest_path(name: str, digest: str) -> str:
    """A manifest's page, by digest."""
    return f"{repository_path(name)}/-/manifest/{quote(digest, safe=':')}"


def namespace_path(namespace: str) -> str:
    """A user's or organization's page."""
    return "/n/" + quote(namespace, safe="")


def pull_command(host: str, name: str, reference: str) -> str:
    """``docker pull HOST/NAME:TAG`` (or ``@DIGEST``), exactly as a user would type it."""
    separator = "@" if ":" in reference and reference.split(":", 1)[0] in ("sha256", "sha512") else ":"
    return f"docker pull {host}/{name}{separator}{reference}"


@dataclass(frozen=True)
class RepositoryTarget:
    """What a ``/r/...`` path names: a repository, one of its tags, or one of its manifests."""

    name: str
    kind: str  # "repository", "tag", "manifest" or "star"
    reference: str | None = None


def parse_repository_path(path: str) -> RepositoryTarget | None:
    """Split ``NAME``, ``NAME/-/tag/TAG``, ``NAME/-/manifest/DIGEST`` or ``NAME/-/star``; ``None`` if malformed.

    ``-`` cannot be a name component (components start with a letter or digit), so it marks
    where the name ends, as on GitLab.
    """
    name, separator, rest = path.strip("/").partition("/-/")
    if not NAME_RE.match(name) or len(name) > MAX_NAME_LENGTH:
        return None
    if not separator:
        return RepositoryTarget(name, "repository")
    kind, _, reference = rest.partition("/")
    if kind == "tag" and TAG_RE.match(reference):
        return RepositoryTarget(name, "tag", reference)
    if kind == "manifest" and DIGEST_RE.match(reference):
        return RepositoryTarget(name, "manifest", reference)
    if kind == "star" and not reference:
        return RepositoryTarget(name, "star")
    return None
