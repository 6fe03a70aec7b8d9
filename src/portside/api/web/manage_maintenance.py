"""``/admin/maintenance`` [site admins]: read-only mode, shown and switched.

The switch is the one ``PUT /api/v1/maintenance`` and ``portside maintenance on|off`` use
(:class:`portside.registry.maintenance.Maintenance`), checked with the same site-admin guard and
audited the same way. While the registry is read-only, every page shows a banner (see
``pages.render``), and the other forms of the UI are refused like the management API's writes;
this one form still works, or nobody could switch read-only mode off from the browser.
"""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.api.web.manage_common import (
    FRESH,
    FormState,
    render,
    see_other,
    signed_in_action,
    signed_in_page,
    view_retry,
)
from portside.api.web.pages import web_of
from portside.auth.management.guards import Caller, require_site_admin
from portside.oci.errors import ErrorKind, RegistryError

MAINTENANCE = "/admin/maintenance"


async def maintenance_view(request: Request, caller: Caller, state: FormState = FRESH) -> Response:
    """Whether writes are refused, and why: the setting, the runtime flag, or neither."""
    require_site_admin(caller)
    registry = web_of(request).registry
    maintenance = registry.maintenance
    runtime = await maintenance.runtime_flag()
    context = {
        "configured": maintenance.configured,
        "runtime": runtime,
        "effective": maintenance.configured or runtime,
        "cache_seconds": web_of(request).settings.maintenance_cache_seconds,
        "error": state.error,
        "error_section": "maintenance",
    }
    return await render(request, "manage/admin_maintenance.html", context, state.status)


async def switch_read_only(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /admin/maintenance: ``read_only`` = ``on`` or ``off`` (the runtime flag)."""
    require_site_admin(caller)
    choice = form.get("read_only")
    if choice not in ("on", "off"):
        raise RegistryError(ErrorKind.REQUEST_INVALID, "choose whether read-only mode is on or off")
    on = choice == "on"
    registry = web_of(request).registry
    await registry.maintenance.set_read_only(on)
    await registry.audit.record_now(caller.actor, "maintenance", None, caller.address, read_only=on)
    return see_other(MAINTENANCE, "read-only-on" if on else "read-only-off")


def maintenance_routes() -> list[BaseRoute]:
    """The read-only mode page of the administrator area."""
    return [
        Route(MAINTENANCE, signed_in_page(maintenance_view), methods=["GET"]),
        Route(
            MAINTENANCE,
            signed_in_action(switch_read_only, view_retry(maintenance_view), writes=False),
            methods=["POST"],
        ),
    ]
