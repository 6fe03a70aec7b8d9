"""``/audit``: the audit log [site admins], newest first, with filters and a cursor."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from portside.api.management.deps import CallerDep, ServicesDep
from portside.auth.management.audit import MAX_AUDIT_PAGE, AuditQuery
from portside.metadata.records import MAX_ROW_ID

router = APIRouter(tags=["audit"])


class AuditEntry(BaseModel):
    """One audit event: who did what to which target, when and from where."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    address: str | None
    detail: dict[str, Any]


class AuditLogPage(BaseModel):
    """Events, newest first; pass `next_before` as `before` for older ones."""

    events: list[AuditEntry]
    next_before: int | None


@router.get("/audit", summary="Read the audit log [site admin]")
async def read_audit_log(
    caller: CallerDep,
    services: ServicesDep,
    actor: Annotated[str | None, Query(description="Exactly this actor, e.g. `user:alice` or `robot:acme+ci`.")] = None,
    action: Annotated[
        str | None, Query(description="Exactly this action, e.g. `push`, `grant`, `user-create`.")
    ] = None,
    target: Annotated[
        str | None, Query(description="A repository or namespace, and everything under it (`acme` finds `acme/app`).")
    ] = None,
    since: Annotated[datetime | None, Query(description="At or after this time (ISO 8601; UTC if no zone).")] = None,
    until: Annotated[datetime | None, Query(description="Before this time.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_PAGE)] = 100,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ROW_ID, description="Only events older than this id (a cursor).")
    ] = None,
) -> AuditLogPage:
    """Who did what, when and from where."""
    query = AuditQuery(actor, action, target, since, until, limit, before)
    page = await services.audit.events(caller, query)
    return AuditLogPage(events=[AuditEntry.model_validate(e) for e in page.events], next_before=page.next_before)
