"""The management JSON API under ``/api/v1``: users, organizations, robots, tokens, repository
settings, permissions and the audit log, documented at ``/api/v1/docs`` (``/api/v1/openapi.json``).

Handlers are thin: they parse the request, call one service of
:mod:`portside.auth.management` and shape the answer. Services decide what the caller may do
(through the one policy) and raise errors from the one table, which answer as
``{"errors": [{"code", "message", "detail"}]}``.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

from portside import __version__
from portside.api.management import (
    audit,
    lifecycle,
    maintenance,
    organizations,
    permissions,
    repositories,
    robots,
    search,
    tokens,
    users,
    webhooks,
)
from portside.api.management import gc as gc_api
from portside.api.management import retention as retention_api
from portside.api.management.deps import REGISTRY_SCOPE_KEY
from portside.api.management.errors import (
    ERROR_RESPONSES,
    on_http_exception,
    on_registry_error,
    on_storage_error,
    on_unexpected_error,
    on_validation_error,
)
from portside.api.unexpected import STORAGE_ERROR_TYPES
from portside.oci.errors import RegistryError

PREFIX = "/api/v1"

DESCRIPTION = """\
Manage Portside: users, organizations and teams, robots, tokens, repository visibility and
permissions, tag history and restores, immutable tags and quotas, and read the audit log.

**Authentication** (in every `auth` mode): HTTP Basic with a username and a password, or with a
username and a personal access or robot token (`pst_...`) as the password; or
`Authorization: Bearer pst_...` with a personal access token alone. Anonymous callers may read
public repositories; anything else answers `401` with `WWW-Authenticate: Basic realm="portside"`.

**Errors** have the registry's body: `{"errors": [{"code": ..., "message": ..., "detail": ...}]}`.
"""


def operation_id(route: APIRoute) -> str:
    """Each operation is named after its handler (``create_user``), which is unique in the API."""
    return route.name


def build_management_api() -> FastAPI:
    """The FastAPI app of the management API (it reaches the registry through its mount)."""
    api = FastAPI(
        title="Portside management API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        generate_unique_id_function=operation_id,
        dependencies=[Depends(maintenance.refuse_writes_while_read_only)],
    )
    api.add_exception_handler(RegistryError, on_registry_error)
    api.add_exception_handler(HTTPException, on_http_exception)
    api.add_exception_handler(RequestValidationError, on_validation_error)
    for storage_error in STORAGE_ERROR_TYPES:
        api.add_exception_handler(storage_error, on_storage_error)
    api.add_exception_handler(Exception, on_unexpected_error)
    for module in (
        users,
        tokens,
        organizations,
        robots,
        repositories,
        permissions,
        audit,
        search,
        webhooks,
        maintenance,
    ):
        api.include_router(module.router, responses=ERROR_RESPONSES)
    for router in lifecycle.ROUTERS:
        api.include_router(router, responses=ERROR_RESPONSES)
    api.include_router(gc_api.router, responses=ERROR_RESPONSES)
    api.include_router(retention_api.router, responses=ERROR_RESPONSES)
    return api


def management_mount() -> Mount:
    """The management API mounted at ``/api/v1`` of the app whose lifespan built the registry.

    Mounted apps run no lifespan of their own, and FastAPI replaces ``scope["app"]`` with itself,
    so each request is handed the hosting app's registry under :data:`REGISTRY_SCOPE_KEY`.
    """
    api = build_management_api()

    async def with_registry(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = {**scope, REGISTRY_SCOPE_KEY: scope["app"].state.registry}
        await api(scope, receive, send)

    return Mount(PREFIX, app=with_registry)
