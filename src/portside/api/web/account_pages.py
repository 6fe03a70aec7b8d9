"""Sign in, sign out and (in public mode) sign up."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from portside.api.access import client_address
from portside.api.web.pages import (
    SESSION_COOKIE,
    PageError,
    Redirect,
    current_viewer,
    read_form,
    render,
    web_of,
)
from portside.auth.accounts import LoginThrottled
from portside.auth.web_sessions import SignedIn, safe_next
from portside.metadata.account_errors import Conflict


def _signed_in(request: Request, signed: SignedIn, target: str) -> Response:
    web = web_of(request)
    response = RedirectResponse(target, status_code=303)
    web.set_cookie(request, response, SESSION_COOKIE, signed.secret, int(web.sessions.lifetime.total_seconds()))
    return response


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def sign_in(request: Request) -> Response:
    """GET: the sign-in form. POST: check the password, open a session, go back where the user was."""
    target = safe_next(request.query_params.get("next"))
    if request.method == "GET":
        if (await current_viewer(request)).signed_in:
            raise Redirect(target)
        return await render(request, "sign_in.html", {"next": target, "username": ""})
    form = await read_form(request)
    username = _field(form, "username").strip()
    target = safe_next(_field(form, "next"))
    web = web_of(request)
    try:
        signed = await web.sessions.sign_in(username, _field(form, "password"), client_address(request))
    except LoginThrottled as exc:
        context = {"next": target, "username": username, "error": f"Too many failed attempts. {exc}."}
        return await render(request, "sign_in.html", context, status=429)
    except PermissionError:
        context = {"next": target, "username": username, "error": "Wrong username or password."}
        return await render(request, "sign_in.html", context, status=401)
    return _signed_in(request, signed, target)


async def sign_out(request: Request) -> Response:
    """POST: end the session (the row goes, so the cookie is worthless everywhere)."""
    await read_form(request)
    viewer = await current_viewer(request)
    web = web_of(request)
    if viewer.session is not None:
        await web.sessions.sign_out(viewer.session, client_address(request))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=web.secure_request(request))
    return response


async def sign_up(request: Request) -> Response:
    """Public mode only: create an account and sign it in."""
    web = web_of(request)
    if not web.settings.public_signup:
        raise PageError(404, "Accounts are created by an administrator on this registry.")
    if request.method == "GET":
        return await render(request, "sign_up.html", {"username": "", "email": ""})
    form = await read_form(request)
    username = _field(form, "username").strip()
    email = _field(form, "email").strip() or None
    password = _field(form, "password")
    context = {"username": username, "email": email or ""}
    error: str | None = None
    if password != _field(form, "password_confirmation"):
        error = "The two passwords differ."
    else:
        try:
            signed = await web.sessions.sign_up(username, password, email, client_address(request))
        except ValueError as exc:  # InvalidName too
            error = str(exc).capitalize() + "."
        except Conflict:
            error = f"The name {username!r} is taken; choose another."
    if error is not None:
        return await render(request, "sign_up.html", {**context, "error": error}, status=400)
    return _signed_in(request, signed, "/")
