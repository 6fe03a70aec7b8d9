"""The search service: what the v1 search endpoint, the ``/api/v1/search`` API and the web UI call.

Usage (``registry`` is the app's :class:`~portside.registry.services.Registry`)::

    query = parse_query("nginx label:maintainer=ops", platform="linux/arm64", page=1, per_page=25)
    page = await registry.search.search(principal, query)      # or search_visible(visibility, query)
    for hit in page.hits: ...                                   # SearchHit dataclasses

Results include only repositories the caller may pull (with ``auth = "none"``, all of them).
Ranking: an exact name match (the full name, or its last component) first, then name
prefixes, then full-text rank; ties go to the more popular (stars, pulls) and the more
recently pushed. A ``sort`` other than ``relevance`` orders by that field instead.
:class:`~portside.search.query.QueryError` is raised for bad queries.
"""

from __future__ import annotations

from portside.auth.accounts import AccountService
from portside.auth.policy import Principal
from portside.metadata.records import Visibility
from portside.metadata.search_store import SearchStore
from portside.search.query import SearchQuery
from portside.search.results import SearchPage


class SearchService:
    """Searches the repository index."""

    def __init__(self, store: SearchStore, open_access: bool = False) -> None:
        self._store = store
        # With ``auth = "none"`` everyone may pull everything, so everyone finds everything.
        self._open_access = open_access

    async def search(self, principal: Principal, query: SearchQuery) -> SearchPage:
        """One page of the repositories ``principal`` may pull that match ``query``."""
        visible = Visibility(everything=True) if self._open_access else AccountService.visibility(principal)
        return await self.search_visible(visible, query)

    async def search_visible(self, visible: Visibility, query: SearchQuery) -> SearchPage:
        """One page of the repositories in ``visible`` that match ``query``."""
        hits, total = await self._store.search(query, visible)
        return SearchPage(query, tuple(hits), total)
