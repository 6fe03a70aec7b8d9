"""How lifecycle services tell other features (the search index, say) that a repository changed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

# Called with a repository's name after its tags changed outside a manifest push or delete
# (restores, retention) or after the whole repository was deleted.
RepositoryChanged = Callable[[str], Awaitable[None]]


async def announce(listeners: Sequence[RepositoryChanged], repository: str) -> None:
    """Tell every listener, in order, that ``repository`` changed."""
    for listener in listeners:
        await listener(repository)
