"""The web UI in a real browser (Debian's chromium through Playwright) against a real server."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.ui.conftest import (
    ALICE,
    ALICE_PASSWORD,
    BOB,
    BOB_PASSWORD,
    Site,
    screenshot,
    sign_in,
)


def test_home_lists_public_repositories_to_anonymous_visitors(page: Page, site: Site) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="Explore")).to_be_visible()
    recent = page.locator("section", has=page.get_by_role("heading", name="Recently pushed"))
    expect(recent.get_by_role("link", name="alice/webapp")).to_be_visible()
    expect(recent.get_by_role("link", name="bob/tool")).to_be_visible()
    # Written for alice/webapp; bob/tool's card shows what its image says of itself.
    cards = recent.locator("li.card")
    expect(cards.filter(has_text="alice/webapp")).to_contain_text("The web app of the browser tests")
    expect(cards.filter(has_text="bob/tool")).to_contain_text("A command-line tool")
    expect(page.get_by_text("alice/secret")).to_have_count(0)
    screenshot(page, "explore")


def test_wrong_password_shows_an_error_and_the_right_one_signs_in(page: Page, site: Site) -> None:
    sign_in(page, ALICE, "not-her-password")
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    expect(page.get_by_label("Username")).to_have_value(ALICE)
    screenshot(page, "sign-in-error")
    page.get_by_label("Password").fill(ALICE_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name=ALICE)).to_be_visible()


def test_sign_in_returns_to_the_page_that_asked(page: Page, site: Site) -> None:
    page.goto("/r/bob/tool")
    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("Username").fill(BOB)
    page.get_by_label("Password").fill(BOB_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/r/bob/tool$"))


def test_search_finds_by_words_and_narrows_by_filters(page: Page, site: Site) -> None:
    page.goto("/")
    page.get_by_role("search").get_by_label("Search repositories").fill("webapp")
    page.get_by_role("search").get_by_role("button", name="Search").click()
    results = page.locator("#results")
    expect(results.get_by_role("link", name="alice/webapp")).to_be_visible()
    expect(results.get_by_role("link", name="bob/tool")).to_have_count(0)
    # Filters: a label, then a platform only the index has.
    page.get_by_label("Words").fill("")
    page.get_by_label("Label (key or key=value)").fill("maintainer=bob")
    page.get_by_role("main").get_by_role("button", name="Search").click()
    expect(results.get_by_role("link", name="bob/tool")).to_be_visible()
    expect(results.get_by_role("link", name="alice/webapp")).to_have_count(0)
    page.get_by_label("Label (key or key=value)").fill("")
    page.get_by_label("OS", exact=True).select_option("linux")
    page.get_by_label("Architecture", exact=True).select_option("arm64")
    page.get_by_role("main").get_by_role("button", name="Search").click()
    expect(results.get_by_role("link", name="alice/webapp")).to_be_visible()
    expect(results.get_by_role("link", name="bob/tool")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"os=linux&arch=arm64"))
    screenshot(page, "search")


def test_a_bad_filter_is_explained(page: Page, site: Site) -> None:
    page.goto("/search?arch=arm64")
    expect(page.get_by_role("alert")).to_contain_text("choose an operating system")


def test_repository_page_shows_readme_tags_and_escapes_user_content(page: Page, site: Site) -> None:
    page.goto("/r/alice/webapp")
    expect(page.get_by_role("heading", name="alice/webapp", level=1)).to_be_visible()
    expect(page.get_by_text("The web app of the browser tests")).to_be_visible()
    tags = page.locator("#tags")
    latest = tags.locator("tr", has=page.get_by_role("link", name="latest", exact=True))
    expect(latest).to_contain_text(site.latest.digest[:19])
    expect(latest).to_contain_text("linux/amd64")
    expect(latest.locator("td.num")).to_have_text(re.compile(r"\d+(\.\d)? KB"))
    multi = tags.locator("tr", has=page.get_by_role("link", name="multi", exact=True))
    expect(multi).to_contain_text("linux/amd64, linux/arm64")
    readme = page.locator(".readme-body")
    expect(readme.locator("h1")).to_have_text("Web app")
    expect(readme.locator("em")).to_have_text("small")
    # The README's script never runs or appears as an element.
    expect(readme.locator("script")).to_have_count(0)
    screenshot(page, "repository")


def test_copy_button_puts_the_exact_pull_command_on_the_clipboard(context: BrowserContext, site: Site) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    page = context.new_page()
    page.goto("/r/alice/webapp")
    command = f"docker pull {site.host}/alice/webapp:latest"
    expect(page.locator("#pull-command")).to_have_text(command)
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == command


def test_without_javascript_the_pull_command_is_plain_selectable_text(browser: Browser, site: Site) -> None:
    context = browser.new_context(base_url=site.url, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/r/alice/webapp")
        expect(page.locator("#pull-command")).to_have_text(f"docker pull {site.host}/alice/webapp:latest")
        # The copy button needs the script, so without it the button stays hidden.
        expect(page.get_by_role("button", name="Copy")).to_be_hidden()
        expect(page.locator("#tags")).to_contain_text("multi")
    finally:
        context.close()


def test_tag_page_shows_layers_config_and_referrers(page: Page, site: Site) -> None:
    page.goto("/r/alice/webapp")
    page.locator("#tags").get_by_role("link", name="latest", exact=True).click()
    expect(page.get_by_role("heading", name="alice/webapp:latest")).to_be_visible()
    expect(page.locator("#layers tbody tr")).to_have_count(2)
    expect(page.locator("#layers")).to_contain_text("2.0 KB")
    config = page.locator("#config")
    expect(config).to_contain_text("/bin/webapp")
    expect(page.locator("#env")).to_contain_text("GREETING=<hi>")
    expect(page.locator("#labels")).to_contain_text("Webapp <b>bold</b>")
    expect(page.locator("#labels b")).to_have_count(0)
    expect(page.locator("#history")).to_contain_text("ADD rootfs.tar /")
    expect(page.locator("#annotations")).to_contain_text("A small web server")
    referrers = page.locator("#referrers")
    expect(referrers).to_contain_text("SBOM")
    expect(referrers).to_contain_text("application/spdx+json")
    expect(page.locator("#manifest-json")).to_contain_text('"schemaVersion": 2')
    screenshot(page, "tag")
    # The referrer's own page says what it refers to.
    referrers.get_by_role("link", name=site.sbom.digest[:19]).click()
    expect(page.get_by_text("Refers to")).to_be_visible()
    expect(page.locator("#facts")).to_contain_text(site.latest.digest)


def test_index_lists_its_platforms_with_links_to_each(page: Page, site: Site) -> None:
    page.goto("/r/alice/webapp/-/tag/multi")
    platforms = page.locator("#platforms")
    expect(platforms.locator("tbody tr")).to_have_count(2)
    screenshot(page, "index")
    platforms.get_by_role("link", name="linux/arm64").click()
    expect(page).to_have_url(re.compile(r"/r/alice/webapp/-/manifest/sha256:[0-9a-f]{64}$"))
    expect(page.locator("#facts")).to_contain_text("linux/arm64")
    expect(page.locator("#layers tbody tr")).to_have_count(2)


def test_namespace_page_lists_what_the_viewer_may_pull(page: Page, site: Site) -> None:
    page.goto("/n/alice")
    expect(page.get_by_role("heading", name="alice", level=1)).to_be_visible()
    expect(page.get_by_role("link", name="alice/webapp")).to_be_visible()
    expect(page.get_by_role("link", name="alice/secret")).to_have_count(0)
    screenshot(page, "namespace")
    sign_in(page, ALICE, ALICE_PASSWORD)
    page.goto("/n/alice")
    expect(page.get_by_role("link", name="alice/secret")).to_be_visible()


def test_private_repository_is_not_found_for_other_users(page: Page, site: Site) -> None:
    sign_in(page, BOB, BOB_PASSWORD)
    response = page.goto("/r/alice/secret")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    missing = page.goto("/r/alice/does-not-exist")
    assert missing is not None and missing.status == 404
    # The same page, word for word, apart from the name: nothing tells the two apart.
    page.goto("/search?q=secret")
    expect(page.locator("#results")).not_to_contain_text("alice/secret")


def test_sign_out_ends_the_session_even_for_a_copied_cookie(browser: Browser, page: Page, site: Site) -> None:
    sign_in(page, ALICE, ALICE_PASSWORD)
    page.goto("/r/alice/secret")
    expect(page.get_by_role("heading", name="alice/secret", level=1)).to_be_visible()
    cookies = page.context.cookies()
    session = next(cookie for cookie in cookies if cookie["name"] == "portside_session")
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    # Replaying the old cookie in another profile opens nothing: the session row is gone.
    other = browser.new_context(base_url=site.url)
    try:
        other.add_cookies([session])
        replay = other.new_page()
        response = replay.goto("/r/alice/secret")
        assert response is not None and response.status == 404
        expect(replay.get_by_role("link", name="Sign in")).to_be_visible()
    finally:
        other.close()


def test_sign_up_in_public_mode_creates_an_account_and_signs_it_in(page: Page, site: Site) -> None:
    page.goto("/")
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Username").fill("carol")
    page.get_by_label("Password", exact=True).fill("carol-password-1")
    page.get_by_label("Password again").fill("carol-password-2")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_have_text("The two passwords differ.")
    screenshot(page, "sign-up-error")
    page.get_by_label("Password", exact=True).fill("carol-password-1")
    page.get_by_label("Password again").fill("carol-password-1")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="carol")).to_be_visible()
    # The name is taken now.
    page.get_by_role("button", name="Sign out").click()
    page.goto("/sign-up")
    page.get_by_label("Username").fill("carol")
    page.get_by_label("Password", exact=True).fill("another-password")
    page.get_by_label("Password again").fill("another-password")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_contain_text("is taken")


def test_a_form_with_a_wrong_or_missing_csrf_token_is_refused(page: Page, site: Site) -> None:
    page.goto("/sign-in")
    page.locator("input[name=csrf_token]").evaluate("input => { input.value = 'forged' }")
    page.get_by_label("Username").fill(ALICE)
    page.get_by_label("Password").fill(ALICE_PASSWORD)
    with page.expect_response(re.compile(r"/sign-in$")) as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 403
    expect(page.get_by_role("heading", name="Form refused")).to_be_visible()
    # Signed in, a sign-out form without its token is refused and the session survives.
    sign_in(page, ALICE, ALICE_PASSWORD)
    page.locator("form[action='/sign-out'] input[name=csrf_token]").evaluate("input => input.remove()")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Form refused")).to_be_visible()
    page.goto("/")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_keyboard_reaches_the_skip_link_and_search_first(page: Page, site: Site) -> None:
    page.goto("/")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Search repositories")).to_be_focused()
    page.keyboard.type("tool")
    page.keyboard.press("Enter")
    expect(page.locator("#results").get_by_role("link", name="bob/tool")).to_be_visible()


def test_pages_fit_a_phone_screen(browser: Browser, site: Site) -> None:
    phone = browser.new_context(
        base_url=site.url, viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    try:
        page = phone.new_page()
        for path, name in (("/r/alice/webapp", "phone-repository"), ("/r/alice/webapp/-/tag/latest", "phone-tag")):
            page.goto(path)
            # Nothing wider than the screen: no sideways scrolling of the whole page.
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{path} is {width} px wide"
            screenshot(page, name)
    finally:
        phone.close()


def test_a_signed_in_user_stars_and_unstars_a_repository(page: Page, site: Site) -> None:
    page.goto("/r/bob/tool")
    expect(page.get_by_role("button", name="Star")).to_have_count(0)
    sign_in(page, BOB, BOB_PASSWORD)
    page.goto("/r/bob/tool")
    page.get_by_role("button", name="☆ Star").click()
    expect(page.get_by_role("button", name="★ Starred")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("p.meta").first).to_contain_text("★ 1 ·")
    page.get_by_role("button", name="★ Starred").click()
    expect(page.get_by_role("button", name="☆ Star")).to_be_visible()
    expect(page.locator("p.meta").first).to_contain_text("★ 0 ·")
