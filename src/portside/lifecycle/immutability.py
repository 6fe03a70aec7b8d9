"""Immutable tags: rules per repository or namespace, by glob pattern (``v*``, ``release-*``).

A tag matching a rule may be created, and re-pushed with the same digest, but never moved to
another digest or deleted (directly, by deleting its manifest, by a restore, or with its
repository). The check runs inside the store's write transaction through a :data:`TagGuard`.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Literal

from portside.auth.accounts import AccountService
from portside.auth.audit import AuditLog
from portside.auth.management.guards import (
    Caller,
    not_found,
    require_namespace_admin,
    require_repository_role,
    require_site_admin,
    store_errors,
)
from portside.auth.roles import Role
from portside.metadata.lifecycle_store import LifecycleStore, namespace_of
from portside.metadata.tag_changes import ImmutableRule, TagGuard, TagLocked
from portside.oci.errors import ErrorKind, RegistryError
from portside.oci.names import validate_name

ScopeKind = Literal["repository", "namespace"]

MAX_PATTERN = 128
# What a pattern may hold: tag characters plus the glob's own ``*``, ``?`` and ``[...]``.
_PATTERN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-*?[]!")


def validate_pattern(pattern: str) -> str:
    """The pattern if it is a usable tag glob; ``ValueError`` otherwise."""
    if not pattern or len(pattern) > MAX_PATTERN:
        raise ValueError(f"a pattern has 1 to {MAX_PATTERN} characters")
    bad = sorted(set(pattern) - _PATTERN_CHARS)
    if bad:
        raise ValueError(f"a pattern holds tag characters and * ? [ ] only, not {''.join(bad)!r}")
    return pattern


def validate_scope(scope_kind: str, scope: str) -> str:
    """The scope if it names a repository or a namespace (one path component); else an error."""
    if scope_kind not in ("repository", "namespace"):
        raise ValueError("a rule's scope is a repository or a namespace")
    validate_name(scope)
    if scope_kind == "namespace" and "/" in scope:
        raise ValueError(f"a namespace is one path component, not {scope!r}")
    return scope


def tag_matches(pattern: str, tag: str) -> bool:
    """True if ``tag`` matches the glob ``pattern`` (case-sensitive, as tags are)."""
    return fnmatchcase(tag, pattern)


def matching_rule(rules: Iterable[ImmutableRule], tag: str) -> ImmutableRule | None:
    """The first rule (lowest id) whose pattern ``tag`` matches."""
    for rule in sorted(rules, key=lambda r: r.id):
        if tag_matches(rule.pattern, tag):
            return rule
    return None


def guard_of(rules: list[ImmutableRule]) -> TagGuard | None:
    """A guard for the store's write transactions, or None when no rule applies at all."""
    if not rules:
        return None
    return lambda tag: matching_rule(rules, tag)


def locked_error(exc: TagLocked) -> RegistryError:
    """The ``DENIED`` answer for a change an immutable rule forbids."""
    rule = exc.rule
    return RegistryError(
        ErrorKind.DENIED,
        str(exc),
        {"tag": exc.tag, "rule": rule.id, "scope": f"{rule.scope_kind}:{rule.scope}", "pattern": rule.pattern},
    )


class ImmutabilityService:
    """Which tags are immutable, and the management of the rules."""

    def __init__(self, store: LifecycleStore, accounts: AccountService, audit: AuditLog) -> None:
        self._store = store
        self._accounts = accounts
        self._audit = audit

    async def rules_for(self, repository: str) -> list[ImmutableRule]:
        """Every rule that applies to ``repository`` (its own and its namespace's)."""
        return await self._store.rules_for(repository)

    async def guard_for(self, repository: str) -> TagGuard | None:
        """The guard tag writes of ``repository`` pass to the store (None: no rule applies)."""
        return guard_of(await self._store.rules_for(repository))

    async def immutable_rule_for(self, repository: str, tag: str) -> ImmutableRule | None:
        """The rule that makes ``repository:tag`` immutable, or None (retention must skip such tags)."""
        return matching_rule(await self._store.rules_for(repository), tag)

    # Management (API, CLI, UI)

    async def all_rules(self) -> list[ImmutableRule]:
        """Every rule, in id order (no permission check: the CLI, or callers that checked)."""
        return await self._store.list_rules()

    async def _require_scope_admin(self, caller: Caller, scope_kind: ScopeKind, scope: str) -> None:
        if scope_kind == "namespace":
            require_namespace_admin(caller, scope)
        else:
            await require_repository_role(self._accounts, caller, scope, Role.ADMIN)

    async def list_rules(
        self, caller: Caller, namespace: str | None = None, repository: str | None = None
    ) -> list[ImmutableRule]:
        """Rules that apply to a repository [pull], of a namespace and its repositories [namespace admin],
        or every rule [site admin]."""
        if repository is not None:
            await require_repository_role(self._accounts, caller, repository, Role.PULL)
            return await self._store.rules_for(repository)
        if namespace is not None:
            require_namespace_admin(caller, namespace)
            return [
                rule
                for rule in await self._store.list_rules()
                if (rule.scope_kind == "namespace" and rule.scope == namespace)
                or (rule.scope_kind == "repository" and namespace_of(rule.scope) == namespace)
            ]
        require_site_admin(caller)
        return await self._store.list_rules()

    async def add_rule(self, caller: Caller, scope_kind: ScopeKind, scope: str, pattern: str) -> ImmutableRule:
        """A new rule [namespace admin, or repository admin for a repository rule]."""
        with store_errors():
            validate_pattern(pattern)
            validate_scope(scope_kind, scope)
        await self._require_scope_admin(caller, scope_kind, scope)
        rule = await self.add_rule_as(caller.actor, scope_kind, scope, pattern, caller.address)
        return rule

    async def add_rule_as(
        self, actor: str, scope_kind: ScopeKind, scope: str, pattern: str, address: str | None = None
    ) -> ImmutableRule:
        """Add a rule without a permission check (the CLI, which acts for the operator); audited."""
        with store_errors():
            validate_pattern(pattern)
            validate_scope(scope_kind, scope)
            rule = await self._store.add_rule(scope_kind, scope, pattern, actor)
        await self._audit.record_now(
            actor, "immutable-rule-add", f"{scope_kind}:{scope}", address, rule=rule.id, pattern=pattern
        )
        return rule

    async def remove_rule(self, caller: Caller, rule_id: int) -> ImmutableRule:
        """Remove a rule [the admins who may add it]; ``404`` if there is none."""
        rule = await self._store.get_rule(rule_id)
        if rule is None:
            raise not_found(f"no immutable rule {rule_id}")
        await self._require_scope_admin(caller, rule.scope_kind, rule.scope)
        return await self.remove_rule_as(caller.actor, rule_id, caller.address)

    async def remove_rule_as(self, actor: str, rule_id: int, address: str | None = None) -> ImmutableRule:
        """Remove a rule without a permission check (the CLI); audited. ``404`` if there is none."""
        rule = await self._store.get_rule(rule_id)
        if rule is None or not await self._store.remove_rule(rule_id):
            raise not_found(f"no immutable rule {rule_id}")
        await self._audit.record_now(
            actor,
            "immutable-rule-remove",
            f"{rule.scope_kind}:{rule.scope}",
            address,
            rule=rule.id,
            pattern=rule.pattern,
        )
        return rule
