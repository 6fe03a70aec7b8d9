"""``/maintenance``: the registry's read-only mode [site admin to change; anyone signed in to read]."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from portside.api.management.deps import CallerDep, RegistryDep
from portside.auth.management.guards import require_site_admin

router = APIRouter(prefix="/maintenance", tags=["maintenance"])


class MaintenanceState(BaseModel):
    """Whether writes are refused, and why."""

    read_only: bool
    configured: bool
    runtime: bool


class MaintenanceUpdate(BaseModel):
    """Switch the runtime read-only flag."""

    model_config = ConfigDict(extra="forbid")

    read_only: bool


async def _state(registry: RegistryDep) -> MaintenanceState:
    runtime = await registry.maintenance.runtime_flag()
    configured = registry.maintenance.configured
    return MaintenanceState(read_only=configured or runtime, configured=configured, runtime=runtime)


@router.get("", summary="Read-only mode status")
async def get_maintenance(caller: CallerDep, registry: RegistryDep) -> MaintenanceState:
    """`configured` is the `read_only` setting; `runtime` the flag `portside maintenance` and this API set."""
    return await _state(registry)


@router.put("", summary="Switch read-only mode [site admin]")
async def set_maintenance(body: MaintenanceUpdate, caller: CallerDep, registry: RegistryDep) -> MaintenanceState:
    """Every worker and node follows within `maintenance_cache_seconds`; this call works while read-only."""
    require_site_admin(caller)
    await registry.maintenance.set_read_only(body.read_only)
    await registry.audit.record_now(caller.actor, "maintenance", None, caller.address, read_only=body.read_only)
    return await _state(registry)


async def refuse_writes_while_read_only(request: Request, registry: RegistryDep) -> None:
    """Every mutating management call is refused while read-only, except switching read-only mode."""
    if request.scope.get("endpoint") is set_maintenance:
        return
    await registry.maintenance.refuse_writes(request.method)
