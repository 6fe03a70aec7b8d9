"""Registry events from requests: what the API tells the notifier after a change or a pull."""

from __future__ import annotations

import uuid

from starlette.requests import Request

from portside.api.access import Access, client_address
from portside.metadata.records import ManifestRecord
from portside.notifications.events import EventAction, RegistryEvent, RequestInfo


def actor_name(actor: str) -> str:
    """Distribution's ``actor.name``: the account name alone, empty for anonymous callers."""
    if actor == "anonymous":
        return ""
    return actor.split(":", 1)[1] if ":" in actor else actor


def request_info(request: Request) -> RequestInfo:
    """The ``request`` part of an event."""
    request_id = getattr(request.state, "request_id", None) or request.headers.get("x-request-id") or str(uuid.uuid4())
    return RequestInfo(
        id=str(request_id),
        addr=client_address(request) or "",
        host=request.headers.get("host", ""),
        method=request.method,
        useragent=request.headers.get("user-agent", ""),
    )


def manifest_event(
    request: Request,
    action: EventAction,
    repository: str,
    *,
    digest: str = "",
    media_type: str = "",
    size: int = 0,
    tag: str = "",
) -> RegistryEvent:
    """An event about a manifest (or a tag) of ``repository``, caused by ``request``."""
    access: Access | None = getattr(request.state, "access", None)
    url = f"{str(request.base_url).rstrip('/')}/v2/{repository}/manifests/{digest}" if digest else ""
    return RegistryEvent(
        action=action,
        repository=repository,
        digest=digest,
        media_type=media_type,
        size=size,
        tag=tag,
        actor=actor_name(access.actor) if access is not None else "",
        request=request_info(request),
        url=url,
    )


def pull_event(request: Request, repository: str, reference: str, record: ManifestRecord) -> RegistryEvent:
    """A manifest ``GET``; the tag is named when the client pulled by tag."""
    tag = "" if reference.startswith(("sha256:", "sha512:")) else reference
    return manifest_event(
        request,
        EventAction.PULL,
        repository,
        digest=record.digest,
        media_type=record.media_type,
        size=record.size,
        tag=tag,
    )
