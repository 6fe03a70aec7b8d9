"""Deleting a whole repository: its tags, manifests, blob links and history go at once.

Blob bytes are left to garbage collection (other repositories may link them). A repository
holding a tag that an immutable rule protects is not deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from portside.auth.accounts import AccountService
from portside.auth.audit import AuditLog
from portside.auth.management.guards import Caller, not_found, require_repository_role
from portside.auth.roles import Role
from portside.lifecycle.changes import RepositoryChanged, announce
from portside.lifecycle.immutability import ImmutabilityService, matching_rule
from portside.metadata.lifecycle_store import LifecycleStore
from portside.metadata.store import MetadataStore
from portside.oci.errors import ErrorKind, RegistryError
from portside.oci.names import validate_name


@dataclass(frozen=True)
class RepositoryDeleted:
    """What a repository delete removed."""

    repository: str
    tags: int
    manifests: int
    blob_links: int


class RepositoryDeletes:
    """Whole-repository deletes for the API, the CLI and the UI."""

    def __init__(
        self,
        metadata: MetadataStore,
        store: LifecycleStore,
        immutability: ImmutabilityService,
        accounts: AccountService,
        audit: AuditLog,
        enabled: bool,
        changed: Sequence[RepositoryChanged] = (),
    ) -> None:
        self._metadata = metadata
        self._store = store
        self._immutability = immutability
        self._accounts = accounts
        self._audit = audit
        self.enabled = enabled
        self._changed = changed

    async def delete(self, caller: Caller, repository: str) -> RepositoryDeleted:
        """Delete a repository [delete role]."""
        await require_repository_role(self._accounts, caller, repository, Role.DELETE)
        return await self.delete_as(caller.actor, repository, caller.address)

    async def delete_as(self, actor: str, repository: str, address: str | None = None) -> RepositoryDeleted:
        """Delete a repository without a permission check (the CLI); audited.

        ``UNSUPPORTED`` if deletes are disabled, ``DENIED`` if an immutable rule protects one of
        its tags, ``NAME_UNKNOWN`` if there is no such repository.
        """
        validate_name(repository)
        if not self.enabled:
            raise RegistryError(ErrorKind.UNSUPPORTED, "deletes are disabled on this registry")
        rules = await self._immutability.rules_for(repository)
        if rules:
            for tag in await self._metadata.list_tags(repository, None, None) or []:
                rule = matching_rule(rules, tag)
                if rule is not None:
                    raise RegistryError(
                        ErrorKind.DENIED,
                        f"tag {tag!r} is protected by {rule.describe()}: the repository cannot be deleted",
                        {"tag": tag, "rule": rule.id, "pattern": rule.pattern},
                    )
        counts = await self._store.delete_repository(repository)
        if counts is None:
            raise not_found(f"no repository {repository!r}")
        await announce(self._changed, repository)
        await self._audit.record_now(actor, "repository-delete", repository, address, **counts)
        return RepositoryDeleted(repository, counts["tags"], counts["manifests"], counts["blob_links"])
