"""Retention: apply the policies of repositories and namespaces, dry or for real, and log each run.

Tags are deleted through the store's tag delete, the one every tag delete takes, so each
removal is recorded in tag history (actor ``retention``) and immutable rules are checked again
at the moment of the delete; a tag moved since it was chosen is left alone. Untagged
manifests are deleted only if, under lock, they are still untagged and unreferenced. What
retention keeps (recently pulled manifests, young untagged ones) is also kept by garbage
collection.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from portside.auth.accounts import AccountService
from portside.auth.audit import AuditLog
from portside.auth.management.guards import (
    Caller,
    not_found,
    require_identity,
    require_namespace_admin,
    require_repository_role,
    require_site_admin,
)
from portside.auth.roles import Role
from portside.lifecycle.changes import RepositoryChanged, RetentionScanned, ScanListener, announce
from portside.lifecycle.immutability import ImmutabilityService, matching_rule, validate_pattern
from portside.lifecycle.retention_policy import Policy, RepositoryFacts, Selection, select_removals
from portside.metadata.gc_store import GcStore
from portside.metadata.lifecycle_store import namespace_of
from portside.metadata.retention_store import PolicyRecord, RetentionRunRecord, RetentionStore
from portside.metadata.store import MetadataStore, utcnow
from portside.metadata.tag_changes import TagGuard, TagLocked
from portside.oci.errors import ErrorKind, RegistryError
from portside.oci.names import validate_name

log = logging.getLogger("portside.retention")

RETENTION_ACTOR = "retention"


@dataclass(frozen=True)
class PolicyInput:
    """A policy as an administrator gives it."""

    scope_kind: str
    scope: str
    policy: Policy


class PullRecorder:
    """Last-pulled times, buffered in memory and written at most every few seconds (never per GET)."""

    def __init__(self, store: RetentionStore) -> None:
        self._store = store
        self._pending: dict[tuple[str, str], datetime] = {}

    def record(self, repository: str, digest: str) -> None:
        """Note a pull now (no I/O)."""
        self._pending[(repository, digest)] = utcnow()

    async def flush(self) -> int:
        """Write the buffered pulls; how many manifests."""
        pending, self._pending = self._pending, {}
        await self._store.record_pulls(pending)
        return len(pending)


class RetentionService:
    """Retention policies: management, evaluation and runs."""

    def __init__(
        self,
        store: RetentionStore,
        metadata: MetadataStore,
        gc_store: GcStore,
        immutability: ImmutabilityService,
        accounts: AccountService,
        audit: AuditLog,
        pulls: PullRecorder,
        changed: Sequence[RepositoryChanged] = (),
        scanned: Sequence[ScanListener] = (),
    ) -> None:
        self._store = store
        self._store_tags = metadata
        self._gc_store = gc_store
        self._immutability = immutability
        self._accounts = accounts
        self._audit = audit
        self._pulls = pulls
        self._changed = changed
        self._scanned = scanned

    # Management

    async def _require_scope_admin(self, caller: Caller, scope_kind: str, scope: str) -> None:
        require_identity(caller)
        if scope_kind == "namespace":
            require_namespace_admin(caller, scope)
        elif scope_kind == "repository":
            await require_repository_role(self._accounts, caller, scope, Role.ADMIN)
        else:
            raise RegistryError(ErrorKind.REQUEST_INVALID, "scope_kind is 'repository' or 'namespace'")

    @staticmethod
    def validate(item: PolicyInput) -> PolicyInput:
        """Check names and pattern; ``ValueError`` with a clear message otherwise."""
        if item.scope_kind == "repository":
            validate_name(item.scope)
        elif item.scope_kind == "namespace":
            if not item.scope or "/" in item.scope:
                raise ValueError(f"invalid namespace {item.scope!r}")
            validate_name(item.scope)
        else:
            raise ValueError("scope_kind is 'repository' or 'namespace'")
        validate_pattern(item.policy.tag_pattern)
        return item

    async def add_policy(self, caller: Caller, item: PolicyInput) -> PolicyRecord:
        """Add a policy [admins of its repository or namespace]."""
        await self._require_scope_admin(caller, item.scope_kind, item.scope)
        return await self.add_policy_as(caller.actor, item, caller.address)

    async def add_policy_as(self, actor: str, item: PolicyInput, address: str | None = None) -> PolicyRecord:
        """Add a policy as the operator (CLI)."""
        try:
            self.validate(item)
        except ValueError as exc:
            raise RegistryError(ErrorKind.REQUEST_INVALID, str(exc)) from exc
        record = await self._store.add_policy(item.scope_kind, item.scope, item.policy, actor)
        await self._audit.record_now(actor, "retention-policy-add", item.scope, address, policy=record.id)
        return record

    async def list_policies(self, caller: Caller, scope_kind: str | None, scope: str | None) -> list[PolicyRecord]:
        """Policies of one scope [its admins], or all of them [site admins]."""
        if scope_kind is None or scope is None:
            require_site_admin(caller)
        else:
            await self._require_scope_admin(caller, scope_kind, scope)
        return await self._store.list_policies(scope_kind, scope)

    async def all_policies(self) -> list[PolicyRecord]:
        """Every policy (CLI)."""
        return await self._store.list_policies()

    async def _policy(self, policy_id: int) -> PolicyRecord:
        record = await self._store.get_policy(policy_id)
        if record is None:
            raise not_found(f"no retention policy {policy_id}")
        return record

    async def remove_policy(self, caller: Caller, policy_id: int) -> PolicyRecord:
        """Remove a policy [admins of its scope]."""
        record = await self._policy(policy_id)
        await self._require_scope_admin(caller, record.scope_kind, record.scope)
        return await self.remove_policy_as(caller.actor, policy_id, caller.address)

    async def remove_policy_as(self, actor: str, policy_id: int, address: str | None = None) -> PolicyRecord:
        """Remove a policy as the operator (CLI)."""
        record = await self._policy(policy_id)
        await self._store.remove_policy(policy_id)
        await self._audit.record_now(actor, "retention-policy-remove", record.scope, address, policy=policy_id)
        return record

    # Evaluation and runs

    async def _policies_by_repository(self, policies: list[PolicyRecord]) -> dict[tuple[int, str], list[Policy]]:
        covered: dict[tuple[int, str], list[Policy]] = {}
        for record in policies:
            for repository in await self._store.repositories_in(record.scope_kind, record.scope):
                covered.setdefault(repository, []).append(record.policy)
        return covered

    async def _selection(
        self, repository_id: int, name: str, policies: list[Policy], now: datetime
    ) -> tuple[RepositoryFacts, Selection]:
        facts = await self._store.facts(repository_id)
        rules = await self._immutability.rules_for(name)
        return facts, select_removals(policies, facts, now, lambda tag: matching_rule(rules, tag) is not None)

    async def kept_manifests(self, repository_id: int, name: str) -> set[str]:
        """What retention keeps in a repository (pulled recently, untagged but young): GC keeps it too."""
        await self._pulls.flush()
        policies = [
            record.policy
            for record in await self._store.list_policies()
            if (record.scope_kind == "repository" and record.scope == name)
            or (record.scope_kind == "namespace" and record.scope == namespace_of(name))
        ]
        if not policies:
            return set()
        _, selection = await self._selection(repository_id, name, policies, utcnow())
        return set(selection.kept_manifests)

    async def run_for(self, caller: Caller, *, dry_run: bool, policy_id: int | None) -> RetentionRunRecord:
        """Run one policy [admins of its scope] or all of them [site admins]."""
        if policy_id is None:
            require_site_admin(caller)
        else:
            record = await self._policy(policy_id)
            await self._require_scope_admin(caller, record.scope_kind, record.scope)
        return await self.run(dry_run=dry_run, trigger="api", actor=caller.actor, policy_id=policy_id)

    async def run(
        self, *, dry_run: bool, trigger: str, actor: str | None = None, policy_id: int | None = None
    ) -> RetentionRunRecord:
        """Apply the policies (one, or all); record and return what was (or would be) removed."""
        await self._pulls.flush()
        policies = [await self._policy(policy_id)] if policy_id is not None else await self._store.list_policies()
        run_id = await self._store.start_run(dry_run, trigger, actor)
        removed: list[dict[str, str]] = []
        try:
            now = utcnow()
            for (repository_id, name), covering in sorted((await self._policies_by_repository(policies)).items()):
                facts, selection = await self._selection(repository_id, name, covering, now)
                applied = await self._apply(repository_id, name, facts, selection, dry_run)
                removed.extend(applied)
                scan = RetentionScanned(
                    repository=name,
                    policy="all" if policy_id is None else str(policy_id),
                    candidates=(*selection.tags, *selection.manifests),
                    removed=tuple(item["reference"] for item in applied),
                    dry_run=dry_run,
                )
                for listener in self._scanned:
                    await listener(scan)
        except Exception as exc:
            log.exception("retention run %s failed", run_id)
            return await self._store.finish_run(run_id, "failed", removed, repr(exc))
        return await self._store.finish_run(run_id, "done", removed)

    async def _apply(
        self, repository_id: int, repository: str, facts: RepositoryFacts, selection: Selection, dry_run: bool
    ) -> list[dict[str, str]]:
        removed: list[dict[str, str]] = []
        digests = {tag.name: tag.digest for tag in facts.tags}
        guard = None if dry_run else await self._immutability.guard_for(repository)
        for tag in selection.tags:
            if not dry_run and not await self._delete_tag(repository, tag, digests[tag], guard):
                continue
            removed.append({"repository": repository, "kind": "tag", "reference": tag})
        for digest in selection.manifests:
            # Only if, under lock, it is still untagged and no index references it (a push may
            # have tagged it since it was chosen).
            if not dry_run and not await self._gc_store.delete_manifest_if_unreferenced(
                repository_id, digest, utcnow()
            ):
                continue
            removed.append({"repository": repository, "kind": "manifest", "reference": digest})
        if removed and not dry_run:
            await announce(self._changed, repository)
        return removed

    async def _delete_tag(self, repository: str, tag: str, digest: str, guard: TagGuard | None) -> bool:
        """Through the store's tag delete (recorded in history); False if it moved or became immutable."""
        try:
            return await self._store_tags.delete_tag(repository, tag, RETENTION_ACTOR, guard, expected_digest=digest)
        except TagLocked as exc:
            log.info("retention left %s:%s alone: %s", repository, tag, exc)
            return False

    async def scheduled(self) -> str:
        """The scheduler's job."""
        record = await self.run(dry_run=False, trigger="schedule")
        return f"run {record.id} {record.status}: removed {len(record.removed)}"

    async def runs_for(self, caller: Caller, limit: int = 50) -> list[RetentionRunRecord]:
        """The latest runs [site admins]."""
        require_site_admin(caller)
        return await self._store.list_runs(limit)

    async def runs(self, limit: int = 50) -> list[RetentionRunRecord]:
        """The latest runs, newest first."""
        return await self._store.list_runs(limit)
