"""The webhook pages in a real browser: Playwright driving Debian's Chromium.

A user adds a webhook on the namespace settings page (events ticked, the generated secret shown
once), pushes an image, and opens the endpoint's delivery log to find the delivery the loopback
receiver acknowledged; the log page works at phone width with every control labelled.
Screenshots go to ``test-artifacts/screenshots/`` (``webhooks-*.png``).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import BrowserContext, expect

from tests.support.protocol import push_image
from tests.support.server import ServerProcess
from tests.support.web import PASSWORD, new_user, web_server
from tests.support.webhooks import Receiver, wait_for
from tests.ui.conftest import PHONE, fits_the_width, screenshot, sign_in_as, unlabelled_controls

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Basic mode; webhooks polled often and endpoints read on every event."""
    yield from web_server(
        tmp_path_factory,
        "ui-webhooks",
        PORTSIDE_WEBHOOK_POLL_SECONDS="0.1",
        PORTSIDE_WEBHOOK_ENDPOINT_CACHE_SECONDS="0",
    )


@pytest.fixture
def site_url(server: ServerProcess) -> str:
    """The browser opens this module's server."""
    return server.url


def test_a_webhook_made_in_the_browser_shows_its_delivery_in_the_log(
    server: ServerProcess, context: BrowserContext
) -> None:
    receiver = Receiver().start()
    try:
        user = new_user(server)
        page = context.new_page()
        sign_in_as(page, user)
        page.goto(f"/n/{user}")
        page.get_by_role("link", name="Namespace settings").click()
        expect(page.get_by_role("heading", name="Webhooks")).to_be_visible()
        page.get_by_label("Endpoint URL").fill(receiver.url)
        page.get_by_label("every event").uncheck()
        page.get_by_label("push", exact=True).check()
        assert unlabelled_controls(page) == []
        screenshot(page, "webhooks-settings")
        page.get_by_role("button", name="Add webhook").click()

        expect(page.get_by_role("heading", name="Webhook added")).to_be_visible()
        expect(page.locator("#webhook-events-value")).to_have_text("push")
        receiver.secret = page.locator("#webhook-secret-value").inner_text().strip()
        assert len(receiver.secret) >= 32
        screenshot(page, "webhooks-created")

        with httpx.Client(base_url=server.url, auth=(user, PASSWORD), timeout=30) as client:
            push_image(client, f"{user}/app", "v1", layers=1, layer_size=64)
        wait_for(lambda: any(e["action"] == "push" for e in receiver.accepted_events()), what="the push event")
        assert all(r.signature_ok for r in receiver.snapshot())

        page.get_by_role("link", name="Delivery log").click()
        expect(page.get_by_role("heading", name="Delivery log")).to_be_visible()
        # The receiver answered before the outcome was written: reload until the log has it.
        delivered = page.locator("#deliveries tr.delivery-delivered")

        def shown() -> bool:
            page.reload()
            return delivered.count() == 1

        wait_for(shown, what="the delivery on the log page")
        expect(delivered).to_contain_text(f"{user}/app")
        expect(delivered.locator(".delivery-code")).to_have_text("200")
        screenshot(page, "webhooks-delivery-log")

        page.set_viewport_size(PHONE)
        page.reload()
        assert fits_the_width(page)
        assert unlabelled_controls(page) == []
        screenshot(page, "webhooks-delivery-log-phone")
    finally:
        receiver.stop()
