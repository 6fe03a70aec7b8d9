"""Read-only pages: explore, search, namespaces, repositories, tags and manifests.

Each asks the policy through the registry's services: a repository the viewer may not pull is
a 404, exactly like a missing one.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from portside.api.web.formatting import parse_repository_path, pull_command, repository_path
from portside.api.web.manage_common import notice
from portside.api.web.manage_lifecycle import namespace_admin, recently_deleted, visible_quota
from portside.api.web.pages import (
    PageError,
    Redirect,
    browser_host,
    current_viewer,
    namespace_param,
    read_form,
    render,
    require_pull,
    require_sign_in,
    visibility,
    web_of,
)
from portside.auth.management.guards import Caller
from portside.digits import parse_digits
from portside.oci.errors import ErrorKind, RegistryError
from portside.registry.repository_info import RepositoryDetails
from portside.search.query import MAX_PAGE, QueryError, SearchQuery, Sort, parse_query

EXPLORE_COUNT = 12
SEARCH_PAGE_SIZE = 25
NAMESPACE_PAGE_SIZE = 50
SORTS: tuple[Sort, ...] = ("relevance", "recent", "popular", "stars", "name")


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    page = parse_digits(raw)
    return page if page is not None and 0 < page <= MAX_PAGE else 1


async def home(request: Request) -> Response:
    """Explore: the most recently pushed and the most popular repositories the viewer may pull."""
    viewer = await current_viewer(request)
    info = web_of(request).registry.repository_info
    recent = await info.recent(viewer.reader, EXPLORE_COUNT)
    popular = await info.popular(viewer.reader, EXPLORE_COUNT)
    return await render(request, "home.html", {"recent": recent, "popular": popular})


def search_form(request: Request) -> dict[str, str]:
    """The search form's fields as the browser sent them (shown again above the results)."""
    fields = ("q", "namespace", "label", "annotation", "type", "os", "arch", "sort")
    return {name: request.query_params.get(name, "").strip() for name in fields}


def search_query(form: dict[str, str], page: int) -> SearchQuery:
    """A search from the form; ``QueryError`` with a message for the page if a field is wrong."""
    platform = form["os"]
    if form["arch"]:
        if not platform:
            raise QueryError("choose an operating system to filter by architecture")
        platform = f"{platform}/{form['arch']}"
    sort = form["sort"] or "relevance"
    if sort not in SORTS:
        raise QueryError(f"sort by one of: {', '.join(SORTS)}")
    return parse_query(
        form["q"],
        namespace=form["namespace"] or None,
        labels=[form["label"]] if form["label"] else [],
        annotations=[form["annotation"]] if form["annotation"] else [],
        artifact_type=form["type"] or None,
        platform=platform or None,
        page=page,
        per_page=SEARCH_PAGE_SIZE,
        sort=sort,
    )


async def search(request: Request) -> Response:
    """Search with filters; the results are repositories the viewer may pull."""
    form = search_form(request)
    try:
        query = search_query(form, _page_number(request))
    except QueryError as exc:
        return await render(request, "search.html", {"form": form, "query": form["q"], "error": str(exc)}, status=400)
    results = await web_of(request).registry.search.search_visible(await visibility(request), query)
    # Links to the other pages keep every filter.
    base = {name: value for name, value in form.items() if value}
    return await render(request, "search.html", {"form": form, "query": form["q"], "results": results, "base": base})


async def namespace(request: Request) -> Response:
    """A user's or organization's repositories that the viewer may pull."""
    name = namespace_param(request)
    web = web_of(request)
    store = web.registry.accounts.store
    user = await store.get_user(name)
    organization = None if user is not None else await store.get_organization(name)
    query = SearchQuery(namespace=name, page=_page_number(request), per_page=NAMESPACE_PAGE_SIZE, sort="name")
    results = await web.registry.search.search_visible(await visibility(request), query)
    if user is None and organization is None and not results.total:
        raise PageError(404, f"There is no user or organization {name!r}.")
    kind = "User" if user is not None else "Organization" if organization is not None else "Namespace"
    viewer = await current_viewer(request)
    context = {
        "namespace": name,
        "kind": kind,
        "results": results,
        "notice": notice(request),
        # Its quota and usage for those the quota service lets see them; a settings link for its admins.
        "quota": await visible_quota(request, Caller(viewer.principal, None), name) if viewer.signed_in else None,
        "may_administer": await namespace_admin(request, name),
    }
    return await render(request, "namespace.html", context)


async def _details(request: Request, name: str) -> RepositoryDetails:
    viewer = await current_viewer(request)
    try:
        return await web_of(request).registry.repository_info.get(viewer.reader, name)
    except RegistryError as exc:
        if exc.kind in (ErrorKind.NAME_UNKNOWN, ErrorKind.NAME_INVALID):
            raise PageError(404, f"There is no repository {name!r}, or you may not see it.") from exc
        raise


async def repository_dispatch(request: Request) -> Response:
    """``/r/NAME``, ``/r/NAME/-/tag/TAG`` and ``/r/NAME/-/manifest/DIGEST``."""
    target = parse_repository_path(request.path_params["path"])
    if target is None or target.kind == "star":
        raise PageError(404, "There is no such page.")
    if target.kind == "repository":
        return await repository_page(request, await _details(request, target.name))
    # Tag and manifest pages need no README: the policy's answer is enough (404 if not pullable).
    await require_pull(request, target.name)
    return await manifest_page(request, target.name, target.kind, target.reference or "")


async def repository_page(request: Request, details: RepositoryDetails) -> Response:
    """README, tags table and the pull command."""
    web = web_of(request)
    tags = await web.browse.tags(details.name)
    names = [tag.name for tag in tags]
    default_tag = "latest" if "latest" in names else (names[0] if names else "latest")
    context = {
        "repository": details,
        "tags": tags,
        "pull": pull_command(browser_host(request), details.name, default_tag),
        "name": details.name,
        "deleted": await recently_deleted(request, details.name),
        "restore_action": repository_path(details.name) + "/-/restore",
    }
    return await render(request, "repository.html", context)


async def manifest_page(request: Request, name: str, kind: str, reference: str) -> Response:
    """A tag's or manifest's JSON, layers, config, platforms and referrers."""
    web = web_of(request)
    tag = reference if kind == "tag" else None
    view = await web.browse.manifest(name, tag, None if tag else reference)
    if view is None:
        what = f"tag {reference!r}" if tag else f"manifest {reference}"
        raise PageError(404, f"There is no {what} in {name!r}, or you may not see it.")
    context = {
        "name": name,
        "namespace": name.split("/", 1)[0],
        "view": view,
        "pull": pull_command(browser_host(request), name, tag or view.digest),
    }
    return await render(request, "manifest.html", context)


async def repository_post(request: Request) -> Response:
    """``POST /r/NAME/-/star``: star (``star=1``) or unstar (``star=0``) a repository, then back to it."""
    target = parse_repository_path(request.path_params["path"])
    if target is None or target.kind != "star":
        raise PageError(404, "There is no such page.")
    form = await read_form(request)
    viewer = await require_sign_in(request)
    info = web_of(request).registry.repository_info
    try:
        if form.get("star") == "1":
            await info.star(viewer.principal, target.name)
        else:
            await info.unstar(viewer.principal, target.name)
    except RegistryError as exc:
        if exc.kind is ErrorKind.NAME_UNKNOWN:
            raise PageError(404, f"There is no repository {target.name!r}, or you may not see it.") from exc
        raise
    raise Redirect(repository_path(target.name))
