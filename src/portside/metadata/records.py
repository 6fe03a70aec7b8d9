"""What the metadata store returns: plain dataclasses, never database rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


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
    """An upload session in progress."""

    id: str
    repository: str
    created_at: datetime
    updated_at: datetime
