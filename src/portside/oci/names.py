"""Repository names and tags, with the distribution-spec's grammar."""

from __future__ import annotations

import re

from portside.oci.errors import ErrorKind, RegistryError

# distribution-spec: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*\Z")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}\Z")

# Distribution limits a repository name to 255 characters including the host part;
# we keep the same bound for the path so names survive copying between registries.
MAX_NAME_LENGTH = 255


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid repository name, else raise ``NAME_INVALID``."""
    if len(name) > MAX_NAME_LENGTH:
        raise RegistryError(
            ErrorKind.NAME_INVALID, f"repository name longer than {MAX_NAME_LENGTH} characters", {"name": name}
        )
    if not NAME_RE.match(name):
        raise RegistryError(
            ErrorKind.NAME_INVALID,
            "repository name must be lower-case path components of [a-z0-9] separated by '.', '_', '__' or '-'",
            {"name": name},
        )
    return name


def validate_tag(tag: str) -> str:
    """Return ``tag`` if it is a valid tag, else raise ``TAG_INVALID``."""
    if not TAG_RE.match(tag):
        raise RegistryError(ErrorKind.TAG_INVALID, "tag must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", {"tag": tag})
    return tag
