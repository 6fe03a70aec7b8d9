"""``/repositories``: what the caller may see, and visibility and description [repository admins].

Repository names contain ``/``, so the name is the rest of the path and nothing hangs below it;
grants on a repository live under ``/permissions/repositories/{name}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from portside.api.management.deps import AnyCallerDep, CallerDep, RegistryDep, ServicesDep
from portside.auth.management.repositories import RepositoryInfo
from portside.registry.repository_info import MAX_DESCRIPTION

router = APIRouter(prefix="/repositories", tags=["repositories"])

MAX_PAGE = 1000


class Repository(BaseModel):
    """A repository's settings and the most the caller may do on it."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    visibility: Literal["public", "private"]
    description: str | None
    created_at: datetime
    role: str | None = Field(description="The caller's role: pull, push, delete or admin.")


class RepositoryList(BaseModel):
    """A page of repositories in name order; pass `next` as `last` for the following page."""

    repositories: list[Repository]
    next: str | None


class RepositoryUpdate(BaseModel):
    """What to change; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    visibility: Literal["public", "private"] | None = None
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)


def _repository(info: RepositoryInfo) -> Repository:
    return Repository.model_validate(info)


@router.get("", summary="List the repositories you may see")
async def list_repositories(
    caller: AnyCallerDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="At most this many.")] = 100,
    last: Annotated[str | None, Query(description="Continue after this name (a previous page's `next`).")] = None,
) -> RepositoryList:
    """Public repositories, and those the caller's namespaces, organizations and grants give them."""
    page = await services.repositories.list_visible(caller, limit, last)
    return RepositoryList(repositories=[_repository(info) for info in page.repositories], next=page.next_last)


@router.get("/{name:path}", summary="Get a repository [pull]")
async def get_repository(name: str, caller: AnyCallerDep, services: ServicesDep) -> Repository:
    """A repository the caller may pull; `404` otherwise, whether or not it exists."""
    return _repository(await services.repositories.get(caller, name))


@router.patch("/{name:path}", summary="Change visibility or description [repository admin]")
async def update_repository(
    name: str, body: RepositoryUpdate, caller: CallerDep, services: ServicesDep, registry: RegistryDep
) -> Repository:
    """Make a repository public or private, or describe it."""
    updated = await services.repositories.update(caller, name, body.visibility, body.description)
    if body.description is not None:
        # The description is searchable: rebuild the repository's search document.
        await registry.search_index.repository_changed(name)
    return _repository(updated)


class RepositoryDeleted(BaseModel):
    """What a repository delete removed (blob bytes are left to garbage collection)."""

    repository: str
    tags: int
    manifests: int
    blob_links: int


@router.delete("/{name:path}", summary="Delete a repository [delete]")
async def delete_repository(name: str, caller: CallerDep, registry: RegistryDep) -> RepositoryDeleted:
    """Remove a repository with its tags, manifests, blob links and tag history.

    `403` if an immutable rule protects one of its tags; `405` if deletes are disabled.
    """
    deleted = await registry.repository_deletes.delete(caller, name)
    return RepositoryDeleted(
        repository=deleted.repository, tags=deleted.tags, manifests=deleted.manifests, blob_links=deleted.blob_links
    )
