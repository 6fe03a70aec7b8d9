"""Webhook endpoints, the delivery outbox (which doubles as the delivery log), and registry flags."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError

from portside.metadata.fast_sqlite import prebuilt
from portside.metadata.store import MetadataStore, as_utc, utcnow
from portside.metadata.tables import registry_flags, repositories, tags, webhook_deliveries, webhook_endpoints


@dataclass(frozen=True)
class EndpointRecord:
    """A webhook endpoint of a namespace."""

    id: int
    namespace: str
    url: str
    secret: str
    events: tuple[str, ...]
    enabled: bool
    created_at: datetime


@dataclass(frozen=True)
class NewDelivery:
    """An event to send to one endpoint."""

    endpoint_id: int
    event_id: str
    action: str
    repository: str
    payload: str


@dataclass(frozen=True)
class DeliveryRecord:
    """One event for one endpoint: pending, delivered or failed, with its attempts."""

    id: int
    endpoint_id: int
    event_id: str
    action: str
    repository: str
    payload: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    delivered_at: datetime | None


def _optional_time(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _endpoint(row: Any) -> EndpointRecord:
    return EndpointRecord(
        id=int(row.id),
        namespace=row.namespace,
        url=row.url,
        secret=row.secret,
        events=tuple(e for e in row.events.split(",") if e),
        enabled=bool(row.enabled),
        created_at=as_utc(row.created_at),
    )


def _delivery(row: Any) -> DeliveryRecord:
    return DeliveryRecord(
        id=int(row.id),
        endpoint_id=int(row.endpoint_id),
        event_id=row.event_id,
        action=row.action,
        repository=row.repository,
        payload=row.payload,
        status=row.status,
        attempts=int(row.attempts),
        next_attempt_at=as_utc(row.next_attempt_at),
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=as_utc(row.created_at),
        last_attempt_at=_optional_time(row.last_attempt_at),
        delivered_at=_optional_time(row.delivered_at),
    )


class WebhookStore:
    """SQL for webhooks and registry flags, over the registry's metadata store."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    async def add_endpoint(self, namespace: str, url: str, secret: str, events: Iterable[str], enabled: bool) -> int:
        """Create an endpoint; its id."""
        async with self._store.writing() as conn:
            result = await conn.execute(
                webhook_endpoints.insert().values(
                    namespace=namespace,
                    url=url,
                    secret=secret,
                    events=",".join(events),
                    enabled=enabled,
                    created_at=utcnow(),
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    async def get_endpoint(self, endpoint_id: int) -> EndpointRecord | None:
        """One endpoint by id."""
        async with self._store.reading() as conn:
            row = (await conn.execute(select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id))).first()
        return None if row is None else _endpoint(row)

    async def endpoints(self, namespace: str | None = None) -> list[EndpointRecord]:
        """Endpoints of a namespace (every endpoint without one), oldest first."""
        query = select(webhook_endpoints).order_by(webhook_endpoints.c.id)
        if namespace is not None:
            query = query.where(webhook_endpoints.c.namespace == namespace)
        async with self._store.reading() as conn:
            return [_endpoint(row) for row in (await conn.execute(query)).all()]

    async def set_enabled(self, endpoint_id: int, enabled: bool) -> bool:
        """Switch an endpoint on or off; False if there is none."""
        async with self._store.writing() as conn:
            result = await conn.execute(
                update(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id).values(enabled=enabled)
            )
            return bool(result.rowcount)

    async def remove_endpoint(self, endpoint_id: int) -> bool:
        """Delete an endpoint with its deliveries; False if there was none."""
        async with self._store.writing() as conn:
            await conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.endpoint_id == endpoint_id))
            result = await conn.execute(delete(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id))
            return bool(result.rowcount)

    async def enqueue(self, deliveries: Iterable[NewDelivery]) -> int:
        """Write events to the outbox, due now; how many."""
        now = utcnow()
        rows = [
            {
                "endpoint_id": d.endpoint_id,
                "event_id": d.event_id,
                "action": d.action,
                "repository": d.repository,
                "payload": d.payload,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for d in deliveries
        ]
        if not rows:
            return 0
        for attempt in range(2):
            try:
                async with self._store.writing() as conn:
                    # Another process may have removed an endpoint it still had cached here.
                    wanted = {row["endpoint_id"] for row in rows}
                    present = set(
                        (
                            await conn.execute(select(webhook_endpoints.c.id).where(webhook_endpoints.c.id.in_(wanted)))
                        ).scalars()
                    )
                    rows = [row for row in rows if row["endpoint_id"] in present]
                    if rows:
                        await conn.execute(webhook_deliveries.insert(), rows)
                    return len(rows)
            except IntegrityError:
                # Removed between the check and the insert (PostgreSQL); the next round drops it.
                if attempt:
                    raise
        return 0

    async def due(self, now: datetime, limit: int) -> list[tuple[DeliveryRecord, EndpointRecord]]:
        """Pending deliveries whose time has come, oldest first, with their endpoints."""
        query = (
            select(webhook_deliveries, webhook_endpoints)
            .select_from(
                webhook_deliveries.join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
            )
            .where(and_(webhook_deliveries.c.status == "pending", webhook_deliveries.c.next_attempt_at <= now))
            .order_by(webhook_deliveries.c.id)
            .limit(limit)
        )
        async with self._store.reading() as conn:
            rows = (await conn.execute(query)).all()
        pairs = []
        for row in rows:
            mapping = row._mapping
            delivery = _delivery(_Row({c.name: mapping[c] for c in webhook_deliveries.c}))
            endpoint = _endpoint(_Row({c.name: mapping[c] for c in webhook_endpoints.c}))
            pairs.append((delivery, endpoint))
        return pairs

    async def record_attempt(
        self,
        delivery_id: int,
        *,
        status: str,
        attempts: int,
        status_code: int | None,
        error: str | None,
        next_attempt_at: datetime,
    ) -> None:
        """Note how one attempt went and what happens next."""
        now = utcnow()
        values: dict[str, Any] = {
            "status": status,
            "attempts": attempts,
            "last_status_code": status_code,
            "last_error": error,
            "last_attempt_at": now,
            "next_attempt_at": next_attempt_at,
        }
        if status == "delivered":
            values["delivered_at"] = now
        async with self._store.writing() as conn:
            await conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id).values(values))

    async def prune(self, before: datetime) -> int:
        """Forget delivered and failed deliveries created before ``before``; how many."""
        async with self._store.writing() as conn:
            result = await conn.execute(
                delete(webhook_deliveries).where(
                    webhook_deliveries.c.status != "pending", webhook_deliveries.c.created_at < before
                )
            )
            return int(result.rowcount or 0)

    async def deliveries(self, endpoint_id: int, limit: int = 100) -> list[DeliveryRecord]:
        """The delivery log of an endpoint, newest first."""
        query = (
            select(webhook_deliveries)
            .where(webhook_deliveries.c.endpoint_id == endpoint_id)
            .order_by(webhook_deliveries.c.id.desc())
            .limit(limit)
        )
        async with self._store.reading() as conn:
            return [_delivery(row) for row in (await conn.execute(query)).all()]

    async def tag_digest(self, repository: str, tag: str) -> str | None:
        """What a tag points at now (to tell a created tag from a moved one)."""
        async with self._store.reading() as conn:
            row = (await conn.execute(_TAG_DIGEST, {"repository": repository, "tag": tag})).first()
        return None if row is None else str(row.digest)

    # Registry-wide flags

    async def get_flag(self, name: str) -> str | None:
        """A registry flag's value, or ``None``."""
        async with self._store.reading() as conn:
            row = (await conn.execute(select(registry_flags.c.value).where(registry_flags.c.name == name))).first()
        return None if row is None else str(row.value)

    async def set_flag(self, name: str, value: str) -> None:
        """Set a registry flag."""
        now = utcnow()
        statement = self._store.insert(registry_flags).values(name=name, value=value, updated_at=now)
        async with self._store.writing() as conn:
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[registry_flags.c.name], set_={"value": value, "updated_at": now}
                )
            )


class _Row:
    """Attribute access over a mapping, so joined rows can reuse the single-table converters."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


# Read before every tagged push when an endpoint wants tag events: built once.
_TAG_DIGEST = prebuilt(
    select(tags.c.digest)
    .select_from(tags.join(repositories, repositories.c.id == tags.c.repository_id))
    .where(repositories.c.name == bindparam("repository"), tags.c.name == bindparam("tag"))
)
