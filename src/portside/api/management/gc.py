"""``/gc``: start garbage collection, follow the running one, list past runs [site admins]."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from portside.api.management.deps import CallerDep, RegistryDep, RowId
from portside.auth.management.guards import not_found, require_site_admin
from portside.lifecycle.gc import GcBusy
from portside.metadata.gc_store import GcRunRecord
from portside.oci.errors import ErrorKind, RegistryError

router = APIRouter(prefix="/gc", tags=["garbage collection"])


class GcStart(BaseModel):
    """How to collect."""

    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(False, description="Only report what would be removed; change nothing.")


class GcRun(BaseModel):
    """A garbage collection run: progress while `running`, what it freed once `done`."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    node: str
    trigger: str = Field(description="`api`, `cli` or `schedule`.")
    actor: str | None
    dry_run: bool
    status: str = Field(description="`running`, `done`, `failed` or `interrupted`.")
    phase: str = Field(description="`starting`, `repositories` (marking and sweeping each), `blobs`, `done`.")
    repositories_total: int
    repositories_done: int
    manifests_removed: int = Field(description="Manifests removed (dry run: that would be).")
    links_removed: int
    blobs_removed: int
    bytes_freed: int
    detail: dict[str, Any] = Field(description="The removed manifests, links and blobs (at most 1000 of each).")
    error: str | None
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class GcRunList(BaseModel):
    """Runs, newest first."""

    runs: list[GcRun]


def _run(record: GcRunRecord) -> GcRun:
    return GcRun.model_validate(record)


@router.post("/runs", status_code=202, summary="Start a garbage collection [site admin]")
async def start_gc(body: GcStart, caller: CallerDep, registry: RegistryDep) -> GcRun:
    """Start a run in the background; `409` while another runs anywhere in the cluster."""
    require_site_admin(caller)
    try:
        record = await registry.gc.start(dry_run=body.dry_run, trigger="api", actor=caller.actor)
    except GcBusy as exc:
        raise RegistryError(ErrorKind.CONFLICT, str(exc)) from exc
    await registry.audit.record_now(caller.actor, "gc-start", None, caller.address, run=record.id, dry_run=body.dry_run)
    return _run(record)


@router.get("/runs", summary="List garbage collection runs [site admin]")
async def list_gc_runs(
    caller: CallerDep,
    registry: RegistryDep,
    limit: Annotated[int, Query(ge=1, le=500, description="At most this many.")] = 50,
) -> GcRunList:
    """The latest runs, newest first, each with its progress or what it freed."""
    require_site_admin(caller)
    return GcRunList(runs=[_run(r) for r in await registry.gc.runs(limit)])


@router.get("/runs/{run_id}", summary="Get one garbage collection run [site admin]")
async def get_gc_run(run_id: RowId, caller: CallerDep, registry: RegistryDep) -> GcRun:
    """A run's status and progress (poll it while `running`)."""
    require_site_admin(caller)
    record = await registry.gc.get(run_id)
    if record is None:
        raise not_found(f"no garbage collection run {run_id}")
    return _run(record)
