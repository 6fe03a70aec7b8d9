"""What a search returns: plain dataclasses, shared by the v1 search, the API and the web UI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from portside.search.query import SearchQuery


@dataclass(frozen=True)
class SearchHit:
    """One repository that matched, with what the caller may want to show about it."""

    name: str
    namespace: str
    description: str | None
    visibility: str
    stars: int
    pulls: int
    last_pushed_at: datetime | None
    # Tags whose name contains a query word.
    matched_tags: tuple[str, ...] = ()
    # Labels ("key=value") whose key or value contains a query word, or that a filter asked for.
    matched_labels: tuple[str, ...] = ()
    # Annotations ("key=value"), likewise.
    matched_annotations: tuple[str, ...] = ()


@dataclass(frozen=True)
class SearchPage:
    """One page of results and how many there are in all."""

    query: SearchQuery
    hits: tuple[SearchHit, ...]
    total: int

    @property
    def page(self) -> int:
        """This page's number, from 1."""
        return self.query.page

    @property
    def per_page(self) -> int:
        """The page size asked for."""
        return self.query.per_page

    @property
    def num_pages(self) -> int:
        """How many pages the results fill (0 when nothing matched)."""
        return (self.total + self.per_page - 1) // self.per_page
