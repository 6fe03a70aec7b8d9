"""The web UI's webhook pages and read-only switch, as a browser without scripts sees them (plain form posts).

An endpoint added on the namespace settings page receives a real push at a loopback receiver,
and the delivery (or a failing receiver's error) shows on the endpoint's log page; refusals
(outsiders, bad input, CSRF) match the API's. The admin area's read-only switch refuses pushes
with 405 and puts a banner on every page until it is switched off again. One SQLite server: the
pages only call the notifier and the maintenance service, whose SQL the API tests cover on every
database.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.support.protocol import push_image
from tests.support.server import ServerProcess
from tests.support.web import ADMIN, PASSWORD, Browser, new_user, notice_of, signed_in, web_server
from tests.support.webhooks import Receiver, wait_for

pytestmark = pytest.mark.integration

LOG_LINK = re.compile(r'href="(/n/[^/"]+/-/webhooks/(\d+))">Delivery log<')
SHOWN_SECRET = re.compile(r'id="webhook-secret-value"[^>]*>([^<]+)<')
BANNER = 'id="read-only-banner"'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Basic mode; webhooks polled often, endpoints and the read-only flag read on every request."""
    yield from web_server(
        tmp_path_factory,
        "web-webhooks",
        PORTSIDE_WEBHOOK_POLL_SECONDS="0.1",
        PORTSIDE_WEBHOOK_ENDPOINT_CACHE_SECONDS="0",
        PORTSIDE_WEBHOOK_BACKOFF_SECONDS="0.2",
        PORTSIDE_WEBHOOK_MAX_ATTEMPTS="2",
        PORTSIDE_MAINTENANCE_CACHE_SECONDS="0",
    )


@pytest.fixture
def browser(server: ServerProcess) -> Iterator[Browser]:
    """A fresh browser (no cookies)."""
    with Browser(server) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback webhook receiver."""
    started = Receiver().start()
    yield started
    started.stop()


def add_webhook(browser: Browser, namespace: str, url: str, **extra: str) -> httpx.Response:
    """Post the settings page's webhook form (events as the form sends ticked boxes)."""
    browser.get(f"/n/{namespace}/-/settings")
    return browser.post(f"/n/{namespace}/-/webhooks", {"webhook_url": url, **extra})


def api_webhooks(namespace: str, server: ServerProcess) -> list[dict[str, object]]:
    """The namespace's endpoints as the management API lists them (the administrator asks)."""
    response = httpx.get(f"{server.url}/api/v1/webhooks/{namespace}", auth=ADMIN, timeout=30)
    assert response.status_code == 200, response.text
    hooks: list[dict[str, object]] = response.json()
    return hooks


def push(server: ServerProcess, user: str, repository: str, tag: str = "v1") -> None:
    """Push an image as a client would (``push_image`` checks every answer)."""
    with httpx.Client(base_url=server.url, auth=(user, PASSWORD), timeout=30) as client:
        push_image(client, repository, tag, layers=1, layer_size=64)


def start_upload(server: ServerProcess, user: str, repository: str) -> httpx.Response:
    """The first request of a push: starting a blob upload."""
    return httpx.post(f"{server.url}/v2/{repository}/blobs/uploads/", auth=(user, PASSWORD), timeout=30)


