"""The web UI's signed-in management pages, as a browser without scripts sees them (plain form posts).

One server per database (SQLite, PostgreSQL) in Basic mode with a first administrator; each
test makes its own users with unique names through the management API. The browser tests in
``tests/ui/`` drive the same pages in Chromium; these check every form's answers (redirects,
statuses, messages) quickly.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.support.described import push_described_image
from tests.support.protocol import push_image
from tests.support.server import ServerProcess
from tests.support.web import ADMIN, PASSWORD, Browser, new_user, notice_of, signed_in, unique, web_server

pytestmark = pytest.mark.integration

SECRET = re.compile(r'id="token-secret"[^>]*>(pst_[A-Za-z0-9_\-]+)<')


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server per database in Basic mode: the storage report and the account stores run SQL."""
    yield from web_server(tmp_path_factory, "web-manage", request)


@pytest.fixture
def browser(server: ServerProcess) -> Iterator[Browser]:
    """A fresh browser (no cookies)."""
    with Browser(server) as client:
        yield client


def test_anonymous_browser_is_sent_to_sign_in_and_back(browser: Browser) -> None:
    response = browser.get("/account/tokens")
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=%2Faccount%2Ftokens"


def test_a_post_after_the_session_ended_goes_to_sign_in_and_back_to_the_form(browser: Browser) -> None:
    page = f"{browser.http.base_url}/organizations"
    response = browser.http.post("/organizations", data={"name": "x"}, headers={"referer": page})
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=%2Forganizations"
    elsewhere = browser.http.post("/organizations", data={"name": "x"}, headers={"referer": "http://evil.example/x"})
    assert elsewhere.headers["location"] == "/sign-in?next=%2F"


def test_token_created_works_on_v2_once_shown_and_stops_when_revoked(server: ServerProcess, browser: Browser) -> None:
    user = new_user(server)
    browser.sign_in(user)
    created = browser.post("/account/tokens", {"name": "laptop <ci>", "max_role": "push", "expires_in_days": "30"})
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    secret = SECRET.search(created.text)
    assert secret is not None
    assert "laptop &lt;ci&gt;" in created.text and "<ci>" not in created.text
    assert 'id="token-role">push<' in created.text
    assert re.search(r'id="token-expiry">\d{4}-\d\d-\d\d', created.text)
    assert httpx.get(f"{server.url}/v2/", auth=(user, secret.group(1))).status_code == 200

    listing = browser.get("/account/tokens")
    assert "laptop &lt;ci&gt;" in listing.text
    assert secret.group(1) not in listing.text  # shown once, never again
    token_id = re.search(r'action="/account/tokens/(\d+)/revoke"', listing.text)
    assert token_id is not None
    revoked = browser.post(f"/account/tokens/{token_id.group(1)}/revoke")
    assert notice_of(revoked) == "/account/tokens?done=token-revoked"
    assert "The token was revoked" in browser.get("/account/tokens?done=token-revoked").text
    assert httpx.get(f"{server.url}/v2/", auth=(user, secret.group(1))).status_code == 401


def test_bad_token_input_is_refused_with_the_form_kept(server: ServerProcess, browser: Browser) -> None:
    browser.sign_in(new_user(server))
    refused = browser.post("/account/tokens", {"name": "kept-name", "max_role": "pull", "expires_in_days": "0"})
    assert refused.status_code == 400
    assert "expires_in_days must be 1 to 3650" in refused.text
    assert 'value="kept-name"' in refused.text
    unknown_role = browser.post("/account/tokens", {"name": "x", "max_role": "owner"})
    assert unknown_role.status_code == 400
    assert "choose a role" in unknown_role.text
    assert "kept-name" not in browser.get("/account/tokens").text.split("Your tokens")[1]


def test_a_form_without_the_csrf_token_is_refused_and_changes_nothing(server: ServerProcess, browser: Browser) -> None:
    browser.sign_in(new_user(server))
    forged = browser.post("/account/tokens", {"name": "forged", "max_role": "admin"}, csrf=False)
    assert forged.status_code == 403
    wrong = browser.post("/organizations", {"name": unique("org"), "csrf_token": "x"}, csrf=False)
    assert wrong.status_code == 403
    assert "forged" not in browser.get("/account/tokens").text


