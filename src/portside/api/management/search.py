"""``/search``, ``/repository-metadata``, ``/stars`` and ``/explore``: finding repositories and
describing them (description, Markdown README, stars, pulls, last push, size).

Results and metadata include only repositories the caller may pull; anonymous callers see
public ones. Repository names contain ``/``, so the name is always the rest of the path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from portside.api.management.deps import AnyCallerDep, CallerDep, RegistryDep
from portside.metadata.repository_info_store import UNCHANGED
from portside.oci.errors import ErrorKind, RegistryError
from portside.registry.markdown import MAX_README_BYTES
from portside.registry.repository_info import (
    IMAGE_DESCRIPTION_KEY,
    MAX_DESCRIPTION,
    MAX_LISTING,
    RepositoryDetails,
    RepositorySummary,
)
from portside.search.query import MAX_PAGE, MAX_PER_PAGE, QueryError, parse_query
from portside.search.results import SearchHit

# What lists and search results say of their description.
SHOWN_DESCRIPTION_TEXT = (
    f"As written by the repository's admins; if none is, the newest tag's `{IMAGE_DESCRIPTION_KEY}`."
)

router = APIRouter(tags=["search"])


class SearchResult(BaseModel):
    """A repository that matched."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    namespace: str
    description: str | None = Field(description=SHOWN_DESCRIPTION_TEXT)
    visibility: Literal["public", "private"]
    stars: int
    pulls: int
    last_pushed_at: datetime | None
    matched_tags: list[str] = Field(description="Tags whose name contains a query word.")
    matched_labels: list[str] = Field(description="Image labels (`key=value`) that matched a word or a filter.")
    matched_annotations: list[str] = Field(description="OCI annotations (`key=value`) that matched.")


class SearchResults(BaseModel):
    """One page of results, best first."""

    query: str
    total: int = Field(description="Matches in all.")
    page: int
    per_page: int
    num_pages: int
    results: list[SearchResult]


def _hit(hit: SearchHit) -> SearchResult:
    return SearchResult(
        name=hit.name,
        namespace=hit.namespace,
        description=hit.description,
        visibility="public" if hit.visibility == "public" else "private",
        stars=hit.stars,
        pulls=hit.pulls,
        last_pushed_at=hit.last_pushed_at,
        matched_tags=list(hit.matched_tags),
        matched_labels=list(hit.matched_labels),
        matched_annotations=list(hit.matched_annotations),
    )


@router.get("/search", summary="Search repositories")
async def search_repositories(
    caller: AnyCallerDep,
    registry: RegistryDep,
    q: Annotated[
        str,
        Query(
            max_length=512,
            description="Words matched against names, descriptions, READMEs, tags, labels and annotations. "
            "May hold qualifiers: `namespace:N`, `label:K[=V]`, `annotation:K[=V]`, `type:T`, `platform:OS[/ARCH]`.",
        ),
    ] = "",
    namespace: Annotated[str | None, Query(description="Only repositories of this user or organization.")] = None,
    label: Annotated[
        list[str] | None, Query(description="Image label `KEY` or `KEY=VALUE` (repeatable; all must match).")
    ] = None,
    annotation: Annotated[
        list[str] | None, Query(description="OCI annotation `KEY` or `KEY=VALUE` (repeatable; all must match).")
    ] = None,
    artifact_type: Annotated[
        str | None, Query(description="Artifact type, e.g. `application/vnd.cncf.helm.config.v1+json`.")
    ] = None,
    platform: Annotated[
        str | None, Query(description="`OS`, `OS/ARCH` or `OS/ARCH/VARIANT`, e.g. `linux/arm64`.")
    ] = None,
    sort: Annotated[
        Literal["relevance", "recent", "popular", "stars", "name"], Query(description="Result order.")
    ] = "relevance",
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page number, from 1.")] = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE, description="Results per page.")] = 25,
) -> SearchResults:
    """Exact name matches first, then name prefixes, then full-text relevance; ties by stars, pulls, last push."""
    try:
        query = parse_query(
            q,
            namespace=namespace,
            labels=label or [],
            annotations=annotation or [],
            artifact_type=artifact_type,
            platform=platform,
            page=page,
            per_page=per_page,
            sort=sort,
        )
    except QueryError as exc:
        raise RegistryError(ErrorKind.REQUEST_INVALID, str(exc)) from exc
    result = await registry.search.search(caller.principal, query)
    return SearchResults(
        query=q,
        total=result.total,
        page=result.page,
        per_page=result.per_page,
        num_pages=result.num_pages,
        results=[_hit(hit) for hit in result.hits],
    )


