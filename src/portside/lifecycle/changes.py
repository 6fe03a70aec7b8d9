"""How lifecycle services tell other features (the search index, say) that a repository changed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

# Called with a repository's name after its tags changed outside a manifest push or delete
# (restores, retention) or after the whole repository was deleted.
RepositoryChanged = Callable[[str], Awaitable[None]]


async def announce(listeners: Sequence[RepositoryChanged], repository: str) -> None:
    """Tell every listener, in order, that ``repository`` changed."""
    for listener in listeners:
        await listener(repository)


@dataclass(frozen=True)
class RetentionScanned:
    """What one retention run found in one repository (told to webhooks, for instance)."""

    repository: str
    policy: str
    candidates: tuple[str, ...]
    removed: tuple[str, ...]
    dry_run: bool


# Called once per repository a retention run looked at.
ScanListener = Callable[[RetentionScanned], Awaitable[None]]
