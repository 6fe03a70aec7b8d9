"""The webhook pages' pure form helpers: ticked events, the form as the API's body, the log limit."""

from __future__ import annotations

import pytest
from starlette.datastructures import FormData
from starlette.requests import Request

from portside.api.web.manage_webhooks import chosen_events, delivery_limit, new_webhook, webhooks_path
from portside.api.web.pages import PageError
from portside.oci.errors import RegistryError


def request_with(query: str) -> Request:
    """A bare GET request with ``query``."""
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": query.encode(), "headers": []})


def test_no_ticked_event_means_every_event_as_in_the_api() -> None:
    assert chosen_events(FormData([])) == ["*"]
    assert chosen_events(FormData([("events", "push"), ("events", "tag")])) == ["push", "tag"]


def test_the_form_becomes_the_apis_request_body_with_its_limits() -> None:
    body = new_webhook(FormData([("webhook_url", " http://127.0.0.1:9/hook "), ("events", "push")]))
    assert body.url == "http://127.0.0.1:9/hook" and body.events == ["push"] and body.secret is None
    typed = new_webhook(FormData([("webhook_url", "http://x/h"), ("webhook_secret", "s" * 16)]))
    assert typed.secret == "s" * 16 and typed.events == ["*"]
    with pytest.raises(RegistryError, match="the secret") as short:
        new_webhook(FormData([("webhook_url", "http://x/h"), ("webhook_secret", "short")]))
    assert short.value.status == 400
    with pytest.raises(RegistryError, match="the URL"):
        new_webhook(FormData([("webhook_url", "http://x/" + "a" * 2000)]))
    with pytest.raises(RegistryError, match="the URL"):
        new_webhook(FormData([]))


def test_log_limit_defaults_and_bounds() -> None:
    assert delivery_limit(request_with("")) == 50
    assert delivery_limit(request_with("limit=7")) == 7
    for bad in ("limit=0", "limit=1001", "limit=x", "limit=-1"):
        with pytest.raises(PageError):
            delivery_limit(request_with(bad))


def test_paths() -> None:
    assert webhooks_path("acme") == "/n/acme/-/webhooks"
    assert webhooks_path("acme", 3) == "/n/acme/-/webhooks/3"