def test_webhook_added_in_the_ui_gets_a_push_and_its_delivery_shows_in_the_log(
    server: ServerProcess, browser: Browser, receiver: Receiver
) -> None:
    owner = new_user(server)
    browser.sign_in(owner)
    settings = browser.get(f"/n/{owner}/-/settings")
    assert settings.status_code == 200
    assert 'id="webhooks-heading"' in settings.text and "No webhooks." in settings.text
    assert '<label for="webhook-url">' in settings.text and '<label for="webhook-secret">' in settings.text

    created = add_webhook(browser, owner, receiver.url, events="push")
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    secret = SHOWN_SECRET.search(created.text)
    link = LOG_LINK.search(created.text)
    assert secret is not None and link is not None
    assert len(secret.group(1)) >= 32
    receiver.secret = secret.group(1)
    log_path = link.group(1)
    # The API sees what the page made: the same endpoint, subscribed to pushes only.
    (hook,) = api_webhooks(owner, server)
    assert hook["url"] == receiver.url and hook["events"] == ["push"] and hook["enabled"] is True
    listing = browser.get(f"/n/{owner}/-/settings")
    assert f'href="{log_path}"' in listing.text and receiver.url in listing.text
    assert secret.group(1) not in listing.text  # shown once only

    push(server, owner, f"{owner}/app")
    wait_for(lambda: any(e["action"] == "push" for e in receiver.accepted_events()), what="the push event")
    assert all(r.signature_ok for r in receiver.snapshot())

    def delivered() -> bool:
        return "delivery-delivered" in browser.get(log_path).text

    wait_for(delivered, what="the delivery in the log page")
    log = browser.get(log_path)
    row = log.text.split('class="delivery delivery-delivered"')[1].split("</tr>")[0]
    assert f"{owner}/app" in row and "<code>push</code>" in row
    assert 'class="num delivery-code">200<' in row
    assert re.search(r'class="num">1<', row)  # one attempt
    assert browser.get(log_path + "?limit=0").status_code == 400

    disabled = browser.post(log_path + "/disable")
    assert notice_of(disabled) == f"{log_path}?done=webhook-disabled"
    assert "disabled: no new events are sent" in browser.get(log_path).text
    assert api_webhooks(owner, server)[0]["enabled"] is False
    assert notice_of(browser.post(log_path + "/enable")) == f"{log_path}?done=webhook-enabled"

    # Removing needs the confirmation box; the refusal shows on the page and nothing is removed.
    unconfirmed = browser.post(log_path + "/remove")
    assert unconfirmed.status_code == 400 and 'role="alert"' in unconfirmed.text
    assert "tick the box" in unconfirmed.text
    assert len(api_webhooks(owner, server)) == 1
    removed = browser.post(log_path + "/remove", {"confirm": "true"})
    assert notice_of(removed) == f"/n/{owner}/-/settings?done=webhook-removed"
    assert api_webhooks(owner, server) == []
    assert browser.get(log_path).status_code == 404


def test_a_failing_receivers_error_shows_in_the_log(server: ServerProcess, browser: Browser) -> None:
    failing = Receiver(failing=True).start()
    try:
        owner = new_user(server)
        browser.sign_in(owner)
        created = add_webhook(browser, owner, failing.url, events="push", webhook_secret="s" * 20)
        assert created.status_code == 201
        link = LOG_LINK.search(created.text)
        assert link is not None
        push(server, owner, f"{owner}/app")

        def failed() -> bool:
            return "delivery-failed" in browser.get(link.group(1)).text

        wait_for(failed, what="the failed delivery in the log page")
        row = browser.get(link.group(1)).text.split('class="delivery delivery-failed"')[1].split("</tr>")[0]
        assert 'class="num delivery-code">500<' in row
        assert "HTTP 500: no" in row
        assert re.search(r'class="num">2<', row)  # PORTSIDE_WEBHOOK_MAX_ATTEMPTS
        assert len(failing.snapshot()) == 2
    finally:
        failing.stop()