def test_organization_members_teams_and_robots(server: ServerProcess, browser: Browser) -> None:
    owner, other = new_user(server), new_user(server)
    browser.sign_in(owner)
    org = unique("org")
    assert notice_of(browser.post("/organizations", {"name": org})) == f"/organizations/{org}?done=org-created"
    taken = browser.post("/organizations", {"name": org})
    assert taken.status_code == 409
    assert "taken" in taken.text

    assert notice_of(browser.post(f"/organizations/{org}/members", {"username": other})).endswith("done=member-set")
    page = browser.get(f"/organizations/{org}").text
    assert other in page and "Make owner" in page
    last_owner = browser.post(f"/organizations/{org}/members/{owner}/owner", {"owner": "false"})
    assert last_owner.status_code == 409
    assert "last owner" in last_owner.text

    team_location = notice_of(browser.post(f"/organizations/{org}/teams", {"team": "devs"}))
    assert team_location == f"/organizations/{org}/teams/devs?done=team-created"
    added = browser.post(f"/organizations/{org}/teams/devs/members", {"username": other})
    assert notice_of(added).endswith("done=team-member-added")
    assert other in browser.get(f"/organizations/{org}/teams/devs").text

    # A role for the team on every repository of the organization: its members may push there.
    form = {"subject_kind": "team", "subject_name": f"{org}/devs", "role": "push"}
    assert notice_of(browser.post(f"/organizations/{org}/permissions", form)).endswith("done=grant-saved")
    assert f"team:{org}/devs" in browser.get(f"/organizations/{org}").text
    with httpx.Client(base_url=server.url, auth=(other, PASSWORD), timeout=30) as client:
        push_image(client, f"{org}/by-the-team", layers=1, layer_size=64)
    unknown = {"subject_kind": "team", "subject_name": f"{org}/nobody", "role": "push"}
    no_team = browser.post(f"/organizations/{org}/permissions", unknown)
    assert no_team.status_code == 404
    assert f'value="{org}/nobody"' in no_team.text  # the form again, with what was typed
    removed = browser.post(f"/organizations/{org}/permissions/remove", {"subject": f"team:{org}/devs"})
    assert notice_of(removed).endswith("done=grant-removed")

    robot_location = notice_of(browser.post(f"/robots/{org}", {"name": "ci", "description": "builds"}))
    assert robot_location == f"/robots/{org}/ci?done=robot-created"
    issued = browser.post(f"/robots/{org}/ci/tokens", {"token_name": "pipeline", "max_role": "pull"})
    assert issued.status_code == 201
    secret = SECRET.search(issued.text)
    assert secret is not None
    assert f"{org}+ci" in issued.text
    assert httpx.get(f"{server.url}/v2/", auth=(f"{org}+ci", secret.group(1))).status_code == 200

    # A member who does not own the organization sees it, without the forms, and is refused changes.
    member = signed_in(server, other)
    seen = member.get(f"/organizations/{org}")
    assert seen.status_code == 200 and "Add member" not in seen.text
    refused = member.post(f"/organizations/{org}/teams", {"team": "mine"})
    assert refused.status_code == 403
    assert member.get(f"/robots/{org}").status_code == 403
    outsider = signed_in(server, new_user(server))
    assert outsider.get(f"/organizations/{org}").status_code == 403


def test_repository_settings_change_description_readme_visibility_and_grants(
    server: ServerProcess, browser: Browser
) -> None:
    owner, friend = new_user(server), new_user(server)
    repository = f"{owner}/app"
    with httpx.Client(base_url=server.url, auth=(owner, PASSWORD), timeout=30) as client:
        push_image(client, repository, layers=1, layer_size=64)
    browser.sign_in(owner)
    settings = f"/r/{repository}/-/settings"
    assert browser.get(settings).status_code == 200

    saved = browser.post(settings + "/description", {"description": "Ships <b>parcels</b>"})
    assert notice_of(saved) == f"{settings}?done=description-saved"
    assert notice_of(browser.post(settings + "/readme", {"readme": "# Parcel app\n\nUse it."}))
    form = browser.get(settings).text
    assert "Ships &lt;b&gt;parcels&lt;/b&gt;</textarea>" in form
    assert "# Parcel app" in form
    shown = httpx.get(f"{server.url}/api/v1/repositories/{repository}", auth=(owner, PASSWORD)).json()
    assert shown["description"] == "Ships <b>parcels</b>"
    too_long = browser.post(settings + "/description", {"description": "x" * 5000})
    assert too_long.status_code == 400
    assert "longer than 4096" in too_long.text

    anonymous_tags = f"{server.url}/v2/{repository}/tags/list"
    assert notice_of(browser.post(settings + "/visibility", {"visibility": "public"}))
    assert httpx.get(anonymous_tags).status_code == 200
    assert notice_of(browser.post(settings + "/visibility", {"visibility": "private"}))
    assert httpx.get(anonymous_tags).status_code == 401
    assert browser.post(settings + "/visibility", {"visibility": "internal"}).status_code == 400

    bad = browser.post(settings + "/grant", {"subject_kind": "user", "subject_name": "no such!", "role": "pull"})
    assert bad.status_code == 400
    assert 'value="no such!"' in bad.text
    granted = browser.post(settings + "/grant", {"subject_kind": "user", "subject_name": friend, "role": "push"})
    assert notice_of(granted).endswith("done=grant-saved")
    assert f"user:{friend}" in browser.get(settings).text

    # The friend may now pull and push, but not administer: the settings are refused.
    friend_browser = signed_in(server, friend)
    assert friend_browser.get(settings).status_code == 403
    assert friend_browser.post(settings + "/visibility", {"visibility": "public"}).status_code == 403
    removed = browser.post(settings + "/remove-grant", {"subject": f"user:{friend}"})
    assert notice_of(removed).endswith("done=grant-removed")
    assert friend_browser.get(settings).status_code == 404


