"""The administrator area's lifecycle pages [site admins]: garbage collection, retention, quotas.

* ``/admin/gc``: start a run (or a dry run), the running run's progress, past runs and what they
  freed; ``/admin/gc/runs/ID`` one run with the list of what it removed.
* ``/admin/retention``: every retention policy (add, remove, dry run, run) and the run log.
* ``/admin/quotas`` (POST): set or clear a namespace's quota; shown on ``/admin/storage``.

The services check for a site administrator (the GC pages with the same guard as ``/api/v1/gc``).
"""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.api.web import form_values as fields
from portside.api.web.manage_admin import storage_view
from portside.api.web.manage_common import (
    FRESH,
    FormState,
    action_post,
    render,
    see_other,
    signed_in_action,
    signed_in_page,
    view_retry,
)
from portside.api.web.manage_lifecycle import POLICY_FIELDS, ScopeKind, lifecycle_actions, scope_kind_of
from portside.api.web.pages import PageError, web_of
from portside.auth.management.guards import Caller, require_site_admin
from portside.lifecycle.gc import GcBusy
from portside.oci.errors import ErrorKind, RegistryError

GC = "/admin/gc"
RETENTION = "/admin/retention"
QUOTAS = "/admin/quotas"
RUNS_SHOWN = 25


# Garbage collection


async def gc_view(request: Request, caller: Caller, state: FormState = FRESH) -> Response:
    """Past runs, newest first, the running one (if any) first of all, and the start form."""
    require_site_admin(caller)
    gc = web_of(request).registry.gc
    runs = await gc.runs(RUNS_SHOWN)
    running = next((run for run in runs if run.status == "running"), None)
    context = {"runs": runs, "running": running, "error": state.error, "error_section": "gc"}
    return await render(request, "manage/admin_gc.html", context, state.status)


async def start_gc(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /admin/gc: start a run in the background (``dry_run`` only reports); then its page."""
    require_site_admin(caller)
    registry = web_of(request).registry
    dry_run = fields.checkbox(form, "dry_run")
    try:
        record = await registry.gc.start(dry_run=dry_run, trigger="web", actor=caller.actor)
    except GcBusy as exc:
        raise RegistryError(ErrorKind.CONFLICT, str(exc)) from exc
    await registry.audit.record_now(caller.actor, "gc-start", None, caller.address, run=record.id, dry_run=dry_run)
    return see_other(f"{GC}/runs/{record.id}", "gc-started")


async def gc_run_page(request: Request, caller: Caller) -> Response:
    """GET /admin/gc/runs/{id}: a run's progress or its report; reloads itself while it runs."""
    require_site_admin(caller)
    run_id = fields.identifier(request.path_params["run"], "garbage collection run")
    record = await web_of(request).registry.gc.get(run_id)
    if record is None:
        raise PageError(404, f"There is no garbage collection run {run_id}.")
    return await render(request, "manage/admin_gc_run.html", {"run": record, "refresh": record.status == "running"})


# Retention


async def retention_view(request: Request, caller: Caller, state: FormState = FRESH) -> Response:
    """Every policy and the latest runs."""
    retention = web_of(request).registry.retention
    policies = await retention.list_policies(caller, None, None)
    runs = await retention.runs_for(caller, RUNS_SHOWN)
    context = {
        "policies": policies,
        "runs": runs,
        "base": RETENTION,
        "policy_scope_choice": True,
        "error": state.error,
        "error_section": state.section,
        "values": {"policy_scope_kind": "repository", **state.values},
    }
    return await render(request, "manage/admin_retention.html", context, state.status)


def _chosen_scope(request: Request, form: FormData) -> tuple[ScopeKind, str]:
    kind = scope_kind_of(fields.text(form, "policy_scope_kind"))
    return kind, fields.required(form, "policy_scope", "the repository or namespace")


RETENTION_ACTIONS = {
    name: action
    for name, action in lifecycle_actions(_chosen_scope).items()
    if name in ("add-policy", "remove-policy", "run-retention")
}


_retention_post = action_post(RETENTION_ACTIONS, lambda request: RETENTION, "no such action")


async def retention_action(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /admin/retention/{action}: add or remove a policy, or run (all policies without one)."""
    require_site_admin(caller)
    return await _retention_post(request, caller, form)


# Quotas


async def set_quota(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /admin/quotas: a namespace's quota (``limit`` empty, or ``clear``, removes it)."""
    namespace = fields.required(form, "namespace", "the namespace")
    limit = None if fields.checkbox(form, "clear") else fields.byte_size(form, "limit", "The quota")
    try:
        await web_of(request).registry.quotas.set(caller, namespace, limit)
    except ValueError as exc:
        raise RegistryError(ErrorKind.REQUEST_INVALID, str(exc)) from exc
    return see_other("/admin/storage", "quota-set" if limit is not None else "quota-cleared")


def lifecycle_admin_routes() -> list[BaseRoute]:
    """GC, retention and quota pages of the administrator area."""
    retention_retry = view_retry(retention_view, *POLICY_FIELDS, section="retention")
    quota_retry = view_retry(storage_view, "namespace", "limit")
    return [
        Route(GC, signed_in_page(gc_view), methods=["GET"]),
        Route(GC, signed_in_action(start_gc, view_retry(gc_view)), methods=["POST"]),
        Route(GC + "/runs/{run}", signed_in_page(gc_run_page), methods=["GET"]),
        Route(RETENTION, signed_in_page(retention_view), methods=["GET"]),
        Route(RETENTION + "/{action}", signed_in_action(retention_action, retention_retry), methods=["POST"]),
        Route(QUOTAS, signed_in_action(set_quota, quota_retry), methods=["POST"]),
    ]
