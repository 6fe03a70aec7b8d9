"""Personal access tokens: list, create (the secret shown once), revoke."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.api.web import form_values as fields
from portside.api.web.manage_common import (
    FRESH,
    FormState,
    render,
    see_other,
    services,
    signed_in_action,
    signed_in_page,
    view_retry,
)
from portside.auth.management.guards import Caller
from portside.auth.management.tokens import MAX_EXPIRY_DAYS, MAX_TOKEN_NAME

TOKENS = "/account/tokens"
TOKEN_FIELDS = ("name", "max_role", "expires_in_days")


async def tokens_view(request: Request, caller: Caller, state: FormState = FRESH) -> Response:
    """The caller's tokens and the form to make one."""
    tokens = await services(request).tokens.list_own(caller)
    return await render(
        request,
        "manage/tokens.html",
        {
            "tokens": tokens,
            "error": state.error,
            "values": state.values or {"max_role": "pull", "expires_in_days": "90"},
            "roles": fields.ROLE_CHOICES,
            "max_expiry_days": MAX_EXPIRY_DAYS,
            "max_name": MAX_TOKEN_NAME,
        },
        state.status,
    )


async def create_token(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /account/tokens: the new token's secret is on this answer only.

    This one post answers with a page rather than a redirect: the secret must be shown once and
    kept nowhere, not even in a session, so it cannot wait for the next GET. ``no-store`` keeps
    it out of the browser's cache and history.
    """
    issued = await services(request).tokens.create_own(
        caller,
        fields.required(form, "name", "a token name"),
        fields.role(form, "max_role"),
        fields.expiry_days(form),
    )
    context = {"token": issued.token, "secret": issued.secret, "back": TOKENS, "login_name": caller.principal.name}
    return await render(request, "manage/token_created.html", context, 201, secret=True)


async def revoke_token(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /account/tokens/{token_id}/revoke."""
    token_id = fields.identifier(request.path_params["token_id"], "token")
    await services(request).tokens.revoke_own(caller, token_id)
    return see_other(TOKENS, "token-revoked")


def token_routes() -> list[BaseRoute]:
    """The personal access token pages."""
    return [
        Route(TOKENS, signed_in_page(tokens_view), methods=["GET"]),
        Route(TOKENS, signed_in_action(create_token, view_retry(tokens_view, *TOKEN_FIELDS)), methods=["POST"]),
        Route(TOKENS + "/{token_id}/revoke", signed_in_action(revoke_token), methods=["POST"]),
    ]
