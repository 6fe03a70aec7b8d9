"""The token server: ``GET /token`` (Docker token spec) and ``POST /token`` (its OAuth2 variant)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from portside.api.access import client_address
from portside.api.responses import error_response
from portside.auth.accounts import LoginThrottled
from portside.auth.credentials import is_empty_basic, parse_authorization, parse_basic
from portside.auth.policy import ANONYMOUS, Principal, PrincipalKind
from portside.auth.roles import Role
from portside.auth.scopes import merge_scopes, parse_scopes
from portside.oci.errors import ErrorKind, RegistryError
from portside.registry.services import Registry

MAX_FORM_BYTES = 64 * 1024


def _json(document: dict[str, Any], status: int = 200) -> Response:
    return Response(
        json.dumps(document).encode(),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return _json({"error": error, "error_description": description}, status)


async def _login(request: Request, registry: Registry, username: str, password: str) -> Principal:
    address = client_address(request)
    try:
        principal = await registry.accounts.authenticate(username, password, address)
    except LoginThrottled:
        await registry.audit.record_now(f"user:{username}", "login-throttled", None, address)
        raise
    except PermissionError:
        await registry.audit.record_now(f"user:{username}", "login-failed", None, address)
        raise
    await registry.audit.record_now(principal.audit_name, "login", None, address)
    return principal


async def _issue(
    registry: Registry, principal: Principal, scope_values: list[str], offline: bool, client_id: str | None
) -> dict[str, Any]:
    granted = await registry.accounts.granted(principal, merge_scopes(parse_scopes(scope_values)))
    issuer = registry.gate.issuer
    token, lifetime, issued = issuer.issue(principal.name, granted)
    body: dict[str, Any] = {
        "token": token,
        "access_token": token,
        "expires_in": lifetime,
        "issued_at": datetime.fromtimestamp(issued, UTC).isoformat().replace("+00:00", "Z"),
        "scope": " ".join(str(scope) for scope in granted),
    }
    if offline and principal.id is not None and principal.kind is not PrincipalKind.ANONYMOUS:
        owner_kind = "robot" if principal.kind is PrincipalKind.ROBOT else "user"
        expires = datetime.now(UTC) + timedelta(days=registry.settings.refresh_token_days)
        refresh = await registry.accounts.issue_token(
            owner_kind,
            principal.id,
            f"refresh token ({client_id or 'unknown client'})",
            principal.ceiling or Role.ADMIN,
            expires,
        )
        body["refresh_token"] = refresh.secret
    return body


def _check_service(registry: Registry, service: str | None) -> None:
    if service and service != registry.gate.issuer.service:
        raise RegistryError(ErrorKind.DENIED, f"this token server issues tokens for {registry.gate.issuer.service!r}")


async def get_token(request: Request) -> Response:
    """``GET /token?service=...&scope=...``, anonymous or with Basic credentials."""
    registry: Registry = request.app.state.registry
    params = request.query_params
    try:
        _check_service(registry, params.get("service"))
        principal = ANONYMOUS
        authorization = parse_authorization(request.headers.get("authorization"))
        if authorization is not None and not (authorization[0] == "basic" and is_empty_basic(authorization[1])):
            credentials = parse_basic(authorization[1]) if authorization[0] == "basic" else None
            if credentials is None:
                raise RegistryError(ErrorKind.UNAUTHORIZED, "malformed credentials")
            principal = await _login(request, registry, credentials.username, credentials.password)
        body = await _issue(
            registry, principal, params.getlist("scope"), params.get("offline_token") == "true", params.get("client_id")
        )
        return _json(body)
    except LoginThrottled as exc:
        error = RegistryError(ErrorKind.TOO_MANY_REQUESTS, str(exc), headers={"Retry-After": str(exc.retry_after)})
        return error_response(error, request.method)
    except PermissionError as exc:
        return error_response(RegistryError(ErrorKind.UNAUTHORIZED, str(exc)), request.method)
    except RegistryError as error:
        return error_response(error, request.method)


async def post_token(request: Request) -> Response:
    """OAuth2 ``POST /token`` with ``grant_type=password`` or ``refresh_token``."""
    registry: Registry = request.app.state.registry
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return _oauth_error("invalid_request", "request body too large", 413)
    form = {key: values[-1] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}
    grant_type = form.get("grant_type")
    try:
        _check_service(registry, form.get("service"))
        if grant_type == "password":
            principal = await _login(request, registry, form.get("username", ""), form.get("password", ""))
        elif grant_type == "refresh_token":
            found = await registry.accounts.principal_for_secret(form.get("refresh_token", ""))
            if found is None:
                return _oauth_error("invalid_grant", "unknown, revoked or expired refresh token")
            principal = found
        else:
            return _oauth_error("unsupported_grant_type", "grant_type must be password or refresh_token")
    except LoginThrottled as exc:
        response = _oauth_error("invalid_grant", str(exc), 429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except PermissionError as exc:
        return _oauth_error("invalid_grant", str(exc), 401)
    except RegistryError as error:
        return _oauth_error("invalid_request", error.message)
    offline = form.get("access_type") == "offline" and grant_type == "password"
    scopes = [form["scope"]] if form.get("scope") else []
    document = await _issue(registry, principal, scopes, offline, form.get("client_id"))
    if grant_type == "refresh_token":
        document["refresh_token"] = form["refresh_token"]
    return _json(document)
