"""The administrator area [site admins]: users, storage use and quotas, and the audit log.

Garbage collection and retention are in :mod:`portside.api.web.manage_lifecycle_admin`.

Every page asks a service that checks for a site administrator, so a signed-in user who is not
one gets ``403`` from the same rule the management API applies.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from portside.api.web import form_values as fields
from portside.api.web.manage_common import (
    FRESH,
    FormState,
    path_part,
    render,
    see_other,
    services,
    signed_in_action,
    signed_in_page,
    view_retry,
)
from portside.api.web.pages import web_of
from portside.auth.management.audit import AuditQuery
from portside.auth.management.guards import Caller, require_site_admin
from portside.digits import parse_digits
from portside.metadata.records import MAX_ROW_ID
from portside.metadata.usage_store import UsageStore
from portside.oci.errors import ErrorKind, RegistryError
from portside.registry.storage_usage import StorageUsageService

ADMIN = "/admin"
USERS = ADMIN + "/users"
STORAGE = ADMIN + "/storage"
AUDIT = ADMIN + "/audit"
AUDIT_PAGE = 100
USER_FIELDS = ("username", "email")


async def admin_home(request: Request, caller: Caller) -> Response:
    """GET /admin: the users page is the area's front door."""
    require_site_admin(caller)
    return RedirectResponse(USERS, status_code=303)


async def users_view(request: Request, caller: Caller, state: FormState = FRESH) -> Response:
    """Every user, with the forms to create, promote and delete."""
    users = await services(request).users.list_all(caller)
    context = {"users": users, "error": state.error, "values": state.values, "base": USERS, "me": caller.principal.name}
    return await render(request, "manage/admin_users.html", context, state.status)


async def create_user(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /admin/users."""
    password = fields.text(form, "password")
    if password != fields.text(form, "password_again"):
        raise RegistryError(ErrorKind.REQUEST_INVALID, "the two passwords differ")
    await services(request).users.create(
        caller,
        fields.required(form, "username", "a username"),
        password,
        fields.text(form, "email") or None,
        fields.checkbox(form, "admin"),
    )
    return see_other(USERS, "user-created")


async def set_admin(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /admin/users/{username}/admin (``admin`` true or false)."""
    await services(request).users.set_admin(caller, request.path_params["username"], fields.checkbox(form, "admin"))
    return see_other(USERS, "admin-set")


async def delete_user(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /admin/users/{username}/delete: needs the name typed again, as a confirmation."""
    username = request.path_params["username"]
    if fields.text(form, "confirm") != username:
        raise RegistryError(ErrorKind.REQUEST_INVALID, f"type {username!r} to confirm deleting the user")
    await services(request).users.delete(caller, username)
    return see_other(USERS, "user-deleted")


async def storage_view(request: Request, caller: Caller, state: FormState = FRESH) -> Response:
    """What the registry stores, in total, per namespace and per repository; the namespace quotas."""
    registry = web_of(request).registry
    usage = StorageUsageService(UsageStore(registry.store))
    report = await usage.report(caller)
    quotas = await registry.quotas.list_quotas(caller)
    context = {
        "report": report,
        "quotas": quotas,
        "quota_of": {quota.namespace: quota.limit_bytes for quota in quotas},
        "default_quota": registry.quotas.default_limit,
        "error": state.error,
        "error_section": "quotas",
        "values": state.values,
    }
    return await render(request, "manage/admin_storage.html", context, state.status)


async def audit_page(request: Request, caller: Caller) -> Response:
    """GET /admin/audit: who did what, newest first, filtered by actor, action and target, paged."""
    params = request.query_params
    filters = {name: params.get(name, "").strip()[: fields.MAX_FIELD] for name in ("actor", "action", "target")}
    before = params.get("before", "")
    query = AuditQuery(
        actor=filters["actor"] or None,
        action=filters["action"] or None,
        target=filters["target"] or None,
        limit=AUDIT_PAGE,
        before=before_id if (before_id := parse_digits(before)) is not None and before_id <= MAX_ROW_ID else None,
    )
    page = await services(request).audit.events(caller, query)
    older = (
        urlencode({**{k: v for k, v in filters.items() if v}, "before": page.next_before}) if page.next_before else None
    )
    context = {"events": page.events, "filters": filters, "older": older}
    return await render(request, "manage/admin_audit.html", context)


def user_path(username: str) -> str:
    """Where a user's admin actions post."""
    return f"{USERS}/{path_part(username)}"


def admin_routes() -> list[BaseRoute]:
    """The administrator area."""
    user = USERS + "/{username}"
    # What was typed stays after a refusal (the password does not: it is not among the fields).
    users_retry = view_retry(users_view, *USER_FIELDS)
    return [
        Route(ADMIN, signed_in_page(admin_home), methods=["GET"]),
        Route(USERS, signed_in_page(users_view), methods=["GET"]),
        Route(USERS, signed_in_action(create_user, users_retry), methods=["POST"]),
        Route(user + "/admin", signed_in_action(set_admin, users_retry), methods=["POST"]),
        Route(user + "/delete", signed_in_action(delete_user, users_retry), methods=["POST"]),
        Route(STORAGE, signed_in_page(storage_view), methods=["GET"]),
        Route(AUDIT, signed_in_page(audit_page), methods=["GET"]),
    ]
