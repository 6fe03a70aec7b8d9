"""Repository settings: who sees which repositories, and their visibility and description.

Deleting repositories belongs to the lifecycle services, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from portside.auth.accounts import AccountService
from portside.auth.audit import AuditLog
from portside.auth.management.guards import Caller, not_found, require_identity, require_repository_role, store_errors
from portside.auth.policy import Principal, RepositoryFacts, repository_role
from portside.auth.roles import Role
from portside.free_text import check_free_text
from portside.metadata.records import RepositoryRecord
from portside.registry.listings import ListingService


@dataclass(frozen=True)
class RepositoryInfo:
    """A repository's settings and the most the caller may do on it."""

    name: str
    visibility: str
    description: str | None
    created_at: datetime
    role: str | None

    @classmethod
    def of(cls, record: RepositoryRecord, role: Role | None) -> RepositoryInfo:
        """From the store's record and the policy's answer."""
        return cls(
            record.name,
            "public" if record.public else "private",
            record.description,
            record.created_at,
            None if role is None else role.label,
        )


@dataclass(frozen=True)
class RepositoryPage:
    """One page of repositories and, if more follow, the name to continue after."""

    repositories: list[RepositoryInfo]
    next_last: str | None


def _role(principal: Principal, record: RepositoryRecord) -> Role | None:
    return repository_role(principal, RepositoryFacts(record.name, True, record.public))


class RepositoryAdmin:
    """Repository listings and settings."""

    def __init__(self, accounts: AccountService, audit: AuditLog, listings: ListingService) -> None:
        self._accounts = accounts
        self._store = accounts.store
        self._audit = audit
        self._listings = listings

    async def list_visible(self, caller: Caller, limit: int, last: str | None) -> RepositoryPage:
        """The repositories the caller may see (anonymous callers: the public ones), in name order."""
        visible = self._accounts.visibility(caller.principal)
        page = await self._listings.catalog(limit, last, visible)
        records = await self._store.repositories_named(page.items)
        return RepositoryPage([RepositoryInfo.of(r, _role(caller.principal, r)) for r in records], page.next_last)

    async def _record(self, name: str) -> RepositoryRecord:
        record = await self._store.get_repository(name)
        if record is None:
            raise not_found(f"no repository {name!r}")
        return record

    async def get(self, caller: Caller, name: str) -> RepositoryInfo:
        """A repository the caller may pull; ``404`` otherwise, whether it exists or not."""
        role = await require_repository_role(self._accounts, caller, name, Role.PULL)
        return RepositoryInfo.of(await self._record(name), role)

    async def update(
        self, caller: Caller, name: str, visibility: str | None, description: str | None
    ) -> RepositoryInfo:
        """Change visibility or description [repository admins]."""
        require_identity(caller)
        role = await require_repository_role(self._accounts, caller, name, Role.ADMIN)
        check_free_text(description, "the description")
        before = await self._record(name)
        public = None if visibility is None else visibility == "public"
        with store_errors():
            after = await self._store.update_repository(name, public=public, description=description)
        if public is not None and public != before.public:
            await self._audit.record_now(caller.actor, "visibility-change", name, caller.address, visibility=visibility)
        if description is not None and description != before.description:
            await self._audit.record_now(caller.actor, "description-change", name, caller.address)
        return RepositoryInfo.of(after, role)
