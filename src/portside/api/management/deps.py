"""How management requests find their registry and their caller.

Credentials are HTTP Basic (a password, or a personal access or robot token as the password)
or ``Authorization: Bearer pst_...`` with a token alone; both are checked by
:class:`~portside.auth.accounts.AccountService`, which also throttles failures. Without
credentials the caller is anonymous; services answer ``401`` where identity is needed.
This is the same in every ``auth`` mode.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.openapi.models import HTTPBase as HTTPBaseModel
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase

from portside.api.access import client_address
from portside.auth.accounts import LoginThrottled
from portside.auth.credentials import parse_authorization, parse_basic
from portside.auth.management import Management, build_management
from portside.auth.management.guards import BASIC_CHALLENGE, Caller, require_identity
from portside.auth.policy import ANONYMOUS, Principal
from portside.metadata.records import MAX_ROW_ID
from portside.oci.errors import ErrorKind, RegistryError
from portside.registry.services import Registry

# A row id in a path (a token, rule, policy, webhook or run): 422 outside what a row id can be.
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]

# The key under which the mount hands each request the hosting app's registry.
REGISTRY_SCOPE_KEY = "portside.registry"


class _AuthorizationScheme(SecurityBase):
    """Names a scheme in the OpenAPI document; the checking itself is :func:`current_caller`'s."""

    def __init__(self, model: HTTPBaseModel, scheme_name: str) -> None:
        self.model = model
        self.scheme_name = scheme_name

    async def __call__(self, request: Request) -> str | None:
        return request.headers.get("authorization")


basic_auth = _AuthorizationScheme(
    HTTPBaseModel(scheme="basic", description="Username and password, or username and a `pst_...` token."),
    "basic",
)
bearer_auth = _AuthorizationScheme(
    HTTPBearerModel(bearerFormat="pst_...", description="A personal access token alone."), "bearer"
)


def registry_of(request: Request) -> Registry:
    """The registry of the app the management API is mounted in."""
    registry: Registry = request.scope[REGISTRY_SCOPE_KEY]
    return registry


RegistryDep = Annotated[Registry, Depends(registry_of)]


def management(registry: RegistryDep) -> Management:
    """The management services over the registry's accounts, audit log and listings."""
    return build_management(registry.accounts, registry.audit, registry.listings)


async def _principal(registry: Registry, scheme: str, parameters: str, address: str | None) -> Principal:
    accounts = registry.accounts
    if scheme == "basic":
        credentials = parse_basic(parameters)
        if credentials is None:
            raise RegistryError(ErrorKind.UNAUTHORIZED, "malformed Basic credentials", headers=BASIC_CHALLENGE)
        actor = f"user:{credentials.username}"
        login = accounts.authenticate(credentials.username, credentials.password, address)
    elif scheme == "bearer":
        actor = "anonymous"
        login = accounts.authenticate_bearer(parameters, address)
    else:
        raise RegistryError(ErrorKind.UNAUTHORIZED, "use Basic or Bearer credentials", headers=BASIC_CHALLENGE)
    try:
        return await login
    except LoginThrottled as exc:
        await registry.audit.record_now(actor, "login-throttled", None, address, via=f"api:{scheme}")
        raise RegistryError(
            ErrorKind.TOO_MANY_REQUESTS, str(exc), headers={"Retry-After": str(exc.retry_after)}
        ) from exc
    except PermissionError as exc:
        await registry.audit.record_now(actor, "login-failed", None, address, via=f"api:{scheme}")
        raise RegistryError(ErrorKind.UNAUTHORIZED, str(exc), headers=BASIC_CHALLENGE) from exc


async def current_caller(
    request: Request,
    registry: RegistryDep,
    _basic: Annotated[str | None, Security(basic_auth)],
    _bearer: Annotated[str | None, Security(bearer_auth)],
) -> Caller:
    """Who is calling: anonymous without credentials, ``401``/``429`` for bad or throttled ones."""
    address = client_address(request)
    authorization = parse_authorization(request.headers.get("authorization"))
    if authorization is None:
        return Caller(ANONYMOUS, address)
    scheme, parameters = authorization
    return Caller(await _principal(registry, scheme, parameters, address), address)


AnyCallerDep = Annotated[Caller, Depends(current_caller)]


async def identified_caller(caller: AnyCallerDep) -> Caller:
    """The caller of an endpoint that always needs identity: ``401`` before the body is validated."""
    require_identity(caller)
    return caller


# Only reads of repository metadata take anonymous callers (AnyCallerDep); everything else this.
CallerDep = Annotated[Caller, Depends(identified_caller)]
ServicesDep = Annotated[Management, Depends(management)]
