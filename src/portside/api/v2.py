"""Thin handlers for the OCI distribution API: parse the request, call one service, shape the response."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import quote, urlencode

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from portside.api.access import Access, client_address, enforce
from portside.api.events import manifest_event, pull_event
from portside.api.responses import (
    API_VERSION_HEADER,
    BlobFileResponse,
    empty_response,
    error_response,
    head_response,
    json_response,
)
from portside.api.routes import Endpoint, RouteMatch, match_v2_path
from portside.api.unexpected import unexpected_error
from portside.digits import parse_digits
from portside.lifecycle.history import history_actor
from portside.notifications.events import EventAction
from portside.oci import media_types as mt
from portside.oci.digest import parse_digest
from portside.oci.errors import ErrorKind, RegistryError
from portside.oci.names import validate_name
from portside.oci.ranges import ByteRange, parse_content_range, parse_request_range
from portside.registry.listings import Page, parse_page_size
from portside.registry.manifests import StoredManifest
from portside.registry.services import Registry
from portside.registry.uploads import UploadStatus

Handler = Callable[[Request, Registry, RouteMatch], Awaitable[Response]]


def _registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


def _access(request: Request) -> Access:
    access: Access = request.state.access
    return access


async def _audit(request: Request, registry: Registry, action: str, target: str, **detail: object) -> None:
    await registry.audit.record(_access(request).actor, action, target, client_address(request), **detail)


def _history_actor(request: Request) -> str | None:
    """Who tag history names for this request's changes (None: anonymous)."""
    return history_actor(_access(request).actor)


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    length = parse_digits(value)
    if length is None:
        raise RegistryError(ErrorKind.SIZE_INVALID, "malformed Content-Length", {"Content-Length": value})
    return length


def _content_range(request: Request) -> ByteRange | None:
    value = request.headers.get("content-range")
    return None if value is None else parse_content_range(value)


def _body(request: Request) -> AsyncIterator[bytes]:
    return request.stream()


# A body over the limit but under this is read and dropped before answering 413: a proxy that
# streams the request (nginx with proxy_request_buffering off) turns an early answer into a 502.
DRAIN_LIMIT = 64 * 1024 * 1024


async def _drain(chunks: AsyncIterator[bytes], already: int) -> None:
    received = already
    async for chunk in chunks:
        received += len(chunk)
        if received > DRAIN_LIMIT:
            return


async def _drain_unread_body(request: Request) -> None:
    """Read and drop a body no handler read, so proxies deliver the error instead of a 502."""
    declared = parse_digits(request.headers.get("content-length", ""))
    chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
    if not chunked and (declared is None or not 0 < declared <= DRAIN_LIMIT):
        return
    # RuntimeError: the handler had started reading it (Starlette allows one pass).
    with contextlib.suppress(RuntimeError, ClientDisconnect):
        await _drain(request.stream(), 0)


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = _content_length(request)
    too_large = RegistryError(ErrorKind.MANIFEST_TOO_LARGE, detail={"limit": limit, "size": declared})
    chunks = request.stream()
    if declared is not None and declared > limit:
        if declared <= DRAIN_LIMIT:
            await _drain(chunks, 0)
        raise too_large
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            await _drain(chunks, size)
            raise too_large
        parts.append(chunk)
    return b"".join(parts)


def _upload_headers(name: str, status: UploadStatus) -> dict[str, str]:
    return {
        "Location": f"/v2/{name}/blobs/uploads/{status.id}",
        "Range": status.range_header,
        "Docker-Upload-UUID": status.id,
    }