class RepositoryMetadata(BaseModel):
    """A repository's description, README and counters, as the caller sees it."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    namespace: str
    visibility: Literal["public", "private"]
    description: str | None = Field(description="As written by the repository's admins.")
    image_description: str | None = Field(
        description=f"With no description written: the newest tag's `{IMAGE_DESCRIPTION_KEY}` "
        "(annotation or image label), which lists and search results show instead."
    )
    readme: str | None = Field(description="The README's Markdown source.")
    readme_html: str = Field(description="The README rendered and sanitised (no raw HTML, no script links).")
    stars: int
    starred: bool = Field(description="True if the caller starred it.")
    pulls: int = Field(description="Manifest GETs by clients (written within about a second).")
    last_pushed_at: datetime | None
    size: int = Field(description="Bytes of the distinct blobs the repository links plus its manifests.")
    created_at: datetime
    role: str = Field(description="The caller's role: pull, push, delete or admin.")


class MetadataUpdate(BaseModel):
    """What to change; absent fields stay as they are, `null` clears."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(None, max_length=MAX_DESCRIPTION)
    readme: str | None = Field(None, description=f"Markdown, at most {MAX_README_BYTES} bytes.")


class RepositoryItem(BaseModel):
    """A repository in a list."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    namespace: str
    visibility: Literal["public", "private"]
    description: str | None = Field(description=SHOWN_DESCRIPTION_TEXT)
    stars: int
    pulls: int
    last_pushed_at: datetime | None


def _metadata(details: RepositoryDetails) -> RepositoryMetadata:
    return RepositoryMetadata.model_validate(details)


def _items(summaries: list[RepositorySummary]) -> list[RepositoryItem]:
    return [RepositoryItem.model_validate(s) for s in summaries]


@router.get("/repository-metadata/{name:path}", summary="Get a repository's description, README and counters [pull]")
async def get_repository_metadata(name: str, caller: AnyCallerDep, registry: RegistryDep) -> RepositoryMetadata:
    """`404` for repositories the caller may not pull, whether or not they exist."""
    return _metadata(await registry.repository_info.get(caller.principal, name))


@router.patch("/repository-metadata/{name:path}", summary="Change description or README [repository admin]")
async def update_repository_metadata(
    name: str, body: MetadataUpdate, caller: CallerDep, registry: RegistryDep
) -> RepositoryMetadata:
    """The README is Markdown; it is stored as sent and rendered, sanitised, when read."""
    changes: dict[str, Any] = {
        field: getattr(body, field) if field in body.model_fields_set else UNCHANGED
        for field in ("description", "readme")
    }
    details = await registry.repository_info.update(caller.principal, name, address=caller.address, **changes)
    return _metadata(details)


@router.put("/stars/{name:path}", summary="Star a repository [signed-in users]")
async def star_repository(name: str, caller: CallerDep, registry: RegistryDep) -> RepositoryMetadata:
    """Idempotent; the repository must be one the caller may pull."""
    return _metadata(await registry.repository_info.star(caller.principal, name))


@router.delete("/stars/{name:path}", summary="Remove your star [signed-in users]")
async def unstar_repository(name: str, caller: CallerDep, registry: RegistryDep) -> RepositoryMetadata:
    """Idempotent."""
    return _metadata(await registry.repository_info.unstar(caller.principal, name))


@router.get("/stars", summary="The repositories you starred")
async def list_stars(
    caller: CallerDep,
    registry: RegistryDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LISTING)] = 100,
) -> list[RepositoryItem]:
    """Newest star first; only those you may still pull."""
    return _items(await registry.repository_info.starred_by(caller.principal, limit))


@router.get("/explore/{kind}", summary="Recently pushed or popular repositories")
async def explore(
    kind: Literal["recent", "popular"],
    caller: AnyCallerDep,
    registry: RegistryDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LISTING)] = 12,
) -> list[RepositoryItem]:
    """`recent`: last pushed first; `popular`: most stars, then most pulls. Anonymous callers: public ones."""
    info = registry.repository_info
    summaries = await (info.recent if kind == "recent" else info.popular)(caller.principal, limit)
    return _items(summaries)
