"""``/webhooks/{namespace}``: a namespace's webhook endpoints and their delivery log [namespace admin]."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from portside.api.management.deps import CallerDep, RegistryDep, RowId
from portside.metadata.webhook_store import DeliveryRecord, EndpointRecord

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


class WebhookCreate(BaseModel):
    """A new endpoint. Events: push, pull, delete, tag_created, tag_moved, tag_deleted, retention_scan,
    ``tag`` (all tag changes) or ``*`` (everything, the default)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000, description="Absolute http(s) URL the events are POSTed to.")
    events: list[str] = Field(default_factory=lambda: ["*"], description="Event types to send.")
    secret: str | None = Field(
        None, min_length=16, max_length=200, description="HMAC key; generated (and shown once) when omitted."
    )
    enabled: bool = True


class WebhookUpdate(BaseModel):
    """Switch an endpoint on or off."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool


class Webhook(BaseModel):
    """An endpoint (its secret is shown only when it is created)."""

    id: int
    namespace: str
    url: str
    events: list[str]
    enabled: bool
    created_at: datetime


class NewWebhook(Webhook):
    """A created endpoint with its signing secret."""

    secret: str


class Delivery(BaseModel):
    """One event for one endpoint: ``pending`` (with its next attempt), ``delivered`` or ``failed``."""

    id: int
    event_id: str
    action: str
    repository: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None


def webhook_view(endpoint: EndpointRecord) -> Webhook:
    """The API's view of an endpoint."""
    return Webhook(
        id=endpoint.id,
        namespace=endpoint.namespace,
        url=endpoint.url,
        events=list(endpoint.events),
        enabled=endpoint.enabled,
        created_at=endpoint.created_at,
    )


def delivery_view(record: DeliveryRecord) -> Delivery:
    """The API's view of a delivery."""
    return Delivery(
        id=record.id,
        event_id=record.event_id,
        action=record.action,
        repository=record.repository,
        status=record.status,
        attempts=record.attempts,
        last_status_code=record.last_status_code,
        last_error=record.last_error,
        created_at=record.created_at,
        last_attempt_at=record.last_attempt_at,
        next_attempt_at=record.next_attempt_at if record.status == "pending" else None,
        delivered_at=record.delivered_at,
    )


@router.get("/{namespace}", summary="List a namespace's webhooks [namespace admin]")
async def list_webhooks(namespace: str, caller: CallerDep, registry: RegistryDep) -> list[Webhook]:
    """Every endpoint of the namespace."""
    return [webhook_view(e) for e in await registry.notifier.list_for(caller, namespace)]


@router.post("/{namespace}", status_code=201, summary="Add a webhook [namespace admin]")
async def create_webhook(namespace: str, body: WebhookCreate, caller: CallerDep, registry: RegistryDep) -> NewWebhook:
    """A new endpoint; the answer carries its `secret` (the HMAC key of `X-Portside-Signature`)."""
    created = await registry.notifier.create_for(caller, namespace, body.url, body.events, body.secret, body.enabled)
    await registry.audit.record_now(
        caller.actor, "webhook-create", namespace, caller.address, id=created.endpoint.id, url=body.url
    )
    return NewWebhook(**webhook_view(created.endpoint).model_dump(), secret=created.secret)


@router.get("/{namespace}/{webhook_id}", summary="Get a webhook [namespace admin]")
async def get_webhook(namespace: str, webhook_id: RowId, caller: CallerDep, registry: RegistryDep) -> Webhook:
    """One endpoint."""
    return webhook_view(await registry.notifier.get_for(caller, namespace, webhook_id))


@router.patch("/{namespace}/{webhook_id}", summary="Enable or disable a webhook [namespace admin]")
async def update_webhook(
    namespace: str, webhook_id: RowId, body: WebhookUpdate, caller: CallerDep, registry: RegistryDep
) -> Webhook:
    """Switch the endpoint on or off; a disabled endpoint gets no new events."""
    updated = await registry.notifier.set_enabled_for(caller, namespace, webhook_id, body.enabled)
    await registry.audit.record_now(
        caller.actor, "webhook-update", namespace, caller.address, id=webhook_id, enabled=body.enabled
    )
    return webhook_view(updated)


@router.delete("/{namespace}/{webhook_id}", status_code=204, summary="Remove a webhook [namespace admin]")
async def delete_webhook(namespace: str, webhook_id: RowId, caller: CallerDep, registry: RegistryDep) -> None:
    """Remove the endpoint with its delivery log."""
    await registry.notifier.remove_for(caller, namespace, webhook_id)
    await registry.audit.record_now(caller.actor, "webhook-delete", namespace, caller.address, id=webhook_id)


@router.get("/{namespace}/{webhook_id}/deliveries", summary="A webhook's delivery log [namespace admin]")
async def list_deliveries(
    namespace: str,
    webhook_id: RowId,
    caller: CallerDep,
    registry: RegistryDep,
    limit: int = Query(100, ge=1, le=1000),
) -> list[Delivery]:
    """Deliveries newest first: status, attempts, last status code and error, timestamps."""
    return [delivery_view(d) for d in await registry.notifier.deliveries_for(caller, namespace, webhook_id, limit)]
