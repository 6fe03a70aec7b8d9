"""What the signed-in management pages share: who is signed in, CSRF-checked forms, errors, notices.

Every change goes through a service of :mod:`portside.auth.management` (the same ones the
``/api/v1`` management API uses), which decides what the caller may do; these helpers only turn
its answers into pages. Successful posts redirect (303) to a page that names a notice by a code
from :data:`NOTICES`, so a notice never echoes anything from the URL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from portside.api.access import client_address
from portside.api.web import pages
from portside.auth.management import Management, build_management
from portside.auth.management.guards import Caller
from portside.auth.web_sessions import safe_next
from portside.oci.errors import ErrorKind, RegistryError

# What a redirect after a successful change may announce; anything else in `?done=` is ignored.
NOTICES: dict[str, str] = {
    "token-revoked": "The token was revoked: it no longer works.",
    "org-created": "The organization was created; you own it.",
    "org-deleted": "The organization was deleted.",
    "member-set": "The member was saved.",
    "member-removed": "The member was removed.",
    "team-created": "The team was created.",
    "team-deleted": "The team was deleted.",
    "team-member-added": "The user was added to the team.",
    "team-member-removed": "The user was taken out of the team.",
    "robot-created": "The robot was created. Make a token for it to log in.",
    "robot-deleted": "The robot and its tokens were deleted.",
    "visibility-saved": "The visibility was saved.",
    "description-saved": "The description was saved.",
    "readme-saved": "The README was saved.",
    "grant-saved": "The permission was saved.",
    "grant-removed": "The permission was removed.",
    "user-created": "The user was created.",
    "user-deleted": "The user was deleted, with their tokens, robots and sessions.",
    "admin-set": "The user's administrator flag was saved.",
    "password-changed": "Your password was changed; other browsers were signed out.",
    "tag-restored": "The tag was restored: it points at the chosen digest again.",
    "tag-unchanged": "The tag already pointed at that digest; nothing changed.",
    "rule-added": "The immutable tag rule was added: matching tags can no longer be moved or deleted.",
    "rule-removed": "The immutable tag rule was removed.",
    "policy-added": "The retention policy was added; it applies from the next run.",
    "policy-removed": "The retention policy was removed.",
    "repository-deleted": "The repository was deleted; garbage collection frees its storage.",
    "gc-started": "Garbage collection started.",
    "quota-set": "The quota was saved.",
    "quota-cleared": "The namespace's own quota was removed (the default applies, if there is one).",
    "webhook-enabled": "The webhook was enabled: new events are sent to it.",
    "webhook-disabled": "The webhook was disabled: no new events are sent to it.",
    "webhook-removed": "The webhook was removed with its delivery log.",
    "read-only-on": "Read-only mode is on: pushes and changes are refused, pulls go on.",
    "read-only-off": "Read-only mode is off: pushes and changes work again.",
}

NO_STORE = {"Cache-Control": "no-store"}


def services(request: Request) -> Management:
    """The management services over this app's registry (cheap to build: no I/O)."""
    registry = pages.web_of(request).registry
    return build_management(registry.accounts, registry.audit, registry.listings)


def notice(request: Request) -> str | None:
    """The notice a redirect after a change asked for, if it is one of ours."""
    return NOTICES.get(request.query_params.get("done", ""))


def see_other(path: str, done: str) -> RedirectResponse:
    """Redirect after a successful post (303, so the browser GETs the page)."""
    assert done in NOTICES
    return RedirectResponse(f"{path}?{urlencode({'done': done})}", status_code=303)


def path_part(value: str) -> str:
    """A name quoted for a URL path (repository names keep their slashes)."""
    return quote(value, safe="/+")


async def render(
    request: Request, template: str, context: Mapping[str, Any], status: int = 200, *, secret: bool = False
) -> Response:
    """A signed-in page in the base layout, with the notice a redirect asked for.

    ``secret`` pages (a token shown once) are ``no-store``: kept out of caches and history.
    """
    response = await pages.render(request, template, {"notice": notice(request), **context}, status)
    if secret:
        response.headers.update(NO_STORE)
    return response


def refusal(error: RegistryError) -> pages.PageError:
    """A service's refusal as an error page with the error table's status (401 counts as 403 here)."""
    status = 403 if error.status == 401 else error.status
    return pages.PageError(status, error.message)


Page = Callable[[Request, Caller], Awaitable[Response]]


@dataclass(frozen=True)
class FormState:
    """What a page shows of a refused post: the service's message (beside the form of ``section``
    on a page with several), what was typed into the form (never passwords), and the status."""

    error: str | None = None
    section: str | None = None
    # Read-only, so the shared FRESH holds no mutable state.
    values: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    status: int = 200


FRESH = FormState()
"""A page as its GET shows it: nothing refused, nothing typed."""

