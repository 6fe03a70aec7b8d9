"""Changing your own password: the current one proves who you are; every other session ends."""

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
from portside.api.web.pages import SESSION_COOKIE, current_viewer, web_of
from portside.auth.management.guards import Caller
from portside.oci.errors import ErrorKind, RegistryError

CHANGE_PAGE = "/account/password"


async def password_view(request: Request, caller: Caller, state: FormState = FRESH) -> Response:
    """The password form (never filled in again after an error)."""
    return await render(request, "manage/password.html", {"error": state.error}, state.status)


async def change_password(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /account/password: the user service checks the current password (throttled like sign-in).

    Then every session of the user ends, on every node (a stolen session dies with the old
    password), and this browser gets a fresh one so that it stays signed in.
    """
    password = fields.text(form, "password")
    if password != fields.text(form, "password_again"):
        raise RegistryError(ErrorKind.REQUEST_INVALID, "the two new passwords differ")
    name = caller.principal.name
    await services(request).users.set_password(caller, name, password, fields.text(form, "current_password"))
    web = web_of(request)
    viewer = await current_viewer(request)
    assert viewer.user is not None  # signed_in_action let only signed-in browsers through
    await web.sessions.sign_out_everywhere(viewer.user.id)
    fresh = await web.sessions.open(viewer.user.id, caller.address)
    response = see_other(CHANGE_PAGE, "password-changed")
    web.set_cookie(request, response, SESSION_COOKIE, fresh.secret, int(web.sessions.lifetime.total_seconds()))
    return response


def password_routes() -> list[BaseRoute]:
    """The password page."""
    return [
        Route(CHANGE_PAGE, signed_in_page(password_view), methods=["GET"]),
        Route(CHANGE_PAGE, signed_in_action(change_password, view_retry(password_view)), methods=["POST"]),
    ]
