"""``docker search``: the Docker Registry v1 search API, as the Docker daemon calls it.

The daemon first pings ``GET /v1/_ping`` (it reads ``X-Docker-Registry-Standalone``), then sends
``GET /v1/search?q=TERM&n=LIMIT`` with ``X-Docker-Token: true``: anonymously, with Basic
credentials when logged in with a password, or, with an identity token, with a Bearer token it
got from the token server for ``registry:catalog:search``. All of these work in every ``auth``
mode; results include only repositories the caller may pull.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.api.access import authenticate
from portside.api.responses import error_response, json_response
from portside.api.unexpected import unexpected_error
from portside.auth.credentials import parse_authorization
from portside.auth.policy import ANONYMOUS
from portside.digits import parse_digits
from portside.metadata.records import Visibility
from portside.oci.errors import ErrorKind, RegistryError
from portside.registry.services import Registry
from portside.search.query import MAX_PAGE, MAX_PER_PAGE, QueryError, parse_query
from portside.search.results import SearchPage

DEFAULT_RESULTS = 25
STANDALONE = {"X-Docker-Registry-Standalone": "true"}


def parse_positive(value: str | None, name: str, default: int, maximum: int | None = None) -> int:
    """A query parameter that must be a whole number from 1 (to ``maximum``); ``default`` if absent."""
    if value is None or value == "":
        return default
    limit = f" and {maximum}" if maximum else ""
    number = parse_digits(value)
    if number is None or number < 1 or (maximum is not None and number > maximum):
        message = f"{name} must be a whole number between 1{limit}" if limit else f"{name} must be 1 or more"
        raise RegistryError(ErrorKind.REQUEST_INVALID, message, {name: value})
    return number


def search_document(page: SearchPage, term: str) -> dict[str, object]:
    """The JSON body the Docker daemon decodes (``registry.SearchResults``)."""
    return {
        "query": term,
        "num_results": page.total,
        "num_pages": page.num_pages,
        "page": page.page,
        "page_size": page.per_page,
        "results": [
            {
                "name": hit.name,
                "description": hit.description or "",
                "star_count": hit.stars,
                "is_official": False,
                "is_automated": False,
            }
            for hit in page.hits
        ],
    }


async def _visibility(request: Request, registry: Registry) -> Visibility:
    """What the caller may see: anonymous callers need no token here, even in token mode."""
    if registry.gate.mode == "token" and parse_authorization(request.headers.get("authorization")) is None:
        return registry.accounts.visibility(ANONYMOUS)
    return await (await authenticate(request, registry.gate)).visibility()


async def ping(request: Request) -> Response:
    """``GET /v1/_ping``: tells the daemon this is a standalone registry (it then sends Basic credentials)."""
    return json_response(True, STANDALONE)


async def search(request: Request) -> Response:
    """``GET /v1/search?q=&n=&page=``: repositories matching ``q``, ``n`` (1 to 100, default 25) per page."""
    registry: Registry = request.app.state.registry
    try:
        params = request.query_params
        term = params.get("q", "")
        per_page = parse_positive(params.get("n"), "n", DEFAULT_RESULTS, MAX_PER_PAGE)
        page_number = parse_positive(params.get("page"), "page", 1, MAX_PAGE)
        try:
            query = parse_query(term, page=page_number, per_page=per_page)
        except QueryError as exc:
            raise RegistryError(ErrorKind.REQUEST_INVALID, str(exc), {"q": term}) from exc
        visible = await _visibility(request, registry)
        page = await registry.search.search_visible(visible, query)
        return json_response(search_document(page, term), STANDALONE)
    except RegistryError as error:
        return error_response(error, request.method)
    except Exception as exc:
        return error_response(unexpected_error(exc, request.method, request.url.path), request.method)


def search_v1_routes() -> list[BaseRoute]:
    """The v1 routes ``docker search`` uses."""
    return [Route("/v1/_ping", ping, methods=["GET", "HEAD"]), Route("/v1/search", search, methods=["GET"])]
