"""The delivery job: sends due outbox rows, with retries and exponential backoff.

Run by the leader only (see :mod:`portside.workers.scheduler`), so each delivery is attempted by
one process at a time. A ``2xx`` answer delivers; anything else (another status, a refused
connection, a timeout) counts as a failed attempt and is tried again after
``webhook_backoff_seconds * 2**(attempts-1)`` (capped), until ``webhook_max_attempts``,
after which the delivery is marked ``failed``. Rows stay as the delivery log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from portside.config import Settings
from portside.metadata.store import utcnow
from portside.metadata.webhook_store import DeliveryRecord, EndpointRecord, WebhookStore
from portside.notifications.events import (
    DELIVERY_HEADER,
    ENVELOPE_MEDIA_TYPE,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    backoff_seconds,
    signature,
)

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("portside.webhooks")

# Told of each attempt's outcome: "delivered", "retrying" or "failed" (for metrics).
OutcomeRecorder = Callable[[str], None]


@dataclass(frozen=True)
class DeliveryOptions:
    """Retry and transport settings."""

    max_attempts: int
    backoff_seconds: float
    backoff_max_seconds: float
    timeout_seconds: float
    log_retention_days: int = 30
    batch: int = 100
    concurrency: int = 8
    user_agent: str = "Portside-Webhooks"


class Deliverer:
    """Sends due deliveries; one call of :meth:`run` is one pass."""

    def __init__(
        self, store: WebhookStore, options: DeliveryOptions, on_outcome: OutcomeRecorder | None = None
    ) -> None:
        self._store = store
        self._options = options
        self._on_outcome = on_outcome

    @classmethod
    def from_settings(
        cls, store: WebhookStore, settings: Settings, on_outcome: OutcomeRecorder | None = None
    ) -> Deliverer:
        """A deliverer configured by the ``webhook_*`` settings."""
        options = DeliveryOptions(
            max_attempts=settings.webhook_max_attempts,
            backoff_seconds=settings.webhook_backoff_seconds,
            backoff_max_seconds=settings.webhook_backoff_max_seconds,
            timeout_seconds=settings.webhook_timeout_seconds,
            log_retention_days=settings.webhook_log_retention_days,
        )
        return cls(store, options, on_outcome)

    async def prune_log(self) -> str:
        """Forget finished deliveries older than the log's retention (pending ones are kept)."""
        removed = await self._store.prune(utcnow() - timedelta(days=self._options.log_retention_days))
        return f"{removed} old deliveries removed"

    async def run(self) -> str | None:
        """Attempt every due delivery once; a summary, or ``None`` when nothing was due."""
        due = await self._store.due(utcnow(), self._options.batch)
        if not due:
            return None
        # Imported here, where webhooks are delivered: httpx and what it loads cost a worker 7 MiB.
        import httpx

        limit = asyncio.Semaphore(self._options.concurrency)
        async with httpx.AsyncClient(timeout=self._options.timeout_seconds, follow_redirects=False) as client:

            async def one(delivery: DeliveryRecord, endpoint: EndpointRecord) -> str:
                async with limit:
                    return await self._attempt(client, delivery, endpoint)

            outcomes = await asyncio.gather(*(one(d, e) for d, e in due))
        counts = {name: outcomes.count(name) for name in ("delivered", "retrying", "failed")}
        return ", ".join(f"{count} {name}" for name, count in counts.items())

    async def _attempt(self, client: httpx.AsyncClient, delivery: DeliveryRecord, endpoint: EndpointRecord) -> str:
        import httpx  # loaded by run() already

        body = delivery.payload.encode()
        headers = {
            "Content-Type": ENVELOPE_MEDIA_TYPE,
            "User-Agent": self._options.user_agent,
            SIGNATURE_HEADER: signature(endpoint.secret, body),
            EVENT_HEADER: delivery.action,
            DELIVERY_HEADER: str(delivery.id),
        }
        status_code: int | None = None
        error: str | None = None
        try:
            response = await client.post(endpoint.url, content=body, headers=headers)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}: {response.text[:200]}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        attempts = delivery.attempts + 1
        now = utcnow()
        if error is None:
            outcome, next_at = "delivered", now
        elif attempts >= self._options.max_attempts:
            outcome, next_at = "failed", now
            log.warning("webhook delivery %s to %s failed for good: %s", delivery.id, endpoint.url, error)
        else:
            outcome = "retrying"
            wait = backoff_seconds(attempts, self._options.backoff_seconds, self._options.backoff_max_seconds)
            next_at = now + timedelta(seconds=wait)
        await self._store.record_attempt(
            delivery.id,
            status="pending" if outcome == "retrying" else outcome,
            attempts=attempts,
            status_code=status_code,
            error=error,
            next_attempt_at=next_at,
        )
        if self._on_outcome is not None:
            self._on_outcome(outcome)
        return outcome
