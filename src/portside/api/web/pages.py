"""What every web page handler uses: the viewer, rendering, sign-in and CSRF checks.

A handler is a plain ``async def handler(request) -> Response`` wrapped by :func:`page`, which
turns :class:`PageError` into an error page and :class:`Redirect` into a ``303``. Inside it:

* ``viewer = await current_viewer(request)``: who is looking (anonymous or signed in);
* ``viewer = await require_sign_in(request)``: the same, or a redirect to the sign-in page;
* ``form = await read_form(request)``: a POSTed form whose CSRF token was checked;
* ``return await render(request, "page.html", {...})``: a page in the base layout.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from jinja2 import Environment
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from portside.auth.accounts import ACCOUNT_NAME_RE
from portside.auth.policy import ANONYMOUS, Principal, PrincipalKind
from portside.auth.roles import Role, actions_for
from portside.auth.web_sessions import WebSessions, csrf_token, csrf_valid, safe_next
from portside.config import Settings
from portside.metadata.records import UserRecord, Visibility
from portside.metadata.web_session_store import WebSessionRecord
from portside.oci.errors import RegistryError
from portside.registry.browse import BrowseService
from portside.registry.services import Registry

SESSION_COOKIE = "portside_session"
# Before sign-in, forms (sign-in, sign-up) are bound to a random nonce in this cookie.
NONCE_COOKIE = "portside_csrf"
CSRF_FIELD = "csrf_token"

# Pages may only load this site's own scripts and styles; README images may come from anywhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)

# Without authentication (auth = "none") everyone may pull everything, as on the registry API:
# reads then go through a principal that sees every repository and may do no more than pull.
OPEN_READER = Principal(PrincipalKind.ANONYMOUS, is_admin=True, ceiling=Role.PULL)


@dataclass
class WebUI:
    """The web UI's services, built once per app and kept on ``app.state.web``."""

    settings: Settings
    registry: Registry
    sessions: WebSessions
    templates: Environment
    browse: BrowseService

    def secure_request(self, request: Request) -> bool:
        """True if the browser reached us over TLS, directly or through a trusted proxy.

        The observability middleware has already applied a trusted proxy's headers to the scope.
        """
        return request.url.scheme == "https"

    def set_cookie(self, request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
        """A cookie scripts cannot read, not sent on cross-site POSTs, and ``Secure`` over TLS."""
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.secure_request(request),
        )


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a page."""

    principal: Principal
    session: WebSessionRecord | None
    csrf: str
    # auth = "none": everyone may pull everything, as on the registry API.
    open_registry: bool

    @property
    def user(self) -> UserRecord | None:
        """The signed-in user, if any."""
        return None if self.session is None else self.session.user

    @property
    def signed_in(self) -> bool:
        """True with a live session."""
        return self.session is not None

    @property
    def is_admin(self) -> bool:
        """A signed-in site administrator."""
        return self.session is not None and self.session.user.is_admin

    @property
    def reader(self) -> Principal:
        """The principal to read as: the viewer's, or on an open registry one that may pull everything."""
        return OPEN_READER if self.open_registry else self.principal


