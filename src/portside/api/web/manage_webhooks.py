"""Webhook pages of a namespace [its admins]: the endpoints, adding one, and each one's delivery log.

Every read and change is a call to the notifier's caller-checked methods (``list_for``,
``create_for``, ``set_enabled_for``, ``remove_for``, ``deliveries_for``) — the ones
``/api/v1/webhooks`` calls — so a page refuses exactly what the API refuses, with the same
message, and records the same audit entries.

* The endpoints are a section of ``/n/NAMESPACE/-/settings``; its add form posts to
  ``/n/NAMESPACE/-/webhooks`` and answers with the created endpoint's secret, shown once.
* ``/n/NAMESPACE/-/webhooks/ID``: one endpoint with its delivery log (newest first,
  ``?limit=``), enable/disable and remove (with a confirmation box).
"""

from __future__ import annotations

from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.api.management.webhooks import WebhookCreate
from portside.api.web import form_values as fields
from portside.api.web.formatting import namespace_path
from portside.api.web.manage_common import (
    FRESH,
    FormState,
    render,
    see_other,
    signed_in_action,
    signed_in_page,
    view_retry,
)
from portside.api.web.manage_lifecycle import namespace_settings_path, namespace_settings_view
from portside.api.web.pages import PageError, namespace_param, web_of
from portside.auth.management.guards import Caller
from portside.digits import parse_digits
from portside.oci.errors import ErrorKind, RegistryError

WEBHOOKS = "/-/webhooks"
# The delivery log shows this many deliveries unless ``?limit=`` asks for another number.
LOG_LIMIT = 50
LOG_LIMIT_MAX = 1000


def webhooks_path(namespace: str, endpoint_id: int | None = None) -> str:
    """Where a namespace's webhook forms post, or one endpoint's delivery log page."""
    return namespace_path(namespace) + WEBHOOKS + (f"/{endpoint_id}" if endpoint_id is not None else "")


def _endpoint_id(request: Request) -> int:
    return fields.identifier(request.path_params["endpoint"], "webhook")


def chosen_events(form: FormData) -> list[str]:
    """The ticked event boxes; none ticked means every event (as in the API). The service validates them."""
    ticked = [value for value in form.getlist("events") if isinstance(value, str) and value]
    return ticked or ["*"]


def new_webhook(form: FormData) -> WebhookCreate:
    """The form as the API's request body, so URL and secret obey the API's limits; ``REQUEST_INVALID`` if not."""
    # Generous field limits here: the API's model is what refuses too long a URL or secret.
    secret = fields.text(form, "webhook_secret", limit=fields.MAX_FIELD) or None
    url = fields.text(form, "webhook_url", limit=fields.MAX_FIELD * 4)
    if not url:
        raise RegistryError(ErrorKind.REQUEST_INVALID, "the URL is required")
    try:
        return WebhookCreate(url=url, events=chosen_events(form), secret=secret)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = "the secret" if "secret" in problem["loc"] else "the URL"
        raise RegistryError(ErrorKind.REQUEST_INVALID, f"{where}: {problem['msg']}") from exc


def delivery_limit(request: Request) -> int:
    """``?limit=`` (1 to 1000), else the default."""
    raw = request.query_params.get("limit", "")
    if not raw:
        return LOG_LIMIT
    limit = parse_digits(raw)
    if limit is None or not 1 <= limit <= LOG_LIMIT_MAX:
        raise PageError(400, f"The limit must be a whole number from 1 to {LOG_LIMIT_MAX}.")
    return limit


# Adding an endpoint (its section is on the namespace settings page)


