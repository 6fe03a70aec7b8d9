"""Registry events and their wire form: Distribution's notification envelope, signed with HMAC-SHA256.

The body is ``{"events": [...]}`` with media type :data:`ENVELOPE_MEDIA_TYPE`, each event
carrying ``id``, ``timestamp``, ``action``, ``target`` (``mediaType``, ``size``, ``digest``,
``length``, ``repository``, ``url``, ``tag``), ``request`` (``id``, ``addr``, ``host``,
``method``, ``useragent``), ``actor`` (``name``) and ``source`` (``addr``, ``instanceID``), as
Distribution sends them, so existing consumers work. Portside's own actions (tag changes,
retention scans) use the same envelope; a retention scan adds a ``retention`` object.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

ENVELOPE_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"

# The signature header: "sha256=" and the hex HMAC-SHA256 of the raw body under the endpoint's secret.
SIGNATURE_HEADER = "X-Portside-Signature"
EVENT_HEADER = "X-Portside-Event"
DELIVERY_HEADER = "X-Portside-Delivery"


class EventAction(StrEnum):
    """What happened. ``push``, ``pull`` and ``delete`` are Distribution's own actions."""

    PUSH = "push"
    PULL = "pull"
    DELETE = "delete"
    TAG_CREATED = "tag_created"
    TAG_MOVED = "tag_moved"
    TAG_DELETED = "tag_deleted"
    RETENTION_SCAN = "retention_scan"


# Shorthands an endpoint may subscribe with.
EVENT_GROUPS: dict[str, frozenset[EventAction]] = {
    "*": frozenset(EventAction),
    "tag": frozenset({EventAction.TAG_CREATED, EventAction.TAG_MOVED, EventAction.TAG_DELETED}),
}


def parse_event_filter(values: list[str] | tuple[str, ...] | str) -> tuple[str, ...]:
    """Normalise what an endpoint subscribes to; ``ValueError`` naming any unknown event type."""
    items = values.split(",") if isinstance(values, str) else list(values)
    cleaned = [item.strip() for item in items if item.strip()]
    known = {a.value for a in EventAction} | set(EVENT_GROUPS)
    unknown = [item for item in cleaned if item not in known]
    if unknown:
        raise ValueError(f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return tuple(dict.fromkeys(cleaned)) or ("*",)


def subscribed(events: tuple[str, ...], action: EventAction) -> bool:
    """Whether an endpoint subscribed to ``events`` wants ``action``."""
    return any(action.value == item or action in EVENT_GROUPS.get(item, frozenset()) for item in events)


@dataclass(frozen=True)
class RequestInfo:
    """The request that caused an event (absent for events of background jobs)."""

    id: str
    addr: str
    host: str
    method: str
    useragent: str


@dataclass(frozen=True)
class RetentionScan:
    """What one retention scan of a repository found (emitted by the lifecycle jobs)."""

    policy: str
    candidates: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    dry_run: bool = False


@dataclass(frozen=True)
class RegistryEvent:
    """One thing that happened to a repository; the caller fills in what it knows."""

    action: EventAction
    repository: str
    digest: str = ""
    media_type: str = ""
    size: int = 0
    tag: str = ""
    actor: str = ""
    request: RequestInfo | None = None
    retention: RetentionScan | None = None
    # Where the manifest can be fetched ("https://host/v2/<repository>/manifests/<digest>").
    url: str = ""
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def namespace(self) -> str:
        """The first path component of the repository: a user's or an organization's name."""
        return self.repository.split("/", 1)[0]


@dataclass(frozen=True)
class Source:
    """The node that generated the event."""

    addr: str
    instance_id: str


def event_json(event: RegistryEvent, timestamp: datetime, source: Source) -> dict[str, Any]:
    """One event in Distribution's shape."""
    target: dict[str, Any] = {
        "mediaType": event.media_type,
        "size": event.size,
        "digest": event.digest,
        "length": event.size,
        "repository": event.repository,
    }
    if event.url:
        target["url"] = event.url
    if event.tag:
        target["tag"] = event.tag
    body: dict[str, Any] = {
        "id": event.id,
        "timestamp": timestamp.isoformat().replace("+00:00", "Z"),
        "action": event.action.value,
        "target": target,
        "request": {},
        "actor": {"name": event.actor},
        "source": {"addr": source.addr, "instanceID": source.instance_id},
    }
    if event.request is not None:
        r = event.request
        body["request"] = {"id": r.id, "addr": r.addr, "host": r.host, "method": r.method, "useragent": r.useragent}
    if event.retention is not None:
        scan = event.retention
        body["retention"] = {
            "policy": scan.policy,
            "candidates": list(scan.candidates),
            "removed": list(scan.removed),
            "dryRun": scan.dry_run,
        }
    return body


def envelope(events: list[dict[str, Any]]) -> str:
    """The request body for a batch of events."""
    return json.dumps({"events": events}, separators=(",", ":"))


def signature(secret: str, body: bytes) -> str:
    """The value of :data:`SIGNATURE_HEADER` for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does: recompute the HMAC and compare in constant time."""
    return header is not None and hmac.compare_digest(signature(secret, body), header)


def backoff_seconds(attempts: int, base: float, cap: float) -> float:
    """The wait after the ``attempts``-th failed attempt: ``base`` doubled each time, at most ``cap``."""
    return float(min(cap, base * (2 ** max(0, attempts - 1))))
