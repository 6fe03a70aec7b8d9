"""Read-only pages: explore, search, namespaces, repositories, tags and manifests."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from portside.api.web.formatting import parse_repository_path
from portside.api.web.pages import PageError, render, require_pull, visibility, web_of


async def home(request: Request) -> Response:
    """Explore: repositories the viewer may pull."""
    names = await web_of(request).registry.store.list_repositories(50, None, await visibility(request))
    return await render(request, "home.html", {"repositories": names})


async def search(request: Request) -> Response:
    """Search with filters (filled in by the search service)."""
    return await render(request, "home.html", {"repositories": []})


async def namespace(request: Request) -> Response:
    """A user's or organization's repositories that the viewer may pull."""
    raise PageError(404, "Not yet.")


async def repository_dispatch(request: Request) -> Response:
    """``/r/NAME``, ``/r/NAME/-/tag/TAG`` and ``/r/NAME/-/manifest/DIGEST``."""
    target = parse_repository_path(request.path_params["path"])
    if target is None:
        raise PageError(404, "No such page.")
    await require_pull(request, target.name)
    raise PageError(404, "Not yet.")
