"""The lifecycle pages in a real browser: Playwright driving Debian's Chromium.

A user moves a tag, opens its history from the tag page and restores the earlier digest with
the button, and the registry then serves the old manifest; adds an immutable rule in the
repository settings, after which a push moving the tag is refused naming the rule; an
administrator starts a garbage collection dry run from the admin area and reads its report.
Screenshots go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.support.protocol import OCI_MANIFEST, push_image
from tests.support.server import ServerProcess
from tests.support.web import ADMIN, PASSWORD, new_user, web_server
from tests.ui.conftest import PHONE, fits_the_width, screenshot, sign_in_as, unlabelled_controls

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Basic mode with a first administrator; no GC grace period, so a dry run has something to report."""
    yield from web_server(
        tmp_path_factory, "ui-lifecycle", PORTSIDE_GC_GRACE_SECONDS="1", PORTSIDE_GC_INTERVAL_SECONDS="0"
    )


@pytest.fixture
def site_url(server: ServerProcess) -> str:
    """The browser opens this module's server."""
    return server.url


def test_restore_from_history_protect_with_a_rule_and_a_gc_dry_run(
    server: ServerProcess, browser: Browser, context: BrowserContext
) -> None:
    user = new_user(server)
    repository = f"{user}/service"
    with httpx.Client(base_url=server.url, auth=(user, PASSWORD), timeout=30) as client:
        old = push_image(client, repository, "v1", layers=1, layer_size=256)
        new = push_image(client, repository, "v1", layers=1, layer_size=256)
        # Never tagged: garbage once the grace period (none here) has passed.
        orphan = push_image(client, repository, None, layers=1, layer_size=256)

    # 1. The tag was moved; its history page (from the tag page) restores the old digest.
    page = context.new_page()
    sign_in_as(page, user)
    page.goto(f"/r/{repository}/-/tag/v1")
    page.get_by_role("link", name="History of this tag").click()
    expect(page.get_by_role("heading", name=f"History of {repository}:v1")).to_be_visible()
    history = page.locator("#history")
    expect(history).to_contain_text("moved")
    expect(history).to_contain_text("created")
    expect(history).to_contain_text(user)
    screenshot(page, "lifecycle-tag-history")
    page.get_by_role("button", name=f"Restore v1 to {old.digest[:19]}").click()
    expect(page.get_by_role("status")).to_contain_text("The tag was restored")
    expect(history.locator("tr").nth(1)).to_contain_text("restored")
    screenshot(page, "lifecycle-tag-restored")
    pulled = httpx.get(
        f"{server.url}/v2/{repository}/manifests/v1", auth=(user, PASSWORD), headers={"accept": OCI_MANIFEST}
    )
    assert pulled.status_code == 200
    assert pulled.headers["docker-content-digest"] == old.digest != new.digest
    assert pulled.content == old.manifest

    # The history page works at phone width, every control labelled.
    page.set_viewport_size(PHONE)
    page.reload()
    assert fits_the_width(page)
    assert unlabelled_controls(page) == []
    screenshot(page, "lifecycle-tag-history-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    # 2. An immutable rule added in the settings; then a push moving the tag is refused.
    page.goto(f"/r/{repository}")
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Protect tags matching").fill("v*")
    page.get_by_role("button", name="Add rule").click()
    expect(page.get_by_role("status")).to_contain_text("immutable tag rule was added")
    expect(page.locator("#rules")).to_contain_text("v*")
    assert unlabelled_controls(page) == []
    screenshot(page, "lifecycle-settings-rules")
    with (
        httpx.Client(base_url=server.url, auth=(user, PASSWORD), timeout=30) as client,
        pytest.raises(AssertionError, match=r"DENIED.*v\*"),
    ):
        push_image(client, repository, "v1", layers=1, layer_size=256)
    current = httpx.head(
        f"{server.url}/v2/{repository}/manifests/v1", auth=(user, PASSWORD), headers={"accept": OCI_MANIFEST}
    )
    assert current.headers["docker-content-digest"] == old.digest

    # 3. A GC dry run from the admin area: its report lists the untagged manifest, which stays.
    time.sleep(1.1)  # past the one-second grace period, so the orphan counts as garbage
    admin_context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    admin_page = admin_context.new_page()
    sign_in_as(admin_page, ADMIN[0], ADMIN[1])
    admin_page.get_by_role("link", name="Admin").click()
    admin_page.get_by_role("link", name="Garbage collection").click()
    expect(admin_page.get_by_label("Dry run: only report what would be removed")).to_be_checked()
    admin_page.get_by_role("button", name="Start garbage collection").click()
    expect(admin_page.get_by_role("status").first).to_contain_text("Garbage collection started")
    # The run page reloads itself every two seconds while the run is under way.
    expect(admin_page.locator("#gc-status")).to_have_text("done (dry run)", timeout=120_000)
    report = admin_page.locator("#gc-report")
    expect(report).to_contain_text(orphan.digest)
    expect(report).not_to_contain_text(old.digest)
    expect(report).not_to_contain_text(new.digest)  # kept by the tag's history
    screenshot(admin_page, "lifecycle-gc-dry-run")
    still_there = httpx.head(f"{server.url}/v2/{repository}/manifests/{orphan.digest}", auth=(user, PASSWORD))
    assert still_there.status_code == 200
    admin_context.close()
