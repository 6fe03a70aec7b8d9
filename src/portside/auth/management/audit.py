"""Reading the audit log [site admins]: newest first, filtered, paged by a cursor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from portside.auth.management.guards import Caller, require_site_admin
from portside.metadata.accounts_store import AccountStore
from portside.metadata.records import AuditEvent
from portside.oci.errors import ErrorKind, RegistryError

MAX_AUDIT_PAGE = 1000


@dataclass(frozen=True)
class AuditQuery:
    """Filters on the audit log; ``target`` matches a repository or namespace and everything under it."""

    actor: str | None = None
    action: str | None = None
    target: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    before: int | None = None


@dataclass(frozen=True)
class AuditPage:
    """Events, newest first, and the cursor for the next (older) page if there may be one."""

    events: list[AuditEvent]
    next_before: int | None


def as_aware(moment: datetime | None) -> datetime | None:
    """A filter time as an aware datetime; one without a zone is taken as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


class AuditQueries:
    """Audit log queries."""

    def __init__(self, store: AccountStore) -> None:
        self._store = store

    async def events(self, caller: Caller, query: AuditQuery) -> AuditPage:
        """A page of events matching ``query``."""
        require_site_admin(caller)
        if not 1 <= query.limit <= MAX_AUDIT_PAGE:
            raise RegistryError(ErrorKind.REQUEST_INVALID, f"limit must be 1 to {MAX_AUDIT_PAGE}")
        events = await self._store.query_events(
            actor=query.actor,
            action=query.action,
            target=query.target.rstrip("/") if query.target else None,
            since=as_aware(query.since),
            until=as_aware(query.until),
            limit=query.limit,
            before_id=query.before,
        )
        full = len(events) == query.limit
        return AuditPage(events, events[-1].id if full and events else None)
