"""Docker token scopes: ``repository:samalba/my-app:pull,push`` and ``registry:catalog:*``."""

from __future__ import annotations

import re
from dataclasses import dataclass

# resourcetype may carry a class: "repository(plugin)"; the name may contain ':' only for a host port.
_SCOPE_RE = re.compile(r"^(?P<type>[a-z0-9]+)(?:\([a-z0-9]+\))?:(?P<name>.+):(?P<actions>[a-z*]*(?:,[a-z*]+)*)\Z")


@dataclass(frozen=True)
class Scope:
    """A request for (or a grant of) some actions on one resource."""

    type: str
    name: str
    actions: frozenset[str]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"

    def as_claim(self) -> dict[str, object]:
        """The entry of a JWT ``access`` claim."""
        return {"type": self.type, "name": self.name, "actions": sorted(self.actions)}


def parse_scope(text: str) -> Scope | None:
    """Parse one scope string; ``None`` if it is malformed (the token server ignores those)."""
    match = _SCOPE_RE.match(text.strip())
    if not match:
        return None
    actions = frozenset(a for a in match.group("actions").split(",") if a)
    return Scope(match.group("type"), match.group("name"), actions)


def parse_scopes(values: list[str]) -> list[Scope]:
    """Every scope of ``scope`` parameters; one parameter may hold several, space-separated (OAuth2)."""
    scopes: list[Scope] = []
    for value in values:
        for part in value.split():
            scope = parse_scope(part)
            if scope is not None:
                scopes.append(scope)
    return scopes


def merge_scopes(scopes: list[Scope]) -> list[Scope]:
    """One scope per resource with the union of its actions, in first-seen order."""
    merged: dict[tuple[str, str], set[str]] = {}
    for scope in scopes:
        merged.setdefault((scope.type, scope.name), set()).update(scope.actions)
    return [Scope(kind, name, frozenset(actions)) for (kind, name), actions in merged.items()]