def test_bad_input_outsiders_and_missing_csrf_are_refused(server: ServerProcess, browser: Browser) -> None:
    owner, outsider = new_user(server), new_user(server)
    browser.sign_in(owner)

    bad_url = add_webhook(browser, owner, "ftp://example.test/<x>")
    assert bad_url.status_code == 400
    assert 'role="alert" id="webhooks-error"' in bad_url.text and "must be an absolute http://" in bad_url.text
    assert 'value="ftp://example.test/&lt;x&gt;"' in bad_url.text  # kept, escaped
    unknown = add_webhook(browser, owner, "http://127.0.0.1:9/hook", events="bogus")
    assert unknown.status_code == 400 and "unknown event type(s) bogus" in unknown.text
    short = add_webhook(browser, owner, "http://127.0.0.1:9/hook", webhook_secret="short")
    assert short.status_code == 400 and "the secret" in short.text and 'value="short"' not in short.text
    no_csrf = browser.post(f"/n/{owner}/-/webhooks", {"webhook_url": "http://127.0.0.1:9/hook"}, csrf=False)
    assert no_csrf.status_code == 403
    assert api_webhooks(owner, server) == []

    created = add_webhook(browser, owner, "http://127.0.0.1:9/hook")
    link = LOG_LINK.search(created.text)
    assert created.status_code == 201 and link is not None
    log_path = link.group(1)
    assert browser.post(log_path + "/disable", csrf=False).status_code == 403

    other = signed_in(server, outsider)
    assert other.get(f"/n/{owner}/-/settings").status_code == 403
    assert other.get(log_path).status_code == 403
    refused = other.post(f"/n/{owner}/-/webhooks", {"webhook_url": "http://127.0.0.1:9/other"})
    assert refused.status_code == 403
    assert other.post(log_path + "/remove", {"confirm": "true"}).status_code == 403
    assert other.post(log_path + "/disable").status_code == 403
    # An endpoint id of another namespace is not found through this one's pages.
    assert other.get(f"/n/{outsider}/-/webhooks/{link.group(2)}").status_code == 404
    (hook,) = api_webhooks(owner, server)
    assert hook["enabled"] is True and hook["url"] == "http://127.0.0.1:9/hook"
    anonymous = Browser(server)
    assert anonymous.get(log_path).status_code == 303  # sent to sign in


def test_read_only_switch_refuses_pushes_and_shows_a_banner_until_switched_off(
    server: ServerProcess, browser: Browser
) -> None:
    user = new_user(server)
    member = signed_in(server, user)
    assert member.get("/admin/maintenance").status_code == 403
    assert member.post("/admin/maintenance", {"read_only": "on"}).status_code == 403
    assert httpx.get(f"{server.url}/api/v1/maintenance", auth=ADMIN).json()["read_only"] is False

    browser.sign_in(*ADMIN)
    page = browser.get("/admin/maintenance")
    assert page.status_code == 200
    assert 'id="read-only-state">writable<' in page.text and BANNER not in page.text
    assert browser.post("/admin/maintenance", {"read_only": "on"}, csrf=False).status_code == 403
    assert browser.post("/admin/maintenance", {"read_only": "maybe"}).status_code == 400
    switched = browser.post("/admin/maintenance", {"read_only": "on"})
    try:
        assert notice_of(switched) == "/admin/maintenance?done=read-only-on"
        assert httpx.get(f"{server.url}/api/v1/maintenance", auth=ADMIN).json()["runtime"] is True
        on = browser.get("/admin/maintenance?done=read-only-on").text
        assert "Read-only mode is on" in on and "<strong>read-only</strong>" in on and BANNER in on
        # Every page carries the banner, for anonymous visitors too.
        assert BANNER in httpx.get(f"{server.url}/").text
        assert BANNER in member.get("/account/tokens").text

        refused = start_upload(server, user, f"{user}/app")
        assert refused.status_code == 405
        assert refused.json()["errors"][0]["code"] == "UNSUPPORTED"
        # The UI's other forms are refused like the management API's writes.
        member.get(f"/n/{user}/-/settings")
        ui_write = member.post(f"/n/{user}/-/webhooks", {"webhook_url": "http://127.0.0.1:9/hook"})
        assert ui_write.status_code == 405 and "read-only mode" in ui_write.text
        assert api_webhooks(user, server) == []
    finally:
        off = browser.post("/admin/maintenance", {"read_only": "off"})
    assert notice_of(off) == "/admin/maintenance?done=read-only-off"
    assert BANNER not in httpx.get(f"{server.url}/").text
    push(server, user, f"{user}/app")
