"""``/retention``: retention policies [repository or namespace admins] and their runs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from portside.api.management.deps import CallerDep, RegistryDep, RowId
from portside.lifecycle.retention import PolicyInput
from portside.lifecycle.retention_policy import Policy
from portside.metadata.records import MAX_ROW_ID
from portside.metadata.retention_records import MAX_AGE, MAX_KEEP_LAST
from portside.metadata.retention_store import PolicyRecord, RetentionRunRecord
from portside.oci.errors import ErrorKind, RegistryError

router = APIRouter(prefix="/retention", tags=["retention"])

ScopeKind = Literal["repository", "namespace"]


MAX_AGE_SECONDS = int(MAX_AGE.total_seconds())


class RetentionPolicyIn(BaseModel):
    """A policy for a repository or every repository of a namespace. Durations are in seconds."""

    model_config = ConfigDict(extra="forbid")

    scope_kind: ScopeKind
    scope: str = Field(description="The repository name, or the namespace.")
    tag_pattern: str = Field("*", description="Glob the policy's tags match, e.g. `*`, `build-*`.")
    keep_last: int | None = Field(None, ge=0, le=MAX_KEEP_LAST, description="Keep the newest N matching tags.")
    delete_older_than: int | None = Field(
        None, ge=0, le=MAX_AGE_SECONDS, description="Delete matching tags not pushed for this long."
    )
    untagged_after: int | None = Field(
        None, ge=0, le=MAX_AGE_SECONDS, description="Delete untagged manifests this old."
    )
    keep_pulled_within: int | None = Field(
        None, ge=0, le=MAX_AGE_SECONDS, description="Keep anything pulled within this long."
    )


class RetentionPolicyOut(RetentionPolicyIn):
    """A stored policy."""

    id: int
    created_by: str | None
    created_at: datetime


class RetentionPolicyList(BaseModel):
    """Policies, oldest first."""

    policies: list[RetentionPolicyOut]


class RetentionRunRequest(BaseModel):
    """Which policies to apply, and whether only to report."""

    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(False, description="Only report what would be removed.")
    policy_id: int | None = Field(
        None, ge=1, le=MAX_ROW_ID, description="Only this policy (default: all of them, site admins only)."
    )


class RemovedItem(BaseModel):
    """A tag or untagged manifest a run removed (dry run: would remove)."""

    repository: str
    kind: Literal["tag", "manifest"]
    reference: str


class RetentionRun(BaseModel):
    """A retention run and what it removed."""

    id: int
    started_at: datetime
    finished_at: datetime | None
    dry_run: bool
    trigger: str
    actor: str | None
    status: str
    removed: list[RemovedItem]
    error: str | None


class RetentionRunList(BaseModel):
    """Runs, newest first."""

    runs: list[RetentionRun]


def _seconds(value: timedelta | None) -> int | None:
    return None if value is None else int(value.total_seconds())


def _duration(value: int | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


def _policy_out(record: PolicyRecord) -> RetentionPolicyOut:
    policy = record.policy
    return RetentionPolicyOut(
        id=record.id,
        scope_kind="namespace" if record.scope_kind == "namespace" else "repository",
        scope=record.scope,
        tag_pattern=policy.tag_pattern,
        keep_last=policy.keep_last,
        delete_older_than=_seconds(policy.delete_older_than),
        untagged_after=_seconds(policy.untagged_after),
        keep_pulled_within=_seconds(policy.keep_pulled_within),
        created_by=record.created_by,
        created_at=record.created_at,
    )


def _run_out(record: RetentionRunRecord) -> RetentionRun:
    return RetentionRun(
        id=record.id,
        started_at=record.started_at,
        finished_at=record.finished_at,
        dry_run=record.dry_run,
        trigger=record.trigger,
        actor=record.actor,
        status=record.status,
        removed=[RemovedItem.model_validate(item) for item in record.removed],
        error=record.error,
    )


def policy_input(body: RetentionPolicyIn) -> PolicyInput:
    """The service's input from the request body; ``REQUEST_INVALID`` for an empty policy."""
    try:
        policy = Policy(
            tag_pattern=body.tag_pattern,
            keep_last=body.keep_last,
            delete_older_than=_duration(body.delete_older_than),
            untagged_after=_duration(body.untagged_after),
            keep_pulled_within=_duration(body.keep_pulled_within),
        )
    except ValueError as exc:
        raise RegistryError(ErrorKind.REQUEST_INVALID, str(exc)) from exc
    return PolicyInput(body.scope_kind, body.scope, policy)


@router.get("/policies", summary="List retention policies [scope admin; all: site admin]")
async def list_retention_policies(
    caller: CallerDep,
    registry: RegistryDep,
    scope_kind: Annotated[ScopeKind | None, Query(description="With `scope`: only this scope's policies.")] = None,
    scope: Annotated[str | None, Query(description="A repository or namespace name.")] = None,
) -> RetentionPolicyList:
    """The policies of one repository or namespace, or every policy."""
    records = await registry.retention.list_policies(caller, scope_kind, scope)
    return RetentionPolicyList(policies=[_policy_out(r) for r in records])


@router.post("/policies", status_code=201, summary="Add a retention policy [repository or namespace admin]")
async def add_retention_policy(body: RetentionPolicyIn, caller: CallerDep, registry: RegistryDep) -> RetentionPolicyOut:
    """Add a policy; it applies from the next run (scheduled, or started here)."""
    return _policy_out(await registry.retention.add_policy(caller, policy_input(body)))


@router.delete("/policies/{policy_id}", summary="Remove a retention policy [repository or namespace admin]")
async def remove_retention_policy(policy_id: RowId, caller: CallerDep, registry: RegistryDep) -> RetentionPolicyOut:
    """Remove a policy; returns what it was."""
    return _policy_out(await registry.retention.remove_policy(caller, policy_id))


@router.post("/runs", summary="Apply retention now, or see what it would remove [scope admin; all: site admin]")
async def run_retention(body: RetentionRunRequest, caller: CallerDep, registry: RegistryDep) -> RetentionRun:
    """Apply one policy or all; the answer lists exactly what was (dry run: would be) removed."""
    return _run_out(await registry.retention.run_for(caller, dry_run=body.dry_run, policy_id=body.policy_id))


@router.get("/runs", summary="List retention runs [site admin]")
async def list_retention_runs(
    caller: CallerDep,
    registry: RegistryDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> RetentionRunList:
    """The latest runs, newest first, each with what it removed."""
    return RetentionRunList(runs=[_run_out(r) for r in await registry.retention.runs_for(caller, limit)])