class PageError(Exception):
    """Answer with an error page (404 for a missing or hidden page, 403 for a refused form, ...)."""

    def __init__(self, status: int, message: str, title: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.title = title or {403: "Refused", 404: "Not found", 429: "Too many attempts"}.get(status, "Error")


class Redirect(Exception):
    """Answer with ``303 See Other`` to ``location`` (a path on this site)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def namespace_param(request: Request) -> str:
    """The ``{namespace}`` of the URL; 404 if it cannot be a user's or organization's name."""
    name: str = request.path_params["namespace"]
    if not ACCOUNT_NAME_RE.match(name):
        raise PageError(404, f"There is no user or organization {name!r}.")
    return name


def web_of(request: Request) -> WebUI:
    """The app's web UI services."""
    web: WebUI = request.app.state.web
    return web


async def current_viewer(request: Request) -> Viewer:
    """Who is looking: from the session cookie, looked up once per request."""
    cached: Viewer | None = getattr(request.state, "viewer", None)
    if cached is not None:
        return cached
    web = web_of(request)
    open_registry = web.settings.auth == "none"
    session = await web.sessions.lookup(request.cookies.get(SESSION_COOKIE))
    if session is not None:
        principal = await web.sessions.principal(session.user)
        viewer = Viewer(principal, session, csrf_token(web.sessions.key, session.id), open_registry)
    else:
        nonce = request.cookies.get(NONCE_COOKIE)
        if not nonce or len(nonce) > 64:
            nonce = secrets.token_urlsafe(16)
            # render() sets the cookie on the response that carries the form.
            request.state.new_nonce = nonce
        viewer = Viewer(ANONYMOUS, None, csrf_token(web.sessions.key, nonce), open_registry)
    request.state.viewer = viewer
    return viewer


async def require_sign_in(request: Request) -> Viewer:
    """The signed-in viewer; otherwise a redirect to the sign-in page that comes back here."""
    viewer = await current_viewer(request)
    if not viewer.signed_in:
        # After a POST, come back to the page the form was on rather than to the POST's URL.
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            referer = urlsplit(request.headers.get("referer", ""))
            same_site = referer.netloc == browser_host(request)
            back = safe_next(referer.path + (f"?{referer.query}" if referer.query else "")) if same_site else "/"
        raise Redirect(f"/sign-in?next={quote(back, safe='')}")
    return viewer


async def read_form(request: Request) -> FormData:
    """The POSTed form, after checking its CSRF token against the viewer's session (or nonce)."""
    form = await request.form()
    web = web_of(request)
    viewer = await current_viewer(request)
    if viewer.session is not None:
        binding: str | None = viewer.session.id
    else:
        # A nonce minted by this very request was never in a page: nothing can match it.
        binding = None if getattr(request.state, "new_nonce", None) else request.cookies.get(NONCE_COOKIE)
    submitted = form.get(CSRF_FIELD)
    if not csrf_valid(web.sessions.key, binding, submitted if isinstance(submitted, str) else None):
        raise PageError(
            403,
            "This form expired or did not come from this site. Reload the page and try again "
            "(cookies must be enabled to sign in).",
            "Form refused",
        )
    return form


async def may_pull(request: Request, repository: str) -> bool:
    """True if the viewer may pull ``repository`` (the policy's answer; everyone without auth)."""
    viewer = await current_viewer(request)
    if viewer.open_registry:
        return True
    role = await web_of(request).registry.accounts.role_on(viewer.principal, repository)
    return "pull" in actions_for(role)


async def visibility(request: Request) -> Visibility:
    """Which repositories the viewer may see in listings."""
    viewer = await current_viewer(request)
    if viewer.open_registry:
        return Visibility(everything=True)
    return web_of(request).registry.accounts.visibility(viewer.principal)


async def require_pull(request: Request, repository: str) -> Viewer:
    """The viewer, if they may pull ``repository``; a 404 otherwise (the same as a missing one)."""
    if not await may_pull(request, repository):
        raise PageError(404, f"There is no repository {repository!r}, or you may not see it.")
    return await current_viewer(request)


def browser_host(request: Request) -> str:
    """The registry's host as the browser named it: what ``docker pull`` needs.

    Behind a trusted proxy, the observability middleware has already put its forwarded host here.
    """
    return request.headers.get("host") or request.url.netloc


async def render(
    request: Request, template: str, context: Mapping[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    """A page from ``templates/`` in the base layout, with the viewer and CSRF token at hand."""
    web = web_of(request)
    viewer = await current_viewer(request)
    values = {
        "request": request,
        "viewer": viewer,
        "csrf_field": CSRF_FIELD,
        "csrf_token": viewer.csrf,
        "signup_open": web.settings.public_signup,
        "registry_host": browser_host(request),
        "current_path": request.url.path,
        # The banner of every page while writes are refused (the flag is cached by the service).
        "read_only": await web.registry.maintenance.read_only(),
        **(context or {}),
    }
    body = web.templates.get_template(template).render(values)
    response = HTMLResponse(body, status_code=status)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    # Pages differ per viewer: never cached by shared caches, revalidated by the browser.
    response.headers["Cache-Control"] = "private, no-cache"
    new_nonce = getattr(request.state, "new_nonce", None)
    if new_nonce is not None:
        web.set_cookie(request, response, NONCE_COOKIE, new_nonce, None)
    return response


Handler = Callable[[Request], Awaitable[Response]]


def page(handler: Handler) -> Handler:
    """Wrap a page handler: ``PageError`` renders an error page, ``Redirect`` answers 303."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except Redirect as redirect:
            return RedirectResponse(redirect.location, status_code=303)
        except PageError as error:
            return await render(
                request, "error.html", {"title": error.title, "message": error.message}, status=error.status
            )
        except RegistryError as error:
            # A service's refusal: 404 for what the viewer may not see, 403 for what they may not do.
            title = PageError(error.status, error.message).title
            return await render(request, "error.html", {"title": title, "message": error.message}, status=error.status)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint
