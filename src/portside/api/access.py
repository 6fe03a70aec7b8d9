"""The one gate every ``/v2/`` request passes: who is calling, and may they do this?

The answer comes from the policy (``auth/policy.py``) in every mode: directly for Basic
credentials, and through the claims of a token the token server issued by asking the
same policy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from starlette.requests import Request

from portside.api.routes import Endpoint, RouteMatch
from portside.auth.accounts import AccountService, LoginThrottled
from portside.auth.credentials import is_empty_basic, parse_authorization, parse_basic
from portside.auth.policy import ANONYMOUS, Principal
from portside.auth.roles import actions_for
from portside.auth.tokens import InvalidToken, TokenClaims, TokenIssuer
from portside.metadata.records import Visibility
from portside.oci.errors import ErrorKind, RegistryError


class Access(ABC):
    """What the caller of one request may do."""

    actor: str

    @abstractmethod
    async def allows(self, repository: str, action: str) -> bool:
        """True if the caller may perform ``action`` (pull, push, delete) on ``repository``."""

    @abstractmethod
    async def visibility(self) -> Visibility:
        """Which repositories the caller may see in listings."""


class OpenAccess(Access):
    """``auth = "none"``: everyone may do everything, as on a default Distribution."""

    actor = "anonymous"

    async def allows(self, repository: str, action: str) -> bool:
        """Always."""
        return True

    async def visibility(self) -> Visibility:
        """Everything."""
        return Visibility(everything=True)


@dataclass
class PrincipalAccess(Access):
    """A principal known from Basic credentials (or anonymous); the policy decides each action."""

    principal: Principal
    accounts: AccountService
    _actions: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def actor(self) -> str:  # type: ignore[override]
        """The principal's name in the audit log."""
        return self.principal.audit_name

    async def allows(self, repository: str, action: str) -> bool:
        """The policy's answer, remembered for the rest of the request."""
        if repository not in self._actions:
            self._actions[repository] = actions_for(await self.accounts.role_on(self.principal, repository))
        return action in self._actions[repository]

    async def visibility(self) -> Visibility:
        """From the principal's namespaces and grants."""
        return self.accounts.visibility(self.principal)


@dataclass
class TokenAccess(Access):
    """A bearer token: it allows exactly what its ``access`` claim lists."""

    claims: TokenClaims
    accounts: AccountService

    @property
    def actor(self) -> str:  # type: ignore[override]
        """The token's subject."""
        subject = self.claims.subject
        if not subject:
            return "anonymous"
        return f"robot:{subject}" if "+" in subject else f"user:{subject}"

    async def allows(self, repository: str, action: str) -> bool:
        """True if the token grants it."""
        return self.grants(repository, action)

    def grants(self, repository: str, action: str) -> bool:
        """True if the token's ``access`` claim lists ``action`` on ``repository`` (no I/O)."""
        return any(
            scope.type == "repository" and scope.name == repository and action in scope.actions
            for scope in self.claims.access
        )

    def has_catalog(self) -> bool:
        """True if the token grants ``registry:catalog:*``."""
        return any(scope.type == "registry" and scope.name == "catalog" for scope in self.claims.access)

    async def visibility(self) -> Visibility:
        """What the token's subject may see now."""
        return self.accounts.visibility(await self.accounts.principal_named(self.claims.subject))


@dataclass(frozen=True)
class Gate:
    """Authentication settings and services, shared by the handlers."""

    mode: str
    accounts: AccountService
    issuer: TokenIssuer
    realm: str | None

    def realm_for(self, request: Request) -> str:
        """The token endpoint's absolute URL, as the client reached us."""
        if self.realm:
            return self.realm
        return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}/token"

    def challenge(self, request: Request, scopes: list[str], error: str | None = None) -> dict[str, str]:
        """The ``WWW-Authenticate`` header for this mode."""
        if self.mode == "basic":
            return {"WWW-Authenticate": 'Basic realm="portside", charset="UTF-8"'}
        parts = [f'realm="{self.realm_for(request)}"', f'service="{self.issuer.service}"']
        if scopes:
            parts.append(f'scope="{" ".join(scopes)}"')
        if error:
            parts.append(f'error="{error}"')
        return {"WWW-Authenticate": "Bearer " + ",".join(parts)}


def required_actions(match: RouteMatch, method: str) -> list[str]:
    """The actions on the matched repository that the request needs."""
    endpoint = match.route.endpoint
    if endpoint in (Endpoint.BASE, Endpoint.CATALOG):
        return []
    if method == "DELETE" and endpoint in (Endpoint.MANIFEST, Endpoint.BLOB):
        return ["delete"]
    if method in ("GET", "HEAD"):
        return ["push"] if endpoint is Endpoint.UPLOAD else ["pull"]
    return ["pull", "push"]


