"""Paginated listings: a repository's tags and the registry's catalog."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from portside.digits import parse_digits
from portside.metadata.records import Visibility
from portside.metadata.store import MetadataStore
from portside.oci.errors import ErrorKind, RegistryError

# A bound on one page, so a client cannot ask the database for everything at once.
MAX_PAGE = 10_000


@dataclass(frozen=True)
class Page:
    """One page of names and, if more follow, the ``last`` to ask for the next page with."""

    items: list[str]
    next_last: str | None
    limit: int | None


def parse_page_size(value: str | None) -> int | None:
    """The ``n`` query parameter: absent, or an integer from 0; raise ``PAGINATION_NUMBER_INVALID``."""
    if value is None or value == "":
        return None
    number = parse_digits(value)
    if number is None:
        raise RegistryError(ErrorKind.PAGINATION_INVALID, "n must be a non-negative integer", {"n": value})
    return min(number, MAX_PAGE)


class ListingService:
    """Tags lists and the catalog, in lexical order."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    async def tags(self, repository: str, limit: int | None, last: str | None) -> Page:
        """A page of ``repository``'s tags; ``NAME_UNKNOWN`` if there is no such repository."""
        if self._store.read_cache is not None:
            # The whole list is kept in memory until the database changes: a page is a slice of it.
            every = await self._store.tag_names(repository)
            if every is None:
                raise RegistryError(ErrorKind.NAME_UNKNOWN, detail={"name": repository})
            if limit == 0:
                return Page([], None, 0)
            start = 0 if last is None else bisect.bisect_right(every, last)
            return _page(every[start:] if limit is None else every[start : start + limit + 1], limit)
        if limit == 0:
            if not await self._store.repository_exists(repository):
                raise RegistryError(ErrorKind.NAME_UNKNOWN, detail={"name": repository})
            return Page([], None, 0)
        names = await self._store.list_tags(repository, None if limit is None else limit + 1, last)
        if names is None:
            raise RegistryError(ErrorKind.NAME_UNKNOWN, detail={"name": repository})
        return _page(names, limit)

    async def catalog(self, limit: int | None, last: str | None, visible: Visibility) -> Page:
        """A page of the repository names the caller may see."""
        if limit == 0:
            return Page([], None, 0)
        return _page(await self._store.list_repositories(None if limit is None else limit + 1, last, visible), limit)


def _page(names: list[str], limit: int | None) -> Page:
    if limit is not None and len(names) > limit:
        names = names[:limit]
        return Page(names, names[-1], limit)
    return Page(names, None, limit)