def _blob_created(name: str, digest: str) -> Response:
    return empty_response(201, {"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest})


def _require_delete(registry: Registry) -> None:
    if not registry.settings.delete_enabled:
        raise RegistryError(ErrorKind.UNSUPPORTED, "deletes are disabled on this registry")


def _link_header(path: str, page: Page) -> dict[str, str]:
    if page.next_last is None:
        return {}
    query = urlencode({"n": page.limit, "last": page.next_last})
    return {"Link": f'<{path}?{query}>; rel="next"'}


# Base and listings


async def base(request: Request, registry: Registry, match: RouteMatch) -> Response:
    """``GET /v2/``: the API version check."""
    return json_response({})


async def catalog(request: Request, registry: Registry, match: RouteMatch) -> Response:
    """``GET /v2/_catalog``: repository names, paginated."""
    page = await registry.listings.catalog(
        parse_page_size(request.query_params.get("n")),
        request.query_params.get("last"),
        await _access(request).visibility(),
    )
    return json_response({"repositories": page.items}, _link_header("/v2/_catalog", page))


async def tags_list(request: Request, registry: Registry, match: RouteMatch) -> Response:
    """``GET /v2/<name>/tags/list``: tag names, paginated."""
    params = request.query_params
    page = await registry.listings.tags(match.name, parse_page_size(params.get("n")), params.get("last"))
    return json_response({"name": match.name, "tags": page.items}, _link_header(f"/v2/{match.name}/tags/list", page))


# Manifests


async def _notify_push(
    request: Request,
    registry: Registry,
    match: RouteMatch,
    stored: StoredManifest,
    content: bytes,
    by_tag: bool,
    before: str | None,
) -> None:
    """A push event, and a tag event when a tag was created or moved (written before the answer)."""
    digest = str(stored.digest)
    tag = match.reference if by_tag else ""
    actions = [EventAction.PUSH]
    if by_tag and before != digest:
        actions.append(EventAction.TAG_CREATED if before is None else EventAction.TAG_MOVED)
    for action in actions:
        event = manifest_event(
            request, action, match.name, digest=digest, media_type=stored.media_type, size=len(content), tag=tag
        )
        await registry.notifier.emit(event)


async def _count_pull(request: Request, registry: Registry) -> dict[str, str]:
    """Count a manifest GET against the pull limit (HEAD only looks); the rate-limit headers to send.

    The headers are also kept on the request so that an error answer carries them too.
    """
    limiter = registry.pull_limits
    if limiter is None:
        return {}
    caller, address = _access(request).actor, client_address(request)
    if request.method == "GET":
        quota = await limiter.pull(caller, address)
    else:
        quota = await limiter.peek(caller, address)
    request.state.rate_limit_headers = quota.headers()
    if quota.exceeded:
        request.app.state.metrics.record_rate_limited(caller != "anonymous")
        raise RegistryError(
            ErrorKind.TOO_MANY_REQUESTS,
            f"pull rate limit of {quota.limit} per {quota.window_seconds} s reached",
            headers=quota.retry_headers(),
        )
    return quota.headers()


async def manifest(request: Request, registry: Registry, match: RouteMatch) -> Response:
    """``GET``/``HEAD``/``PUT``/``DELETE /v2/<name>/manifests/<reference>``."""
    if request.method in ("GET", "HEAD"):
        limit_headers = await _count_pull(request, registry)
        accepted = mt.parse_accept(request.headers.getlist("accept"))
        record = await registry.manifests.get(match.name, match.reference, accepted)
        headers = {"Docker-Content-Digest": record.digest, "ETag": f'"{record.digest}"', **limit_headers}
        if request.method == "HEAD":
            return head_response(200, headers, record.size, record.media_type)
        await _audit(request, registry, "pull", f"{match.name}:{match.reference}", digest=record.digest)
        registry.pulls.record(match.name, record.digest)
        registry.repository_info.record_pull(match.name)
        # The event is built only if an endpoint wants pulls: most namespaces have none.
        await registry.notifier.emit_buffered_if_wanted(
            match.name, EventAction.PULL, lambda: pull_event(request, match.name, match.reference, record)
        )
        return Response(record.content, headers={**API_VERSION_HEADER, **headers}, media_type=record.media_type)
    if request.method == "PUT":
        content = await _read_limited(request, registry.manifests.max_bytes)
        by_tag = not match.reference.startswith(("sha256:", "sha512:"))
        before = await registry.notifier.previous_tag_digest(match.name, match.reference) if by_tag else None
        stored = await registry.manifests.put(
            match.name, match.reference, content, request.headers.get("content-type"), _history_actor(request)
        )
        await _notify_push(request, registry, match, stored, content, by_tag, before)
        headers = {
            "Location": f"/v2/{match.name}/manifests/{stored.digest}",
            "Docker-Content-Digest": str(stored.digest),
        }
        if stored.subject:
            headers["OCI-Subject"] = stored.subject
        await _audit(request, registry, "push", f"{match.name}:{match.reference}", digest=str(stored.digest))
        return empty_response(201, headers)
    _require_delete(registry)
    await registry.manifests.delete(match.name, match.reference, _history_actor(request))
    if match.reference.startswith(("sha256:", "sha512:")):
        await registry.notifier.emit(manifest_event(request, EventAction.DELETE, match.name, digest=match.reference))
    else:
        await registry.notifier.emit(manifest_event(request, EventAction.TAG_DELETED, match.name, tag=match.reference))
    await registry.audit.record_now(
        _access(request).actor, "delete", f"{match.name}:{match.reference}", client_address(request)
    )
    return empty_response(202, {})


# Blobs


async def blob(request: Request, registry: Registry, match: RouteMatch) -> Response:
    """``GET``/``HEAD``/``DELETE /v2/<name>/blobs/<digest>``."""
    digest = parse_digest(match.reference)
    if request.method == "DELETE":
        _require_delete(registry)
        await registry.blobs.delete(match.name, digest)
        return empty_response(202, {"Docker-Content-Digest": str(digest)})
    content = await registry.blobs.open(match.name, digest)
    if request.method == "GET" and content.data is None:
        redirect = await registry.blobs.redirect_url(digest)
        if redirect is not None:
            # The bucket serves the bytes (and any Range) itself.
            return empty_response(307, {"Location": redirect, "Docker-Content-Digest": str(digest)})
    headers = {
        "Docker-Content-Digest": str(digest),
        "ETag": f'"{digest}"',
        "Accept-Ranges": "bytes",
        "Cache-Control": "max-age=31536000",
    }
    try:
        byte_range = parse_request_range(request.headers.get("range"), content.size)
    except RegistryError as exc:
        exc.headers["Content-Range"] = f"bytes */{content.size}"
        raise
    status, length = 200, content.size
    if byte_range is not None:
        status, length = 206, byte_range.length
        headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{content.size}"
    if request.method == "HEAD":
        return head_response(status, headers, length, "application/octet-stream")
    headers["Content-Length"] = str(length)
    if content.data is not None:
        return Response(
            content.data_in(byte_range),
            status_code=status,
            headers={**API_VERSION_HEADER, **headers},
            media_type="application/octet-stream",
        )
    if byte_range is None and content.path is not None:
        return BlobFileResponse(
            content.path, str(content.digest), {**API_VERSION_HEADER, **headers}, registry.blobs.downloads
        )
    return StreamingResponse(
        registry.blobs.stream(content, byte_range),
        status_code=status,
        headers={**API_VERSION_HEADER, **headers},
        media_type="application/octet-stream",
    )


# Uploads


async def start_upload(request: Request, registry: Registry, match: RouteMatch) -> Response:
    """``POST /v2/<name>/blobs/uploads/``: mount, monolithic push, or a new session."""
    params = request.query_params
    mount, source = params.get("mount"), params.get("from")
    if mount is not None:
        digest = parse_digest(mount)
        # A mount needs pull on the source; without it the client simply uploads.
        if (
            source
            and await _access(request).allows(validate_name(source), "pull")
            and await registry.uploads.mount(match.name, digest, source) is not None
        ):
            return _blob_created(match.name, str(digest))
    elif params.get("digest") is not None:
        digest = parse_digest(params["digest"])
        await registry.uploads.monolithic(match.name, digest, _body(request), _content_length(request))
        return _blob_created(match.name, str(digest))
    status = await registry.uploads.start(match.name)
    return empty_response(202, _upload_headers(match.name, status))


async def upload(request: Request, registry: Registry, match: RouteMatch) -> Response:
    """``GET``/``PATCH``/``PUT``/``DELETE /v2/<name>/blobs/uploads/<uuid>``."""
    upload_id = match.reference
    if request.method == "GET":
        status = await registry.uploads.status(match.name, upload_id)
        return empty_response(204, _upload_headers(match.name, status))
    if request.method == "DELETE":
        await registry.uploads.cancel(match.name, upload_id)
        return empty_response(204, {})
    if request.method == "PATCH":
        status = await registry.uploads.append(
            match.name, upload_id, _body(request), _content_range(request), _content_length(request)
        )
        return empty_response(202, _upload_headers(match.name, status))
    raw_digest = request.query_params.get("digest")
    if not raw_digest:
        raise RegistryError(ErrorKind.DIGEST_INVALID, "the digest query parameter is required to finish an upload")
    digest = parse_digest(raw_digest)
    await registry.uploads.finish(
        match.name, upload_id, digest, _body(request), _content_range(request), _content_length(request)
    )
    return _blob_created(match.name, str(digest))


async def referrers(request: Request, registry: Registry, match: RouteMatch) -> Response:
    """``GET /v2/<name>/referrers/<digest>``."""
    digest = parse_digest(match.reference)
    index = await registry.referrers.list(match.name, digest, request.query_params.get("artifactType"))
    headers = {**API_VERSION_HEADER}
    if index.filtered:
        headers["OCI-Filters-Applied"] = "artifactType"
    return Response(index.content, headers=headers, media_type=mt.OCI_INDEX)


HANDLERS: dict[Endpoint, Handler] = {
    Endpoint.BASE: base,
    Endpoint.CATALOG: catalog,
    Endpoint.TAGS: tags_list,
    Endpoint.MANIFEST: manifest,
    Endpoint.BLOB: blob,
    Endpoint.UPLOADS: start_upload,
    Endpoint.UPLOAD: upload,
    Endpoint.REFERRERS: referrers,
}


async def dispatch(request: Request) -> Response:
    """Match the path against the route table and run its handler; every error becomes the spec's body."""
    try:
        path: str = request.scope["path"]
        match = match_v2_path(path)
        if match is None:
            raise RegistryError(ErrorKind.NOT_FOUND, detail={"path": quote(path)})
        if request.method not in match.route.methods:
            raise RegistryError(
                ErrorKind.METHOD_NOT_ALLOWED,
                detail={"method": request.method, "allowed": sorted(match.route.methods)},
                headers={"Allow": ", ".join(sorted(match.route.methods))},
            )
        if match.name:
            validate_name(match.name)
        registry = _registry(request)
        await registry.maintenance.refuse_writes(request.method)
        request.state.access = await enforce(request, registry.gate, match)
        return await HANDLERS[match.route.endpoint](request, registry, match)
    except RegistryError as error:
        for name, value in getattr(request.state, "rate_limit_headers", {}).items():
            error.headers.setdefault(name, value)
        await _drain_unread_body(request)
        return error_response(error, request.method)
    except ClientDisconnect:
        return error_response(RegistryError(ErrorKind.CLIENT_DISCONNECTED), request.method)
    except Exception as exc:
        answer = unexpected_error(exc, request.method, request.url.path)
        if answer.kind is ErrorKind.STORAGE_FULL:
            await _drain_unread_body(request)
        return error_response(answer, request.method)
