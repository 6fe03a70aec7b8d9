"""The notifier: registry events become outbox rows for the endpoints of their namespace.

Pushes, deletes and tag changes are written to the outbox right after the change, before the
client's answer goes out, so an acknowledged change has its notification on disk. Pulls are the
hot path: the notifier keeps each namespace's endpoints in memory for a few seconds, drops a pull
at once when nobody in the namespace subscribed to pulls, and otherwise buffers it and writes the
buffer about once a second (a crash may lose the last second of pull events, never a push).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from portside.auth.management.guards import Caller, not_found, require_namespace_admin
from portside.metadata.store import utcnow
from portside.metadata.webhook_store import DeliveryRecord, EndpointRecord, NewDelivery, WebhookStore
from portside.notifications.events import (
    EventAction,
    RegistryEvent,
    RetentionScan,
    Source,
    envelope,
    event_json,
    parse_event_filter,
    subscribed,
)
from portside.oci.errors import ErrorKind, RegistryError

log = logging.getLogger("portside.webhooks")


@dataclass(frozen=True)
class NotifierOptions:
    """How the notifier behaves (from the settings)."""

    enabled: bool
    endpoint_cache_seconds: float
    buffer_limit: int = 500


@dataclass(frozen=True)
class NewEndpoint:
    """A created endpoint with its secret (shown once)."""

    endpoint: EndpointRecord
    secret: str


def validate_url(url: str) -> str:
    """An endpoint URL must be absolute http(s) with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"webhook URL {url!r} must be an absolute http:// or https:// URL")
    return url


