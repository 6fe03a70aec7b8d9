"""The signed-in management pages in a real browser: Playwright driving Debian's Chromium.

A user creates a personal access token and uses it with skopeo and on ``/v2/``, then revokes
it and sees it refused; edits a repository's description and README and sees them on the
repository page and in search; makes the repository private and an anonymous browser gets
404; creates an organization, a team and a robot. An administrator sees users and storage
use; anyone else is refused (403). A form whose CSRF token was tampered with is refused.
Screenshots go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.support.clients import ClientError, ClientSandbox
from tests.support.protocol import push_image
from tests.support.server import ServerProcess
from tests.support.web import ADMIN, PASSWORD, new_user, unique, web_server
from tests.ui.conftest import PHONE, fits_the_width, screenshot, sign_in_as, unlabelled_controls

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server in Basic mode with a first administrator, shared by this module's tests."""
    yield from web_server(tmp_path_factory, "ui-manage")


@pytest.fixture
def site_url(server: ServerProcess) -> str:
    """The browser opens this module's server."""
    return server.url


def test_a_token_made_in_the_browser_works_with_skopeo_until_revoked(
    server: ServerProcess, context: BrowserContext, tmp_path: Path
) -> None:
    user = new_user(server)
    repository = f"{user}/tools"
    with httpx.Client(base_url=server.url, auth=(user, PASSWORD), timeout=30) as client:
        push_image(client, repository, layers=1, layer_size=256)
    page = context.new_page()
    sign_in_as(page, user)
    page.get_by_role("link", name="Account").click()
    expect(page.get_by_role("heading", name="Personal access tokens")).to_be_visible()

    page.get_by_label("Name").fill("skopeo on laptop")
    page.get_by_label("Most it may do").select_option("pull")
    page.get_by_label("Expires after").fill("30")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("heading", name="Token “skopeo on laptop” created")).to_be_visible()
    secret = page.locator("#token-secret").inner_text().strip()
    assert secret.startswith("pst_")
    expect(page.locator("#token-role")).to_have_text("pull")
    expect(page.locator("#token-expiry")).to_contain_text("UTC")
    screenshot(page, "token-created")

    # The token is a password: on /v2/ and with skopeo.
    assert httpx.get(f"{server.url}/v2/", auth=(user, secret), timeout=30).status_code == 200
    with ClientSandbox.create(tmp_path / "skopeo", server.host, credentials=(user, secret)) as sandbox:
        assert json.loads(sandbox.skopeo_inspect_raw(sandbox.docker_ref(repository, "latest")))["layers"]

    page.get_by_role("link", name="Done").click()
    expect(page.get_by_role("row", name="skopeo on laptop")).to_be_visible()
    assert secret not in page.content()
    assert unlabelled_controls(page) == []
    screenshot(page, "tokens")
    page.get_by_role("button", name="Revoke token skopeo on laptop").click()
    expect(page.get_by_role("status")).to_contain_text("The token was revoked")
    expect(page.get_by_role("row", name="skopeo on laptop")).to_have_count(0)

    assert httpx.get(f"{server.url}/v2/", auth=(user, secret), timeout=30).status_code == 401
    after = ClientSandbox.create(tmp_path / "skopeo-after", server.host, credentials=(user, secret))
    with after, pytest.raises(ClientError):
        after.skopeo_inspect_raw(after.docker_ref(repository, "latest"))


def test_a_tampered_csrf_token_is_refused_and_nothing_changes(server: ServerProcess, context: BrowserContext) -> None:
    page = context.new_page()
    sign_in_as(page, new_user(server))
    page.goto(f"{server.url}/account/tokens")
    page.get_by_label("Name").fill("forged")
    page.locator("form[action='/account/tokens'] input[name='csrf_token']").evaluate("input => input.value = 'forged'")
    with page.expect_response(lambda response: response.request.method == "POST") as answer:
        page.get_by_role("button", name="Create token").click()
    assert answer.value.status == 403
    expect(page.get_by_role("heading", name="Form refused")).to_be_visible()
    page.goto(f"{server.url}/account/tokens")
    expect(page.get_by_role("row", name="forged")).to_have_count(0)
    expect(page.get_by_text("You have no tokens yet.")).to_be_visible()


