"""The ``/v2/`` entry point when mirrors are configured: mirrored repositories first, the rest to the core.

Access is checked by the core's gate (``api/access.py``) against the local repository name,
exactly as for any other repository; only then is the upstream asked.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from portside.api.access import client_address, enforce
from portside.api.responses import API_VERSION_HEADER, error_response, head_response
from portside.api.routes import Endpoint, RouteMatch, match_v2_path
from portside.api.unexpected import unexpected_error
from portside.api.v2 import blob, dispatch, manifest
from portside.oci.digest import parse_digest
from portside.oci.errors import ErrorKind, RegistryError
from portside.oci.names import validate_name
from portside.proxy.cache import ProxyService
from portside.proxy.routing import Target, local_name_for_ns, mirror_for
from portside.registry.services import Registry

READ_METHODS = frozenset({"GET", "HEAD"})


def _with_path(request: Request, path: str) -> Request:
    """The same request addressed to another path (containerd's ``?ns=`` names the registry apart)."""
    scope = dict(request.scope)
    scope["path"] = path
    scope["raw_path"] = path.encode()
    return Request(scope, request.receive)


def _ns_path(service: ProxyService, request: Request, match: RouteMatch) -> str | None:
    ns = request.query_params.get("ns")
    if not ns:
        return None
    local = local_name_for_ns(service.mirrors, ns, match.name)
    if local is None or local == match.name:
        return None
    path = request.url.path
    return "/v2/" + local + path[len("/v2/") + len(match.name) :]


async def proxy_dispatch(request: Request) -> Response:
    """Route a ``/v2/`` request: reads of mirrored repositories go through the cache, the rest to the core."""
    service: ProxyService = request.app.state.proxy
    match = match_v2_path(request.url.path)
    if match is None or not match.name:
        return await dispatch(request)
    try:
        validate_name(match.name)
    except RegistryError:
        return await dispatch(request)
    path = _ns_path(service, request, match)
    if path is not None:
        request = _with_path(request, path)
        match = match_v2_path(path)
        assert match is not None
    try:
        validate_name(match.name)
        mirrored = mirror_for(service.mirrors, match.name)
        writes = request.method not in READ_METHODS or match.route.endpoint is Endpoint.UPLOAD
        # A mirror is read-only, as Distribution's proxy mode is: its content belongs to the upstream.
        if mirrored is not None and writes and request.method in match.route.methods:
            raise RegistryError(
                ErrorKind.UNSUPPORTED,
                f"{match.name} is a read-only mirror of {mirrored.mirror.upstream}: pushes and deletes are refused",
                {"name": match.name, "upstream": mirrored.mirror.upstream},
            )
        target = await service.target(match.name)
        if target is None or match.route.endpoint not in (Endpoint.MANIFEST, Endpoint.BLOB):
            return await dispatch(request)
        if request.method not in READ_METHODS:
            return await dispatch(request)
        registry: Registry = request.app.state.registry
        request.state.access = await enforce(request, registry.gate, match)
        if match.route.endpoint is Endpoint.MANIFEST:
            # A caller already over the pull limit is answered 429 by the core handler, and no upstream
            # request is made on its behalf.
            if not await _out_of_pulls(request, registry):
                await service.ensure_manifest(match.name, target, match.reference)
            return await manifest(request, registry, match)
        return await _blob(request, registry, service, match, target)
    except RegistryError as error:
        for name, value in getattr(request.state, "rate_limit_headers", {}).items():
            error.headers.setdefault(name, value)
        return error_response(error, request.method)
    except Exception as exc:
        return error_response(unexpected_error(exc, request.method, request.url.path), request.method)


async def _out_of_pulls(request: Request, registry: Registry) -> bool:
    limiter = registry.pull_limits
    if limiter is None or request.method != "GET":
        return False
    quota = await limiter.peek(request.state.access.actor, client_address(request))
    return quota.remaining == 0


async def _blob(
    request: Request, registry: Registry, service: ProxyService, match: RouteMatch, target: Target
) -> Response:
    digest = parse_digest(match.reference)
    if await registry.store.linked_blob(match.name, str(digest)) is not None or await service.link_known_blob(
        match.name, digest
    ):
        return await blob(request, registry, match)
    headers = {"Docker-Content-Digest": str(digest), "ETag": f'"{digest}"'}
    if request.method == "HEAD":
        size = await service.head_blob(target, digest)
        return head_response(200, headers, size if size is not None else 0, "application/octet-stream")
    tee = await service.fetch_blob(match.name, target, digest)
    if tee.size is not None:
        headers["Content-Length"] = str(tee.size)
    # A Range on a blob not cached yet is answered whole (allowed by RFC 9110); later reads honour it.
    return StreamingResponse(
        tee.chunks(), headers={**API_VERSION_HEADER, **headers}, media_type="application/octet-stream"
    )
