"""A real Portside server with seeded images, and Debian's chromium driven by Playwright.

``playwright install`` cannot download here and is never needed: the browser is the
``chromium`` Debian package (``make system-deps`` installs it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.support.accounts import auth_env
from tests.support.server import ServerProcess
from tests.support.web import PASSWORD
from tests.ui.seed import Pushed, image_config, push_configured_image, push_index, push_sbom

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

ADMIN, ADMIN_PASSWORD = "admin", "admin-password-1"
ALICE, ALICE_PASSWORD = "alice", "alice-password-1"
BOB, BOB_PASSWORD = "bob", "bob-password-1"
PHONE = {"width": 390, "height": 844}

README = """# Web app

A *small* web server for the browser tests.

<script>alert("readme")</script>

```
docker run webapp
```
"""


@dataclass(frozen=True)
class Site:
    """The seeded server and what was pushed to it."""

    url: str
    host: str
    latest: Pushed
    multi: Pushed
    sbom: Pushed


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A server with basic auth, public sign-up, two users and a few repositories.

    * ``alice/webapp`` (public): ``latest`` with labels, env, entrypoint, annotations, an SBOM
      attached, a README; ``multi``, an index for linux/amd64 and linux/arm64.
    * ``alice/secret`` (private), ``bob/tool`` (public, label ``maintainer=bob``; no
      description written, its image's ``org.opencontainers.image.description`` label says one).
    """
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: `make system-deps` installs Debian's chromium package")
    env = auth_env(
        "basic", admin_username=ADMIN, admin_password=ADMIN_PASSWORD, public_signup="true", default_visibility="private"
    )
    server = ServerProcess(tmp_path_factory.mktemp("ui") / "data", workers=1, env=env).start()
    try:
        with httpx.Client(base_url=server.url, auth=(ADMIN, ADMIN_PASSWORD), timeout=60) as admin:
            for username, password in ((ALICE, ALICE_PASSWORD), (BOB, BOB_PASSWORD)):
                response = admin.post("/api/v1/users", json={"username": username, "password": password})
                assert response.status_code == 201, response.text
            labels = {
                "org.opencontainers.image.title": "Webapp <b>bold</b>",
                "org.opencontainers.image.licenses": "Apache-2.0",
                "maintainer": "alice",
            }
            config = image_config(labels=labels, env=["MODE=production", "GREETING=<hi>"], entrypoint=["/bin/webapp"])
            annotations = {"org.opencontainers.image.description": "A small web server"}
            latest = push_configured_image(admin, "alice/webapp", "latest", config, annotations=annotations)
            sbom = push_sbom(admin, "alice/webapp", latest)
            multi = push_index(admin, "alice/webapp", "multi", [("linux", "amd64"), ("linux", "arm64")])
            push_configured_image(admin, "alice/secret", "v1", image_config(labels={"maintainer": "alice"}))
            bob_labels = {"maintainer": "bob", "org.opencontainers.image.description": "A command-line tool"}
            push_configured_image(admin, "bob/tool", "1.0", image_config(labels=bob_labels))
            for name in ("alice/webapp", "bob/tool"):
                response = admin.patch(f"/api/v1/repositories/{name}", json={"visibility": "public"})
                assert response.status_code == 200, response.text
            response = admin.patch(
                "/api/v1/repository-metadata/alice/webapp",
                json={"description": "The web app of the browser tests", "readme": README},
            )
            assert response.status_code == 200, response.text
        yield Site(server.url, server.host, latest, multi, sbom)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    """Playwright's driver for the session."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    """Debian's chromium, headless."""
    chromium = playwright_driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture
def site_url(site: Site) -> str:
    """The server the browser opens; a module with a server of its own overrides this fixture."""
    return site.url


@pytest.fixture
def context(browser: Browser, site_url: str) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) for one test."""
    fresh = browser.new_context(base_url=site_url, viewport={"width": 1280, "height": 900})
    fresh.set_default_timeout(15_000)
    yield fresh
    fresh.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A tab in the fresh profile."""
    return context.new_page()


@pytest.fixture(scope="session", autouse=True)
def screenshot_dir() -> Path:
    """Where the main pages' screenshots go (a test artifact, not committed); each run overwrites its own."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot of what the browser shows now."""
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Page, username: str, password: str = PASSWORD) -> None:
    """Sign in through the form, as a person would (the answer may be a refusal)."""
    page.goto("/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def sign_in_as(page: Page, username: str, password: str = PASSWORD) -> None:
    """Sign in through the form and see that it worked (the Sign out button shows)."""
    sign_in(page, username, password)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def unlabelled_controls(page: Page) -> list[str]:
    """Form controls a screen reader could not name (no label, no aria-label)."""
    script = """() => [...document.querySelectorAll('input, select, textarea')]
        .filter(control => control.type !== 'hidden')
        .filter(control => control.labels.length === 0 && !control.getAttribute('aria-label'))
        .map(control => control.outerHTML)"""
    return list(page.evaluate(script))


def fits_the_width(page: Page) -> bool:
    """True if the page needs no sideways scrolling."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))
