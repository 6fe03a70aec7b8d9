"""Roles and the registry actions they allow. Each role includes the ones below it."""

from __future__ import annotations

from enum import IntEnum


class Role(IntEnum):
    """What a principal may do on a repository, from least to most."""

    PULL = 1
    PUSH = 2
    DELETE = 3
    ADMIN = 4

    @classmethod
    def parse(cls, text: str) -> Role:
        """``"pull"`` -> ``Role.PULL``; raise ``ValueError`` for anything else."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role {text!r}: use pull, push, delete or admin") from None

    @property
    def label(self) -> str:
        """The lower-case name used in APIs."""
        return self.name.lower()


# Docker token scopes name actions; this is what each role grants.
ROLE_ACTIONS: dict[Role, frozenset[str]] = {
    Role.PULL: frozenset({"pull"}),
    Role.PUSH: frozenset({"pull", "push"}),
    Role.DELETE: frozenset({"pull", "push", "delete"}),
    Role.ADMIN: frozenset({"pull", "push", "delete", "*"}),
}


def actions_for(role: Role | None) -> frozenset[str]:
    """The actions a role allows (none for no role)."""
    return ROLE_ACTIONS[role] if role is not None else frozenset()


def role_for_action(action: str) -> Role:
    """The least role that allows an action."""
    return {"pull": Role.PULL, "push": Role.PUSH, "delete": Role.DELETE}.get(action, Role.ADMIN)
