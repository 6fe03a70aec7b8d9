"""Parsing the ``WWW-Authenticate`` challenge an upstream registry answers with. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# auth-param = token "=" ( token / quoted-string ), separated by commas (RFC 9110 section 11.2).
_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*(?:,|\Z)')


@dataclass(frozen=True)
class Challenge:
    """One challenge: its scheme in lower case and its parameters (names in lower case)."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        """The token endpoint (Bearer) or protection space (Basic)."""
        return self.params.get("realm")


def parse_challenge(header: str | None) -> Challenge | None:
    """The first challenge of a ``WWW-Authenticate`` header; ``None`` if there is none or it is garbled.

    Registries send one challenge, e.g. ``Bearer realm="https://auth/token",service="reg",
    scope="repository:library/alpine:pull"``; a quoted value may hold commas.
    """
    if not header or not header.strip():
        return None
    scheme, _, rest = header.strip().partition(" ")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9._-]*", scheme):
        return None
    params: dict[str, str] = {}
    position = 0
    rest = rest.strip()
    while position < len(rest):
        found = _PARAM_RE.match(rest, position)
        if found is None:
            # A second challenge ("Basic realm=...") or garbage: keep what was understood.
            break
        value = found.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[found.group(1).lower()] = value
        position = found.end()
    return Challenge(scheme.lower(), params)
