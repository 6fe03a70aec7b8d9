"""What the metadata store returns: plain dataclasses, never database rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# The largest row id: ids are Integer columns (see tables.py), 32-bit on PostgreSQL. A larger number
# from a request names no row, and is refused before it reaches the database (which would fail on it).
MAX_ROW_ID = 2**31 - 1


@dataclass(frozen=True)
class BlobRecord:
    """A blob linked into a repository."""

    digest: str
    size: int


@dataclass(frozen=True)
class ManifestRecord:
    """A stored manifest with its exact bytes."""

    digest: str
    media_type: str
    content: bytes
    artifact_type: str | None = None
    subject_digest: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Length of the stored bytes."""
        return len(self.content)


@dataclass(frozen=True)
class Reference:
    """A manifest's reference to a blob (``kind="blob"``) or a child manifest (``kind="manifest"``)."""

    digest: str
    kind: str


@dataclass(frozen=True)
class ReferrerRecord:
    """A manifest whose ``subject`` is some digest, as the referrers API describes it."""

    digest: str
    media_type: str
    size: int
    artifact_type: str | None
    annotations: dict[str, str]


@dataclass(frozen=True)
class UploadRecord:
    """An upload session's row: in progress, or (with ``closed_at``) finished or cancelled."""

    id: str
    repository: str
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    # The bytes of a small first PATCH, kept in the row until the session needs a file.
    first_chunk: bytes | None = None


@dataclass(frozen=True)
class Visibility:
    """Which repositories a caller may see: all, or public ones plus some namespaces and repositories."""

    everything: bool = False
    namespaces: frozenset[str] = frozenset()
    repositories: frozenset[str] = frozenset()


@dataclass(frozen=True)
class UserRecord:
    """A user account."""

    id: int
    username: str
    password_hash: str | None
    email: str | None
    is_admin: bool
    created_at: datetime


@dataclass(frozen=True)
class OrganizationRecord:
    """An organization."""

    id: int
    name: str
    created_at: datetime


@dataclass(frozen=True)
class MemberRecord:
    """A user's membership of an organization."""

    username: str
    is_owner: bool


@dataclass(frozen=True)
class TeamRecord:
    """A team of an organization and its members."""

    id: int
    organization: str
    name: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class RobotRecord:
    """A robot account, named ``<namespace>+<name>``."""

    id: int
    namespace: str
    name: str
    description: str | None
    created_at: datetime

    @property
    def full_name(self) -> str:
        """The name it logs in with."""
        return f"{self.namespace}+{self.name}"


@dataclass(frozen=True)
class TokenRecord:
    """A personal access token or robot token (never its secret)."""

    id: int
    name: str
    owner: str
    owner_kind: str
    max_role: str
    expires_at: datetime | None
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class GrantRecord:
    """A role granted to a user, team or robot on a repository or a namespace."""

    id: int
    subject_kind: str
    subject: str
    target_kind: str
    target: str
    role: str


@dataclass(frozen=True)
class AuditEvent:
    """One entry of the audit log."""

    at: datetime
    actor: str
    action: str
    target: str | None = None
    address: str | None = None
    detail: dict[str, object] = field(default_factory=dict)
    id: int | None = None


@dataclass(frozen=True)
class RepositoryRecord:
    """A repository's settings."""

    name: str
    public: bool
    description: str | None
    created_at: datetime
