"""The one policy that decides what a principal may do on a repository. Pure: no I/O.

Every path to the registry (Basic auth, bearer tokens, the token server, listings, the
management API) asks :func:`repository_role`; the answer never depends on who asks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from portside.auth.roles import Role


class PrincipalKind(Enum):
    """Who is asking."""

    ANONYMOUS = "anonymous"
    USER = "user"
    ROBOT = "robot"


@dataclass(frozen=True)
class Principal:
    """An authenticated (or anonymous) caller with everything the policy needs to know about it."""

    kind: PrincipalKind
    name: str = ""
    id: int | None = None
    is_admin: bool = False
    owned_organizations: frozenset[str] = frozenset()
    repository_grants: dict[str, Role] = field(default_factory=dict)
    namespace_grants: dict[str, Role] = field(default_factory=dict)
    # A personal access or robot token never allows more than this.
    ceiling: Role | None = None

    @property
    def is_anonymous(self) -> bool:
        """True for callers without credentials."""
        return self.kind is PrincipalKind.ANONYMOUS

    @property
    def audit_name(self) -> str:
        """How the audit log names this principal."""
        return "anonymous" if self.is_anonymous else f"{self.kind.value}:{self.name}"


ANONYMOUS = Principal(PrincipalKind.ANONYMOUS)


@dataclass(frozen=True)
class RepositoryFacts:
    """What the policy needs to know about a repository (which may not exist yet)."""

    name: str
    exists: bool
    public: bool
    # Set for repositories served by a pull-through cache (portside.proxy): who may pull them
    # besides the usual rules: "public" (everyone) or "authenticated" (any signed-in user).
    mirror_pull: str | None = None

    @property
    def namespace(self) -> str:
        """The first path component: a user's or an organization's name."""
        return self.name.split("/", 1)[0]


def repository_role(principal: Principal, repository: RepositoryFacts) -> Role | None:
    """The most ``principal`` may do on ``repository``; ``None`` for nothing at all."""
    candidates: list[Role] = []
    if repository.exists and repository.public:
        candidates.append(Role.PULL)
    if repository.mirror_pull == "public" or (
        repository.mirror_pull == "authenticated" and principal.kind is PrincipalKind.USER
    ):
        candidates.append(Role.PULL)
    if principal.is_admin:
        candidates.append(Role.ADMIN)
    if principal.kind is PrincipalKind.USER and (
        repository.namespace == principal.name or repository.namespace in principal.owned_organizations
    ):
        candidates.append(Role.ADMIN)
    for granted in (
        principal.repository_grants.get(repository.name),
        principal.namespace_grants.get(repository.namespace),
    ):
        if granted is not None:
            candidates.append(granted)
    if not candidates:
        return None
    role = max(candidates)
    return role if principal.ceiling is None else min(role, principal.ceiling)


def may_administer_namespace(principal: Principal, namespace: str) -> bool:
    """Site admins, the namespace's own user, and owners of the namespace's organization."""
    if principal.ceiling is not None and principal.ceiling < Role.ADMIN:
        return False
    return principal.is_admin or (
        principal.kind is PrincipalKind.USER
        and (namespace == principal.name or namespace in principal.owned_organizations)
    )


def has_full_authority(principal: Principal) -> bool:
    """True unless the caller came with a token whose ceiling is below ``admin``.

    Account-level changes (passwords, tokens, organizations, site administration) need it,
    so that a ``pull`` token cannot mint itself a stronger one.
    """
    return principal.ceiling is None or principal.ceiling >= Role.ADMIN


def is_site_admin(principal: Principal) -> bool:
    """A site administrator acting with full authority."""
    return principal.is_admin and has_full_authority(principal)