def test_without_a_written_description_pages_show_the_images_own(server: ServerProcess, browser: Browser) -> None:
    owner = new_user(server)
    repository = f"{owner}/described"
    said = "Parcels <b>by</b> night"
    with httpx.Client(base_url=server.url, auth=(owner, PASSWORD), timeout=30) as client:
        push_described_image(client, repository, "v1", labels={"org.opencontainers.image.description": said})
    browser.sign_in(owner)
    escaped = html.escape(said, quote=False)
    page = browser.get(f"/r/{repository}").text
    assert re.search(rf'<p class="description" id="image-description">{re.escape(escaped)} <span class="hint">', page)
    assert escaped in browser.get(f"/n/{owner}").text
    settings = f"/r/{repository}/-/settings"
    form = browser.get(settings).text
    assert f'placeholder="{html.escape(said)}"></textarea>' in form
    assert 'id="image-description-hint"' in form
    # A written description replaces it everywhere; cleared, the image's is back.
    assert notice_of(browser.post(settings + "/description", {"description": "Written here"}))
    page = browser.get(f"/r/{repository}").text
    assert '<p class="description">Written here</p>' in page
    assert 'id="image-description"' not in page
    assert "Written here" in browser.get(f"/n/{owner}").text
    assert 'id="image-description-hint"' not in browser.get(settings).text
    assert notice_of(browser.post(settings + "/description", {"description": ""}))
    assert 'id="image-description"' in browser.get(f"/r/{repository}").text


def test_admin_area_lists_users_and_storage_and_refuses_others(server: ServerProcess, browser: Browser) -> None:
    plain = signed_in(server, new_user(server))
    assert plain.get("/admin/users").status_code == 403
    assert plain.get("/admin/storage").status_code == 403
    assert plain.get("/admin/audit").status_code == 403
    assert (
        plain.post(
            "/admin/users", {"username": unique("x"), "password": PASSWORD, "password_again": PASSWORD}
        ).status_code
        == 403
    )

    browser.sign_in(ADMIN[0], ADMIN[1])
    name = unique("made")
    differ = browser.post("/admin/users", {"username": name, "password": PASSWORD, "password_again": "other-password"})
    assert differ.status_code == 400 and "differ" in differ.text
    made = browser.post("/admin/users", {"username": name, "password": PASSWORD, "password_again": PASSWORD})
    assert notice_of(made) == "/admin/users?done=user-created"
    assert name in browser.get("/admin/users").text
    victim = signed_in(server, name)
    audit = browser.get(f"/admin/audit?action=user-create&target={name}")
    assert audit.status_code == 200
    assert re.search(rf'<td>user-create</td>\s*<td class="mono">{name}</td>', audit.text)
    assert "user:root" in audit.text
    assert notice_of(browser.post(f"/admin/users/{name}/admin", {"admin": "true"}))
    assert "Revoke admin" in browser.get("/admin/users").text
    assert notice_of(browser.post(f"/admin/users/{name}/admin", {"admin": "false"}))
    last = browser.post(f"/admin/users/{ADMIN[0]}/admin", {"admin": "false"})
    assert last.status_code == 409
    assert "last site administrator" in last.text
    unconfirmed = browser.post(f"/admin/users/{name}/delete", {"confirm": "nope"})
    assert unconfirmed.status_code == 400
    assert notice_of(browser.post(f"/admin/users/{name}/delete", {"confirm": name}))
    assert victim.get("/account/tokens").status_code == 303  # their session ended with them
    assert name not in browser.get("/admin/users").text

    owner = new_user(server)
    with httpx.Client(base_url=server.url, auth=(owner, PASSWORD), timeout=30) as client:
        push_image(client, f"{owner}/stored", layers=2, layer_size=1000)
    storage = browser.get("/admin/storage")
    assert storage.status_code == 200
    cells = rf'{owner}/stored</a></th><td class="num">(\d+)</td>\s*<td class="num" title="(\d+) bytes"'
    row = re.search(cells, storage.text)
    assert row is not None
    assert int(row.group(1)) == 3  # config and two layers
    assert int(row.group(2)) > 2000


