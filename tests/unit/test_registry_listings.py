"""Paginated tag lists and catalog (distribution-spec "Listing Tags": ``n`` and ``last``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portside.metadata.records import Visibility
from portside.oci.errors import ErrorKind, RegistryError
from portside.registry.listings import MAX_PAGE, ListingService, Page, parse_page_size

pytestmark = pytest.mark.anyio


EVERYTHING = Visibility(everything=True)


class FakeStore:
    """The store methods ListingService uses, over a dict of repository -> tags.

    ``cached`` stands for SQLite's read cache: the service then asks for whole tags lists
    (``tag_names``) and pages them itself, instead of a page at a time (``list_tags``).
    """

    def __init__(self, repositories: dict[str, list[str]], cached: bool = False) -> None:
        self.repositories = repositories
        self.calls: list[tuple[object, ...]] = []
        self.read_cache: object | None = object() if cached else None

    async def tag_names(self, repository: str) -> list[str] | None:
        self.calls.append(("tag_names", repository))
        if repository not in self.repositories:
            return None
        return sorted(self.repositories[repository])

    @staticmethod
    def _slice(names: list[str], limit: int | None, after: str | None) -> list[str]:
        ordered = sorted(name for name in names if after is None or name > after)
        return ordered if limit is None else ordered[:limit]

    async def list_tags(self, repository: str, limit: int | None, after: str | None) -> list[str] | None:
        self.calls.append(("list_tags", repository, limit, after))
        if repository not in self.repositories:
            return None
        return self._slice(self.repositories[repository], limit, after)

    async def list_repositories(self, limit: int | None, after: str | None, visible: Visibility) -> list[str]:
        self.calls.append(("list_repositories", limit, after))
        return self._slice(list(self.repositories), limit, after)

    async def repository_exists(self, name: str) -> bool:
        self.calls.append(("repository_exists", name))
        return name in self.repositories


TAGS = ["1.0", "1.1", "2.0", "latest", "stable"]
# Tag listings are checked both ways: paged by the database, and paged from a cached whole list.
CACHED = pytest.mark.parametrize("cached", [False, True], ids=["database", "cached"])


def service(repositories: dict[str, list[str]] | None = None, cached: bool = False) -> tuple[ListingService, FakeStore]:
    store = FakeStore({"app": list(TAGS), "empty": []} if repositories is None else repositories, cached)
    return ListingService(store), store  # type: ignore[arg-type]


# --- parse_page_size ---------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, ""])
def test_absent_page_size_means_no_limit(value: str | None) -> None:
    assert parse_page_size(value) is None


@pytest.mark.parametrize(("value", "size"), [("0", 0), ("1", 1), ("100", 100), ("007", 7), (str(MAX_PAGE), MAX_PAGE)])
def test_non_negative_integer_page_size_is_taken(value: str, size: int) -> None:
    assert parse_page_size(value) == size


@pytest.mark.parametrize("value", [str(MAX_PAGE + 1), "99999999999999999999999"])
def test_page_size_above_the_cap_is_cut_to_the_cap(value: str) -> None:
    assert parse_page_size(value) == MAX_PAGE


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", " 5", "5 ", "+5", "0x10", "1e3", "ten"])
def test_page_size_that_is_not_a_non_negative_integer_is_pagination_invalid(value: str) -> None:
    with pytest.raises(RegistryError) as info:
        parse_page_size(value)
    assert info.value.kind is ErrorKind.PAGINATION_INVALID
    assert info.value.status == 400
    assert info.value.detail == {"n": value}


def test_page_size_of_a_non_ascii_digit_is_pagination_invalid() -> None:
    with pytest.raises(RegistryError) as info:
        parse_page_size("\u00b2")
    assert info.value.kind is ErrorKind.PAGINATION_INVALID


@settings(deadline=None)
@given(n=st.integers(min_value=0, max_value=10**9))
def test_any_non_negative_integer_page_size_is_taken_up_to_the_cap(n: int) -> None:
    assert parse_page_size(str(n)) == min(n, MAX_PAGE)


@settings(deadline=None)
@given(value=st.text(alphabet=st.characters(max_codepoint=127), max_size=12))
def test_any_ascii_page_size_is_taken_or_pagination_invalid(value: str) -> None:
    try:
        size = parse_page_size(value)
    except RegistryError as exc:
        assert exc.kind is ErrorKind.PAGINATION_INVALID
    else:
        assert size is None or 0 <= size <= MAX_PAGE


# --- tags --------------------------------------------------------------------------------


@CACHED
async def test_tags_without_limit_are_all_returned_in_order_with_no_next_page(cached: bool) -> None:
    listings, _ = service(cached=cached)
    assert await listings.tags("app", None, None) == Page(TAGS, None, None)


@CACHED
async def test_tags_page_shorter_than_the_list_names_its_last_tag_for_the_next_page(cached: bool) -> None:
    listings, store = service(cached=cached)
    page = await listings.tags("app", 2, None)
    assert page == Page(["1.0", "1.1"], "1.1", 2)
    # One extra row is fetched to learn whether another page follows (or the whole cached list is read).
    assert store.calls == ([("tag_names", "app")] if cached else [("list_tags", "app", 3, None)])


@CACHED
async def test_tags_page_exactly_as_long_as_the_rest_has_no_next_page(cached: bool) -> None:
    listings, _ = service(cached=cached)
    assert await listings.tags("app", 5, None) == Page(TAGS, None, 5)


@CACHED
async def test_tags_page_longer_than_the_list_returns_all_with_no_next_page(cached: bool) -> None:
    listings, _ = service(cached=cached)
    assert await listings.tags("app", 50, None) == Page(TAGS, None, 50)


@CACHED
async def test_tags_after_last_start_after_it(cached: bool) -> None:
    listings, _ = service(cached=cached)
    assert await listings.tags("app", None, "1.1") == Page(["2.0", "latest", "stable"], None, None)
    assert await listings.tags("app", 2, "1.1") == Page(["2.0", "latest"], "latest", 2)


@CACHED
async def test_tags_after_the_last_tag_are_empty(cached: bool) -> None:
    listings, _ = service(cached=cached)
    assert await listings.tags("app", 2, "stable") == Page([], None, 2)


@CACHED
async def test_zero_tags_requested_is_an_empty_page_without_next_and_without_listing(cached: bool) -> None:
    # "When n is zero, this endpoint MUST return an empty list, and MUST NOT include a Link header."
    listings, store = service(cached=cached)
    assert await listings.tags("app", 0, None) == Page([], None, 0)
    assert [call[0] for call in store.calls] == (["tag_names"] if cached else ["repository_exists"])


@CACHED
async def test_repository_without_tags_lists_no_tags(cached: bool) -> None:
    listings, _ = service(cached=cached)
    assert await listings.tags("empty", None, None) == Page([], None, None)


@CACHED
@pytest.mark.parametrize("limit", [None, 0, 1, 10])
async def test_tags_of_unknown_repository_are_name_unknown(limit: int | None, cached: bool) -> None:
    listings, _ = service(cached=cached)
    with pytest.raises(RegistryError) as info:
        await listings.tags("nope", limit, None)
    assert info.value.kind is ErrorKind.NAME_UNKNOWN
    assert info.value.detail == {"name": "nope"}


# --- catalog -----------------------------------------------------------------------------

REPOSITORIES = {"a": [], "b/c": [], "b/d": [], "library/ubuntu": [], "z": []}


async def test_catalog_without_limit_lists_every_repository_in_order() -> None:
    listings, _ = service(REPOSITORIES)
    assert await listings.catalog(None, None, EVERYTHING) == Page(sorted(REPOSITORIES), None, None)


async def test_catalog_page_names_its_last_repository_for_the_next_page() -> None:
    listings, store = service(REPOSITORIES)
    assert await listings.catalog(2, None, EVERYTHING) == Page(["a", "b/c"], "b/c", 2)
    assert store.calls == [("list_repositories", 3, None)]
    assert await listings.catalog(2, "b/c", EVERYTHING) == Page(["b/d", "library/ubuntu"], "library/ubuntu", 2)
    assert await listings.catalog(2, "library/ubuntu", EVERYTHING) == Page(["z"], None, 2)


async def test_zero_repositories_requested_is_an_empty_page_without_asking_the_store() -> None:
    listings, store = service(REPOSITORIES)
    assert await listings.catalog(0, None, EVERYTHING) == Page([], None, 0)
    assert store.calls == []


async def test_empty_registry_has_an_empty_catalog() -> None:
    listings, _ = service({})
    assert await listings.catalog(None, None, EVERYTHING) == Page([], None, None)
    assert await listings.catalog(3, None, EVERYTHING) == Page([], None, 3)


# --- property: following next_last visits everything once ---------------------------------


@settings(deadline=None)
@given(
    tags=st.lists(st.from_regex(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,8}", fullmatch=True), unique=True, max_size=25),
    page_size=st.integers(min_value=1, max_value=7),
    cached=st.booleans(),
)
async def test_following_next_pages_lists_every_tag_exactly_once_in_order(
    tags: list[str], page_size: int, cached: bool
) -> None:
    listings, _ = service({"repo": tags}, cached)
    seen: list[str] = []
    last: str | None = None
    for _ in range(len(tags) + 2):
        page = await listings.tags("repo", page_size, last)
        assert len(page.items) <= page_size
        seen.extend(page.items)
        if page.next_last is None:
            break
        assert page.items
        assert page.next_last == page.items[-1]
        last = page.next_last
    assert seen == sorted(tags)
