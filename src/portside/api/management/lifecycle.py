"""Lifecycle endpoints: tag history and restores [pull / push], immutable tag rules [namespace or
repository admins], namespace quotas [site admins set them] and usage.

Repository names contain ``/``, so a repository is the rest of the path and nothing hangs below
it; a restore names its repository in the body.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from portside.api.management.deps import AnyCallerDep, CallerDep, RegistryDep, RowId
from portside.lifecycle.history import MAX_HISTORY, HistoryView
from portside.lifecycle.immutability import MAX_PATTERN
from portside.lifecycle.quotas import QuotaInfo
from portside.metadata.tag_changes import ImmutableRule

history_router = APIRouter(prefix="/tag-history", tags=["tag history"])
restore_router = APIRouter(prefix="/tag-restores", tags=["tag history"])
rules_router = APIRouter(prefix="/immutable-rules", tags=["immutable tags"])
quotas_router = APIRouter(prefix="/quotas", tags=["quotas"])


class TagChange(BaseModel):
    """One recorded change of a tag."""

    id: int
    tag: str
    action: Literal["created", "moved", "deleted", "restored"]
    old_digest: str | None
    new_digest: str | None
    actor: str | None = Field(description="Who made the change; null for anonymous pushes (`auth = none`).")
    recorded_at: datetime
    in_window: bool = Field(description="Recorded inside the history window: its digests can be restored.")


class TagHistory(BaseModel):
    """Changes, newest first, and which digests a restore may still use."""

    repository: str
    tag: str | None
    window_start: datetime = Field(description="Changes recorded before this can no longer be restored.")
    restorable_digests: list[str] | None = Field(
        description="With `tag`: the digests a restore of that tag may use now (null for a whole repository)."
    )
    changes: list[TagChange]


class RestoreRequest(BaseModel):
    """Point a tag back at a digest it had within the history window (a deleted tag too)."""

    model_config = ConfigDict(extra="forbid")

    repository: str = Field(max_length=255)
    tag: str = Field(max_length=128)
    digest: str = Field(max_length=200)


class RestoreResult(BaseModel):
    """The tag, the digest it points at now, and the one it had (null if it was deleted)."""

    repository: str
    tag: str
    digest: str
    previous: str | None
    changed: bool


class Rule(BaseModel):
    """An immutable tag rule."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    scope_kind: Literal["repository", "namespace"]
    scope: str
    pattern: str
    created_by: str | None
    created_at: datetime


class RuleCreate(BaseModel):
    """A glob (`v*`, `release-*`) protecting matching tags of a repository or of a whole namespace."""

    model_config = ConfigDict(extra="forbid")

    scope_kind: Literal["repository", "namespace"]
    scope: str = Field(max_length=255, description="The repository or namespace name.")
    pattern: str = Field(max_length=MAX_PATTERN)


class Quota(BaseModel):
    """A namespace's limit (from its own quota or the default) and usage, in bytes."""

    namespace: str
    limit_bytes: int | None
    source: Literal["namespace", "default"] | None = Field(description="Where the limit comes from.")
    used_bytes: int
    available_bytes: int | None


class QuotaSet(BaseModel):
    """The namespace's own quota in bytes; null removes it (the default applies again)."""

    model_config = ConfigDict(extra="forbid")

    limit_bytes: int | None = Field(ge=0)


def _history(repository: str, tag: str | None, view: HistoryView) -> TagHistory:
    return TagHistory(
        repository=repository,
        tag=tag,
        window_start=view.window_start,
        restorable_digests=None if tag is None else sorted(view.restorable),
        changes=[
            TagChange(
                id=e.id,
                tag=e.tag,
                action=e.action,
                old_digest=e.old_digest,
                new_digest=e.new_digest,
                actor=e.actor,
                recorded_at=e.recorded_at,
                in_window=e.recorded_at >= view.window_start,
            )
            for e in view.entries
        ],
    )


def _rule(rule: ImmutableRule) -> Rule:
    return Rule.model_validate(rule)


def _quota(info: QuotaInfo) -> Quota:
    return Quota(
        namespace=info.namespace,
        limit_bytes=info.limit_bytes,
        source=info.source,
        used_bytes=info.used_bytes,
        available_bytes=info.available_bytes,
    )


@history_router.get("/{name:path}", summary="Tag history of a repository or of one tag [pull]")
async def get_tag_history(
    name: str,
    caller: AnyCallerDep,
    registry: RegistryDep,
    tag: Annotated[str | None, Query(max_length=128, description="Only this tag's changes.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY, description="At most this many changes.")] = 100,
) -> TagHistory:
    """Every recorded create, move, delete and restore, newest first."""
    return _history(name, tag, await registry.history.history(caller, name, tag, limit))


@restore_router.post("", summary="Restore a tag to an earlier digest [push]")
async def restore_tag(body: RestoreRequest, caller: CallerDep, registry: RegistryDep) -> RestoreResult:
    """`404` (`MANIFEST_UNKNOWN`) if the digest is not in the tag's history window or its manifest is
    gone; `403` (`DENIED`) if an immutable rule protects the tag."""
    restored = await registry.history.restore(caller, body.repository, body.tag, body.digest)
    return RestoreResult(
        repository=restored.repository,
        tag=restored.tag,
        digest=restored.digest,
        previous=restored.previous,
        changed=restored.changed,
    )


@rules_router.get("", summary="List immutable tag rules")
async def list_immutable_rules(
    caller: CallerDep,
    registry: RegistryDep,
    namespace: Annotated[str | None, Query(max_length=255, description="A namespace [admin].")] = None,
    repository: Annotated[
        str | None, Query(max_length=255, description="The rules that apply to a repository [pull].")
    ] = None,
) -> list[Rule]:
    """Without a filter: every rule [site admin]."""
    return [_rule(r) for r in await registry.immutability.list_rules(caller, namespace, repository)]


@rules_router.post("", status_code=201, summary="Add an immutable tag rule [namespace or repository admin]")
async def add_immutable_rule(body: RuleCreate, caller: CallerDep, registry: RegistryDep) -> Rule:
    """`409` if the scope already has the pattern."""
    return _rule(await registry.immutability.add_rule(caller, body.scope_kind, body.scope, body.pattern))


@rules_router.delete("/{rule_id}", status_code=204, summary="Remove an immutable tag rule")
async def remove_immutable_rule(rule_id: RowId, caller: CallerDep, registry: RegistryDep) -> None:
    """By the admins who may add it."""
    await registry.immutability.remove_rule(caller, rule_id)


@quotas_router.get("", summary="List namespaces with a quota [site admin]")
async def list_quotas(caller: CallerDep, registry: RegistryDep) -> list[Quota]:
    """Each namespace with a quota of its own, with its usage."""
    return [_quota(info) for info in await registry.quotas.list_quotas(caller)]


@quotas_router.get("/{namespace}", summary="A namespace's quota and usage [namespace admin or member]")
async def get_quota(namespace: str, caller: CallerDep, registry: RegistryDep) -> Quota:
    """Usage counts each distinct blob and manifest of the namespace once."""
    return _quota(await registry.quotas.show(caller, namespace))


@quotas_router.put("/{namespace}", summary="Set a namespace's quota [site admin]")
async def set_quota(namespace: str, body: QuotaSet, caller: CallerDep, registry: RegistryDep) -> Quota:
    """`limit_bytes: null` removes the namespace's own quota."""
    return _quota(await registry.quotas.set(caller, namespace, body.limit_bytes))


ROUTERS = (history_router, restore_router, rules_router, quotas_router)