def test_repository_settings_show_on_the_page_in_search_and_hide_private_repositories(
    server: ServerProcess, context: BrowserContext, browser: Browser
) -> None:
    user = new_user(server)
    word = unique("parcel")
    repository = f"{user}/shipping"
    with httpx.Client(base_url=server.url, auth=(user, PASSWORD), timeout=30) as client:
        push_image(client, repository, layers=1, layer_size=256)
    page = context.new_page()
    sign_in_as(page, user)
    page.goto(f"{server.url}/r/{repository}")
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name=f"Settings of {repository}")).to_be_visible()

    page.get_by_label("A short description").fill(f"Tracks {word} <script>alert(1)</script>")
    page.get_by_role("button", name="Save description").click()
    expect(page.get_by_role("status")).to_contain_text("The description was saved")
    page.get_by_label("README in Markdown").fill(
        f"# Shipping guide\n\nHow **{word}s** move.\n\n<script>alert(2)</script>"
    )
    page.get_by_role("button", name="Save README").click()
    expect(page.get_by_role("status")).to_contain_text("The README was saved")
    page.get_by_label("Public: anyone").check()
    page.get_by_role("button", name="Save visibility").click()
    expect(page.get_by_role("status")).to_contain_text("The visibility was saved")
    assert unlabelled_controls(page) == []
    screenshot(page, "repository-settings")

    page.goto(f"{server.url}/r/{repository}")
    expect(page.get_by_text(f"Tracks {word} <script>alert(1)</script>")).to_be_visible()
    expect(page.locator(".readme-body h1")).to_have_text("Shipping guide")
    expect(page.locator(".readme-body strong")).to_have_text(f"{word}s")
    assert page.locator(".readme-body script").count() == 0
    page.goto(f"{server.url}/search?q={word}")
    expect(page.get_by_role("link", name=repository)).to_be_visible()

    anonymous = browser.new_context(base_url=server.url)
    try:
        stranger = anonymous.new_page()
        shown = stranger.goto(f"{server.url}/r/{repository}")
        assert shown is not None and shown.status == 200
        page.goto(f"{server.url}/r/{repository}/-/settings")
        page.get_by_label("Private: only").check()
        page.get_by_role("button", name="Save visibility").click()
        expect(page.get_by_role("status")).to_contain_text("The visibility was saved")
        hidden = stranger.goto(f"{server.url}/r/{repository}")
        assert hidden is not None and hidden.status == 404
        stranger.goto(f"{server.url}/search?q={word}")
        expect(stranger.get_by_role("link", name=repository)).to_have_count(0)
    finally:
        anonymous.close()

    page.get_by_label("Named").fill("no such user!")
    page.get_by_role("button", name="Grant").click()
    expect(page.locator("#permissions-error")).to_be_visible()
    expect(page.get_by_label("Named")).to_have_value("no such user!")


def test_an_organization_a_team_and_a_robot_made_in_the_browser(server: ServerProcess, context: BrowserContext) -> None:
    user, colleague = new_user(server), new_user(server)
    organization = unique("org")
    page = context.new_page()
    page.set_viewport_size(PHONE)
    sign_in_as(page, user)
    page.goto(f"{server.url}/organizations")
    # Keyboard only: type the name and press Enter.
    page.get_by_label("Name").focus()
    page.keyboard.type(organization)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=f"Organization {organization}")).to_be_visible()

    page.get_by_label("Add a member (username)").fill(colleague)
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_role("row", name=colleague)).to_be_visible()
    page.get_by_label("New team name").fill("builders")
    page.get_by_role("button", name="Create team").click()
    expect(page.get_by_role("heading", name="Team builders")).to_be_visible()
    page.get_by_label("Add a user").fill(colleague)
    page.get_by_role("button", name="Add to team").click()
    expect(page.get_by_role("listitem").filter(has_text=colleague)).to_be_visible()
    page.get_by_role("link", name=organization).click()
    assert fits_the_width(page)
    assert unlabelled_controls(page) == []
    screenshot(page, "organization-phone")

    page.get_by_role("link", name="Manage robots").click()
    page.get_by_label("Name").fill("deployer")
    page.get_by_label("Description").fill("pulls for production")
    page.get_by_role("button", name="Create robot").click()
    expect(page.get_by_role("heading", name=f"Robot {organization}+deployer")).to_be_visible()
    page.get_by_label("Name").fill("prod")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#token-secret").inner_text().strip()
    expect(page.get_by_text(f"{organization}+deployer").first).to_be_visible()
    assert fits_the_width(page)
    screenshot(page, "robot-token-phone")
    robot_login = (f"{organization}+deployer", secret)
    assert httpx.get(f"{server.url}/v2/", auth=robot_login, timeout=30).status_code == 200


def test_the_admin_area_lists_users_and_storage_and_refuses_other_users(
    server: ServerProcess, context: BrowserContext, browser: Browser
) -> None:
    owner = new_user(server)
    with httpx.Client(base_url=server.url, auth=(owner, PASSWORD), timeout=30) as client:
        push_image(client, f"{owner}/stored", layers=2, layer_size=4096)
    page = context.new_page()
    sign_in_as(page, ADMIN[0], ADMIN[1])
    page.get_by_role("link", name="Admin").click()
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    expect(page.get_by_role("rowheader", name=owner)).to_be_visible()
    assert unlabelled_controls(page) == []
    screenshot(page, "admin-users")
    page.get_by_role("link", name="Storage use").click()
    row = page.locator("#repository-usage tr").filter(has_text=f"{owner}/stored")
    expect(row).to_contain_text("3")
    expect(page.locator("#namespace-usage").get_by_role("rowheader", name=owner)).to_be_visible()
    screenshot(page, "admin-storage")
    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Target").fill(f"{owner}/stored")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit-events")).to_contain_text("push")
    assert unlabelled_controls(page) == []
    screenshot(page, "admin-audit")

    other = browser.new_context(base_url=server.url)
    try:
        plain = other.new_page()
        sign_in_as(plain, new_user(server))
        expect(plain.get_by_role("link", name="Admin")).to_have_count(0)
        for path in ("/admin/users", "/admin/storage"):
            refused = plain.goto(f"{server.url}{path}")
            assert refused is not None and refused.status == 403
        expect(plain.get_by_role("alert")).to_contain_text("only site administrators")
    finally:
        other.close()