def test_changing_your_password_needs_the_current_one_and_signs_out_other_browsers(
    server: ServerProcess, browser: Browser
) -> None:
    user = new_user(server)
    browser.sign_in(user)
    elsewhere = signed_in(server, user)
    browser.get("/account/password")
    new = "new-password-1"
    wrong = browser.post("/account/password", {"current_password": "not-it", "password": new, "password_again": new})
    assert wrong.status_code == 403
    assert "the current password is wrong" in wrong.text
    short = browser.post(
        "/account/password", {"current_password": PASSWORD, "password": "short", "password_again": "short"}
    )
    assert short.status_code == 400
    assert "at least 8 characters" in short.text
    changed = browser.post("/account/password", {"current_password": PASSWORD, "password": new, "password_again": new})
    assert notice_of(changed) == "/account/password?done=password-changed"
    assert "Your password was changed" in browser.get("/account/password?done=password-changed").text
    assert elsewhere.get("/account/tokens").status_code == 303  # signed out: sent to sign in
    assert httpx.get(f"{server.url}/v2/", auth=(user, new)).status_code == 200
    assert httpx.get(f"{server.url}/v2/", auth=(user, PASSWORD)).status_code == 401


def test_robots_of_your_own_namespace_and_what_deleting_takes(server: ServerProcess, browser: Browser) -> None:
    owner, member = new_user(server), new_user(server)
    browser.sign_in(owner)
    own = browser.get("/account/robots")
    assert own.status_code == 303 and own.headers["location"] == f"/robots/{owner}"
    assert (
        notice_of(browser.post(f"/robots/{owner}", {"name": "backup"})) == f"/robots/{owner}/backup?done=robot-created"
    )
    issued = browser.post(f"/robots/{owner}/backup/tokens", {"token_name": "nightly", "max_role": "pull"})
    secret = SECRET.search(issued.text)
    assert secret is not None
    token_id = re.search(r'action="[^"]*/tokens/(\d+)/revoke"', browser.get(f"/robots/{owner}/backup").text)
    assert token_id is not None
    revoked = browser.post(f"/robots/{owner}/backup/tokens/{token_id.group(1)}/revoke")
    assert notice_of(revoked) == f"/robots/{owner}/backup?done=token-revoked"
    assert httpx.get(f"{server.url}/v2/", auth=(f"{owner}+backup", secret.group(1))).status_code == 401
    assert notice_of(browser.post(f"/robots/{owner}/backup/delete")) == f"/robots/{owner}?done=robot-deleted"
    assert browser.get(f"/robots/{owner}/backup").status_code == 404
    assert browser.get(f"/robots/{member}").status_code == 403  # someone else's namespace

    org = unique("org")
    browser.post("/organizations", {"name": org})
    browser.post(f"/organizations/{org}/members", {"username": member})
    browser.post(f"/organizations/{org}/teams", {"team": "ops"})
    assert notice_of(browser.post(f"/organizations/{org}/members/{member}/remove")).endswith("done=member-removed")
    assert notice_of(browser.post(f"/organizations/{org}/teams/ops/delete")).endswith("done=team-deleted")
    assert browser.get(f"/organizations/{org}/teams/ops").status_code == 404
    unconfirmed = browser.post(f"/organizations/{org}/delete", {"confirm": "something else"})
    assert unconfirmed.status_code == 400
    assert f"type '{org}' to confirm" in html.unescape(unconfirmed.text)
    deleted = browser.post(f"/organizations/{org}/delete", {"confirm": org})
    assert notice_of(deleted) == "/organizations?done=org-deleted"
    assert browser.get(f"/organizations/{org}").status_code == 404