class Notifier:
    """Turns registry events into deliveries and manages endpoints and their delivery log."""

    def __init__(self, store: WebhookStore, options: NotifierOptions, source: Source) -> None:
        self.store = store
        self.options = options
        self.source = source
        self._cache: dict[str, tuple[float, list[EndpointRecord]]] = {}
        self._buffer: list[NewDelivery] = []

    # Events

    async def _endpoints_of(self, namespace: str) -> list[EndpointRecord]:
        now = time.monotonic()
        cached = self._cache.get(namespace)
        if cached is not None and cached[0] > now:
            return cached[1]
        endpoints = [e for e in await self.store.endpoints(namespace) if e.enabled]
        if self.options.endpoint_cache_seconds > 0:
            if len(self._cache) >= 10_000:
                # Bounded: a registry with very many namespaces re-reads instead of growing.
                self._cache.clear()
            self._cache[namespace] = (now + self.options.endpoint_cache_seconds, endpoints)
        return endpoints

    async def _deliveries_for(self, event: RegistryEvent) -> list[NewDelivery]:
        if not self.options.enabled:
            return []
        wanted = [e for e in await self._endpoints_of(event.namespace) if subscribed(e.events, event.action)]
        if not wanted:
            return []
        payload = envelope([event_json(event, utcnow(), self.source)])
        return [NewDelivery(e.id, event.id, event.action.value, event.repository, payload) for e in wanted]

    async def wants(self, repository: str, action: EventAction) -> bool:
        """Whether any endpoint of the repository's namespace subscribed to ``action`` (cached)."""
        if not self.options.enabled:
            return False
        namespace = repository.split("/", 1)[0]
        return any(subscribed(e.events, action) for e in await self._endpoints_of(namespace))

    async def previous_tag_digest(self, repository: str, tag: str) -> str | None:
        """Where ``tag`` points before a push, read only when someone wants tag events."""
        if not self.options.enabled:
            return None
        endpoints = await self._endpoints_of(repository.split("/", 1)[0])
        tag_actions = (EventAction.TAG_CREATED, EventAction.TAG_MOVED)
        if not any(subscribed(e.events, action) for e in endpoints for action in tag_actions):
            return None
        return await self.store.tag_digest(repository, tag)

    async def emit(self, event: RegistryEvent) -> int:
        """Write ``event`` to the outbox for every subscribed endpoint of its namespace now; how many rows.

        The typed entry point for every producer (the API for pushes, deletes and tag changes, the
        lifecycle jobs for :attr:`~portside.notifications.events.EventAction.RETENTION_SCAN`).
        """
        return await self.store.enqueue(await self._deliveries_for(event))

    async def retention_scan(self, repository: str, scan: RetentionScan) -> int:
        """Tell the namespace's endpoints what a retention scan of ``repository`` found (for the lifecycle jobs)."""
        return await self.emit(
            RegistryEvent(action=EventAction.RETENTION_SCAN, repository=repository, actor="retention", retention=scan)
        )

    async def emit_buffered(self, event: RegistryEvent) -> None:
        """Queue a routine event (pulls): written by :meth:`flush` within about a second.

        A failure here is logged, never raised: a pull must not fail for its notification.
        """
        try:
            self._buffer.extend(await self._deliveries_for(event))
            if len(self._buffer) >= self.options.buffer_limit:
                await self.flush()
        except Exception:
            log.exception("could not queue the %s event of %s", event.action.value, event.repository)

    async def emit_buffered_if_wanted(
        self, repository: str, action: EventAction, build: Callable[[], RegistryEvent]
    ) -> None:
        """:meth:`emit_buffered` of ``build()``, called only if an endpoint subscribed to ``action``.

        Never raises, like :meth:`emit_buffered`.
        """
        try:
            wanted = await self.wants(repository, action)
        except Exception:
            log.exception("could not look up the webhook endpoints of %s", repository)
            return
        if wanted:
            await self.emit_buffered(build())

    async def flush(self) -> int:
        """Write buffered events to the outbox; how many rows."""
        rows, self._buffer = self._buffer, []
        return await self.store.enqueue(rows)

    def forget_cached(self, namespace: str) -> None:
        """Drop this process's cached endpoints of a namespace (after a change made here)."""
        self._cache.pop(namespace, None)

    # Endpoints, as the operator (CLI) sees them

    async def add_endpoint(
        self, namespace: str, url: str, events: list[str] | str, secret: str | None = None, enabled: bool = True
    ) -> NewEndpoint:
        """Create an endpoint; without ``secret`` one is generated. ``ValueError`` for a bad URL or event type."""
        validate_url(url)
        chosen = parse_event_filter(events)
        secret = secret or secrets.token_urlsafe(32)
        endpoint_id = await self.store.add_endpoint(namespace, url, secret, chosen, enabled)
        self.forget_cached(namespace)
        endpoint = await self.store.get_endpoint(endpoint_id)
        assert endpoint is not None
        return NewEndpoint(endpoint, secret)

    async def endpoints(self, namespace: str | None = None) -> list[EndpointRecord]:
        """Endpoints of a namespace, or all."""
        return await self.store.endpoints(namespace)

    async def remove_endpoint(self, endpoint_id: int) -> EndpointRecord | None:
        """Delete an endpoint and its delivery log; the endpoint, or ``None`` if there was none."""
        endpoint = await self.store.get_endpoint(endpoint_id)
        if endpoint is not None:
            await self.store.remove_endpoint(endpoint_id)
            self.forget_cached(endpoint.namespace)
        return endpoint

    async def deliveries(self, endpoint_id: int, limit: int = 100) -> list[DeliveryRecord]:
        """An endpoint's delivery log, newest first."""
        return await self.store.deliveries(endpoint_id, limit)

    # Endpoints, as a management API caller sees them (namespace admins only)

    async def _endpoint_in(self, caller: Caller, namespace: str, endpoint_id: int) -> EndpointRecord:
        require_namespace_admin(caller, namespace)
        endpoint = await self.store.get_endpoint(endpoint_id)
        if endpoint is None or endpoint.namespace != namespace:
            raise not_found(f"no webhook {endpoint_id} in namespace {namespace!r}")
        return endpoint

    async def list_for(self, caller: Caller, namespace: str) -> list[EndpointRecord]:
        """The endpoints of a namespace the caller administers."""
        require_namespace_admin(caller, namespace)
        return await self.store.endpoints(namespace)

    async def create_for(
        self, caller: Caller, namespace: str, url: str, events: list[str], secret: str | None, enabled: bool
    ) -> NewEndpoint:
        """Create an endpoint in a namespace the caller administers."""
        require_namespace_admin(caller, namespace)
        try:
            return await self.add_endpoint(namespace, url, events, secret, enabled)
        except ValueError as exc:
            raise RegistryError(ErrorKind.REQUEST_INVALID, str(exc)) from exc

    async def get_for(self, caller: Caller, namespace: str, endpoint_id: int) -> EndpointRecord:
        """One endpoint."""
        return await self._endpoint_in(caller, namespace, endpoint_id)

    async def set_enabled_for(self, caller: Caller, namespace: str, endpoint_id: int, enabled: bool) -> EndpointRecord:
        """Switch an endpoint on or off."""
        await self._endpoint_in(caller, namespace, endpoint_id)
        await self.store.set_enabled(endpoint_id, enabled)
        self.forget_cached(namespace)
        return await self._endpoint_in(caller, namespace, endpoint_id)

    async def remove_for(self, caller: Caller, namespace: str, endpoint_id: int) -> None:
        """Delete an endpoint and its delivery log."""
        await self._endpoint_in(caller, namespace, endpoint_id)
        await self.remove_endpoint(endpoint_id)

    async def deliveries_for(
        self, caller: Caller, namespace: str, endpoint_id: int, limit: int = 100
    ) -> list[DeliveryRecord]:
        """An endpoint's delivery log, newest first."""
        await self._endpoint_in(caller, namespace, endpoint_id)
        return await self.store.deliveries(endpoint_id, limit)