async def create_webhook(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /n/{namespace}/-/webhooks: the created endpoint and its secret, on this answer only.

    Like a token, the secret is shown once and kept nowhere else (``no-store``), so this post
    answers with a page (201) rather than a redirect.
    """
    namespace = namespace_param(request)
    body = new_webhook(form)
    registry = web_of(request).registry
    created = await registry.notifier.create_for(caller, namespace, body.url, body.events, body.secret, True)
    await registry.audit.record_now(
        caller.actor, "webhook-create", namespace, caller.address, id=created.endpoint.id, url=body.url
    )
    context = {
        "namespace": namespace,
        "endpoint": created.endpoint,
        "secret": created.secret,
        "log": webhooks_path(namespace, created.endpoint.id),
        "back": namespace_settings_path(namespace),
    }
    return await render(request, "manage/webhook_created.html", context, 201, secret=True)


async def create_retry(request: Request, caller: Caller, form: FormData, error: RegistryError) -> Response:
    """The namespace settings again, the refusal beside the webhook form; the URL and events kept (never the secret)."""
    url = form.get("webhook_url", "")
    values = {"webhook_url": url[: fields.MAX_FIELD * 4] if isinstance(url, str) else ""}
    state = FormState(error.message, "webhooks", values, error.status)
    return await namespace_settings_view(request, caller, state, chosen_events=chosen_events(form))


# One endpoint and its delivery log


async def webhook_view(request: Request, caller: Caller, state: FormState = FRESH) -> Response:
    """An endpoint, its switches and its delivery log, newest first."""
    namespace = namespace_param(request)
    endpoint_id = _endpoint_id(request)
    notifier = web_of(request).registry.notifier
    # ``get_for`` checks for a namespace admin first (403), then that the endpoint is this namespace's (404).
    endpoint = await notifier.get_for(caller, namespace, endpoint_id)
    limit = delivery_limit(request)
    deliveries = await notifier.deliveries_for(caller, namespace, endpoint_id, limit)
    context = {
        "namespace": namespace,
        "endpoint": endpoint,
        "deliveries": deliveries,
        "limit": limit,
        "more": limit < LOG_LIMIT_MAX and len(deliveries) == limit,
        "next_limit": min(limit * 4, LOG_LIMIT_MAX),
        "base": webhooks_path(namespace, endpoint_id),
        "settings": namespace_settings_path(namespace),
        "error": state.error,
        "error_section": "webhook",
    }
    return await render(request, "manage/webhook.html", context, state.status)


async def webhook_action(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /n/{namespace}/-/webhooks/{endpoint}/{enable|disable|remove}."""
    namespace = namespace_param(request)
    endpoint_id = _endpoint_id(request)
    action = request.path_params["action"]
    registry = web_of(request).registry
    if action in ("enable", "disable"):
        enabled = action == "enable"
        await registry.notifier.set_enabled_for(caller, namespace, endpoint_id, enabled)
        await registry.audit.record_now(
            caller.actor, "webhook-update", namespace, caller.address, id=endpoint_id, enabled=enabled
        )
        return see_other(webhooks_path(namespace, endpoint_id), "webhook-enabled" if enabled else "webhook-disabled")
    if action == "remove":
        # Checked first, so a refused caller learns nothing more than the API would tell them.
        await registry.notifier.get_for(caller, namespace, endpoint_id)
        if not fields.checkbox(form, "confirm"):
            raise RegistryError(ErrorKind.REQUEST_INVALID, "tick the box to confirm removing the webhook")
        await registry.notifier.remove_for(caller, namespace, endpoint_id)
        await registry.audit.record_now(caller.actor, "webhook-delete", namespace, caller.address, id=endpoint_id)
        return see_other(namespace_settings_path(namespace), "webhook-removed")
    raise RegistryError(ErrorKind.NAME_UNKNOWN, "no such action")


def webhook_routes() -> list[BaseRoute]:
    """The webhook pages of a namespace."""
    base = "/n/{namespace}" + WEBHOOKS
    return [
        Route(base, signed_in_action(create_webhook, create_retry), methods=["POST"]),
        Route(base + "/{endpoint}", signed_in_page(webhook_view), methods=["GET"]),
        Route(
            base + "/{endpoint}/{action}", signed_in_action(webhook_action, view_retry(webhook_view)), methods=["POST"]
        ),
    ]
