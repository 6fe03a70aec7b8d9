"""What retention policies are evaluated on: the policy itself and a repository's tags, manifests and pulls.

Plain dataclasses shared by the retention store (which fills them) and the pure evaluation in
:mod:`portside.lifecycle.retention_policy`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

# The most a policy may keep, and the longest age it may name (a hundred years).
MAX_KEEP_LAST = 1_000_000
MAX_AGE = timedelta(days=36_500)


@dataclass(frozen=True)
class Policy:
    """What one retention policy asks for; ``None`` leaves that part out."""

    tag_pattern: str = "*"
    keep_last: int | None = None
    delete_older_than: timedelta | None = None
    untagged_after: timedelta | None = None
    keep_pulled_within: timedelta | None = None

    def __post_init__(self) -> None:
        if self.keep_last is not None and not 0 <= self.keep_last <= MAX_KEEP_LAST:
            raise ValueError(f"keep_last must be 0 to {MAX_KEEP_LAST:,}")
        for name in ("delete_older_than", "untagged_after", "keep_pulled_within"):
            value = getattr(self, name)
            if value is not None and not timedelta(0) <= value <= MAX_AGE:
                raise ValueError(f"{name} must be 0 to {MAX_AGE.days:,} days")
        if self.keep_last is None and self.delete_older_than is None and self.untagged_after is None:
            raise ValueError("a policy needs keep_last, delete_older_than or untagged_after")


@dataclass(frozen=True)
class TagFacts:
    """A tag as retention sees it: where it points and when it was last pushed or moved."""

    name: str
    digest: str
    updated_at: datetime


@dataclass(frozen=True)
class ManifestInfo:
    """A manifest as retention sees it."""

    digest: str
    created_at: datetime
    subject: str | None = None
    children: frozenset[str] = frozenset()


@dataclass
class RepositoryFacts:
    """One repository's tags, manifests and last pulls."""

    tags: list[TagFacts]
    manifests: dict[str, ManifestInfo]
    last_pulled: dict[str, datetime] = field(default_factory=dict)