def challenge_scopes(match: RouteMatch, method: str) -> list[str]:
    """The token scopes a request needs, as its ``401`` challenge names them."""
    if match.route.endpoint is Endpoint.CATALOG:
        return ["registry:catalog:*"]
    needed = required_actions(match, method)
    return [f"repository:{match.name}:{','.join(needed)}"] if needed else []


def client_address(request: Request) -> str | None:
    """The caller's address, for the audit log and login limits."""
    return request.client.host if request.client else None


async def authenticate(request: Request, gate: Gate, scopes: list[str] | None = None) -> Access:
    """Who is calling: ``OpenAccess`` without auth, else a token or principal (anonymous included).

    ``scopes`` go into the challenge of a ``401``: clients such as oras ask the token
    server for exactly the scope the challenge names.
    """
    scopes = scopes or []
    if gate.mode == "none":
        return OpenAccess()
    authorization = parse_authorization(request.headers.get("authorization"))
    if gate.mode == "token":
        if authorization is not None and authorization[0] == "basic":
            # As Harbor does: clients and scripts that only know Basic credentials (curl -u,
            # oras-py's basic backend) need no token; the policy decides, as in Basic mode.
            return PrincipalAccess(await password_principal(request, gate, *authorization), gate.accounts)
        if authorization is None or authorization[0] != "bearer":
            raise RegistryError(ErrorKind.UNAUTHORIZED, headers=gate.challenge(request, scopes))
        try:
            return TokenAccess(gate.issuer.verify(authorization[1]), gate.accounts)
        except InvalidToken as exc:
            raise RegistryError(
                ErrorKind.UNAUTHORIZED,
                f"invalid token: {exc}",
                headers=gate.challenge(request, scopes, "invalid_token"),
            ) from exc
    if authorization is None:
        return PrincipalAccess(ANONYMOUS, gate.accounts)
    return PrincipalAccess(await password_principal(request, gate, *authorization), gate.accounts)


async def password_principal(request: Request, gate: Gate, scheme: str, parameters: str) -> Principal:
    """Who the Basic credentials of ``Authorization: <scheme> <parameters>`` are (empty ones: anonymous).

    Another scheme or malformed credentials, and a wrong password, are ``UNAUTHORIZED`` with the
    gate's challenge; too many failed logins ``TOO_MANY_REQUESTS`` with ``Retry-After``.
    """
    if scheme == "basic" and is_empty_basic(parameters):
        return ANONYMOUS
    credentials = parse_basic(parameters) if scheme == "basic" else None
    if credentials is None:
        raise RegistryError(ErrorKind.UNAUTHORIZED, "malformed credentials", headers=gate.challenge(request, []))
    try:
        return await gate.accounts.authenticate(credentials.username, credentials.password, client_address(request))
    except LoginThrottled as exc:
        raise RegistryError(
            ErrorKind.TOO_MANY_REQUESTS, str(exc), headers={"Retry-After": str(exc.retry_after)}
        ) from exc
    except PermissionError as exc:
        raise RegistryError(ErrorKind.UNAUTHORIZED, str(exc), headers=gate.challenge(request, [])) from exc


async def enforce(request: Request, gate: Gate, match: RouteMatch) -> Access:
    """Authenticate and check that the request's actions are allowed; raise the right 401/403 otherwise."""
    access = await authenticate(request, gate, challenge_scopes(match, request.method))
    if isinstance(access, OpenAccess):
        return access
    anonymous = isinstance(access, PrincipalAccess) and access.principal.is_anonymous
    endpoint = match.route.endpoint
    if endpoint is Endpoint.BASE:
        if anonymous:
            # Clients ping /v2/ to learn whether and how to log in.
            raise RegistryError(ErrorKind.UNAUTHORIZED, headers=gate.challenge(request, []))
        return access
    if endpoint is Endpoint.CATALOG:
        if isinstance(access, TokenAccess) and not access.has_catalog():
            raise RegistryError(
                ErrorKind.UNAUTHORIZED,
                headers=gate.challenge(request, ["registry:catalog:*"], "insufficient_scope"),
            )
        return access
    needed = required_actions(match, request.method)
    missing = [action for action in needed if not await access.allows(match.name, action)]
    if not missing:
        return access
    scope = f"repository:{match.name}:{','.join(needed)}"
    if isinstance(access, TokenAccess):
        raise RegistryError(ErrorKind.UNAUTHORIZED, headers=gate.challenge(request, [scope], "insufficient_scope"))
    if anonymous:
        raise RegistryError(ErrorKind.UNAUTHORIZED, headers=gate.challenge(request, [scope]))
    # The same answer whether the repository is private or missing: nothing leaks.
    raise RegistryError(
        ErrorKind.DENIED, detail=[{"Type": "repository", "Name": match.name, "Action": a} for a in missing]
    )