View = Callable[[Request, Caller, FormState], Awaitable[Response]]
Action = Callable[[Request, Caller, FormData], Awaitable[Response]]
Retry = Callable[[Request, Caller, FormData, RegistryError], Awaitable[Response]]


async def signed_in_caller(request: Request) -> Caller:
    """The signed-in user as a management caller; anonymous browsers are sent to sign in.

    A session came from a password, so its principal has full authority (no token ceiling).
    """
    viewer = await pages.require_sign_in(request)
    return Caller(viewer.principal, client_address(request))


def signed_in_page(handler: Page) -> Callable[[Request], Awaitable[Response]]:
    """A GET page for signed-in users; a service's refusal becomes an error page."""

    async def endpoint(request: Request) -> Response:
        caller = await signed_in_caller(request)
        try:
            return await handler(request, caller)
        except RegistryError as error:
            raise refusal(error) from error

    endpoint.__name__ = handler.__name__
    return pages.page(endpoint)


def signed_in_action(
    handler: Action, retry: Retry | None = None, *, writes: bool = True
) -> Callable[[Request], Awaitable[Response]]:
    """A form post: signed in, CSRF token checked (403 otherwise), then one service call.

    A post that ``writes`` is refused while the registry is read-only for maintenance (405, the
    management API's refusal); only the read-only switch itself passes ``writes=False``.

    Bad input or a refusal shows the form again with the service's message (``retry``), keeping
    what was typed (a grant for an unknown team, say, answers 404 beside the form); without
    ``retry``, or when the page itself is missing or hidden, an error page. Either way the
    status is the error table's (400, 403, 404, 409).
    """

    async def endpoint(request: Request) -> Response:
        if not (await pages.current_viewer(request)).signed_in:
            # The session ended while the form was open: sign in, then back to the form's page
            # (the post itself cannot be replayed, and its URL answers only POST).
            raise pages.Redirect(f"/sign-in?{urlencode({'next': form_page(request)})}")
        caller = await signed_in_caller(request)
        form = await pages.read_form(request)
        try:
            if writes:
                await pages.web_of(request).registry.maintenance.refuse_writes(request.method)
            return await handler(request, caller, form)
        except RegistryError as error:
            failure = error
        if retry is None:
            raise refusal(failure) from failure
        try:
            return await retry(request, caller, form, failure)
        except RegistryError as again:
            # The page itself is refused too (the caller lost access meanwhile, say).
            raise refusal(again) from again

    endpoint.__name__ = handler.__name__
    return pages.page(endpoint)


def view_retry(view: View, *fields: str, section: str | None = None) -> Retry:
    """Show a page's ``view`` (its GET) again after a refused post, with the service's message and status.

    What was typed into ``fields`` is filled in again; on a page with several forms the error
    stands beside the form of ``section``.
    """

    async def retry(request: Request, caller: Caller, form: FormData, error: RegistryError) -> Response:
        return await view(request, caller, FormState(error.message, section, form_values(form, *fields), error.status))

    return retry


FormAction = Callable[[Request, Caller, FormData], Awaitable["str | Response"]]
"""One form of a settings page: it answers a notice code for the redirect, or a page of its own."""

FormActions = Mapping[str, tuple[FormAction, str]]
"""A settings page's forms by the ``{action}`` they post to, each with the section showing its refusals."""


def action_post(actions: FormActions, page: Callable[[Request], str], unknown: str) -> Action:
    """POST ``.../{action}``: that form's change, then back to ``page(request)`` with its notice."""

    async def post(request: Request, caller: Caller, form: FormData) -> Response:
        action = actions.get(request.path_params["action"])
        if action is None:
            raise RegistryError(ErrorKind.NAME_UNKNOWN, unknown)
        done = await action[0](request, caller, form)
        if isinstance(done, Response):
            return done
        return see_other(page(request), done)

    return post


def action_retry(view: View, actions: FormActions, *fields: str) -> Retry:
    """The settings page again, the refusal next to the form that was posted; what was typed into ``fields`` kept."""

    async def retry(request: Request, caller: Caller, form: FormData, error: RegistryError) -> Response:
        action = actions.get(request.path_params["action"])
        section = action[1] if action else None
        state = FormState(error.message, section, form_values(form, *fields), error.status)
        return await view(request, caller, state)

    return retry


def form_page(request: Request) -> str:
    """The page a form was posted from (its ``Referer`` on this site), else the home page."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc != request.headers.get("host"):
        return "/"
    return safe_next(referer.path + (f"?{referer.query}" if referer.query else ""))


def form_values(form: FormData | None, *names: str) -> dict[str, str]:
    """What was typed into a form (never passwords), to fill it in again after an error."""
    if form is None:
        return {}
    return {name: value for name in names if isinstance(value := form.get(name, ""), str)}
