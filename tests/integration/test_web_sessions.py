"""The web UI's sessions over plain HTTP: cookie flags, CSRF refusals, revocation, and routes kept apart."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.accounts import auth_env
from tests.support.protocol import push_image
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration

ADMIN, PASSWORD = "admin", "admin-password-1"
TOKEN_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Basic auth, a first administrator, loopback trusted as a TLS-terminating proxy, sign-up off.

    Sessions are rows: on SQLite and on PostgreSQL.
    """
    env = auth_env("basic", admin_username=ADMIN, admin_password=PASSWORD, trusted_proxies='["127.0.0.1"]')
    if request.param == "postgresql":
        env["PORTSIDE_DATABASE_URL"] = request.getfixturevalue("postgres").create_database()
    process = ServerProcess(tmp_path_factory.mktemp("web-sessions") / "data", workers=1, env=env).start()
    yield process
    process.stop()


@pytest.fixture
def browser(server: ServerProcess) -> Iterator[httpx.Client]:
    """A cookie-keeping client, as a browser is (redirects not followed, to see them)."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def form_token(client: httpx.Client, path: str) -> str:
    """The CSRF token of the form on ``path``."""
    response = client.get(path)
    assert response.status_code == 200, response.text
    found = TOKEN_FIELD.search(response.text)
    assert found is not None
    return found.group(1)


def sign_in(client: httpx.Client, username: str = ADMIN, password: str = PASSWORD, **headers: str) -> httpx.Response:
    """POST the sign-in form with its token."""
    token = form_token(client, "/sign-in")
    data = {"csrf_token": token, "username": username, "password": password}
    return client.post("/sign-in", data=data, headers=headers)


def set_cookie_header(response: httpx.Response, name: str) -> str:
    """The Set-Cookie header for one cookie."""
    return next(value for value in response.headers.get_list("set-cookie") if value.startswith(f"{name}="))


def test_session_cookie_is_httponly_lax_and_not_secure_over_plain_http(browser: httpx.Client) -> None:
    response = sign_in(browser)
    assert response.status_code == 303
    cookie = set_cookie_header(response, "portside_session").lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" not in cookie


def test_session_cookie_is_secure_when_a_trusted_proxy_says_tls(browser: httpx.Client) -> None:
    response = sign_in(browser, **{"X-Forwarded-Proto": "https"})
    assert response.status_code == 303
    assert "; secure" in set_cookie_header(response, "portside_session").lower()


def test_sign_in_without_or_with_a_wrong_csrf_token_is_refused(browser: httpx.Client) -> None:
    form_token(browser, "/sign-in")
    for data in ({}, {"csrf_token": "forged"}):
        response = browser.post("/sign-in", data={**data, "username": ADMIN, "password": PASSWORD})
        assert response.status_code == 403
        assert "Form refused" in response.text
        assert "portside_session" not in response.headers.get("set-cookie", "")


def test_a_post_from_a_browser_without_the_nonce_cookie_is_refused(server: ServerProcess) -> None:
    # Another site cannot read our page's token; without our cookie nothing it sends matches.
    token = form_token(httpx.Client(base_url=server.url), "/sign-in")
    response = httpx.post(f"{server.url}/sign-in", data={"csrf_token": token, "username": ADMIN, "password": PASSWORD})
    assert response.status_code == 403


def test_sign_out_needs_the_token_and_then_revokes_the_session(browser: httpx.Client, server: ServerProcess) -> None:
    assert sign_in(browser).status_code == 303
    session = browser.cookies["portside_session"]
    assert browser.post("/sign-out", data={"csrf_token": "forged"}).status_code == 403
    assert "Sign out" in browser.get("/").text
    token = form_token(browser, "/")
    response = browser.post("/sign-out", data={"csrf_token": token})
    assert response.status_code == 303
    # The old cookie, replayed, is worth nothing now.
    replay = httpx.get(f"{server.url}/", cookies={"portside_session": session})
    assert "Sign out" not in replay.text
    assert 'href="/sign-in' in replay.text


def test_tokens_do_not_open_browser_sessions(browser: httpx.Client, server: ServerProcess) -> None:
    created = httpx.post(
        f"{server.url}/api/v1/user/tokens",
        json={"name": "ci", "max_role": "pull"},
        auth=(ADMIN, PASSWORD),
        timeout=30,
    )
    assert created.status_code == 201, created.text
    response = sign_in(browser, ADMIN, created.json()["secret"])
    assert response.status_code == 401
    assert "Wrong username or password." in response.text
    assert "portside_session" not in browser.cookies


def test_sign_up_is_not_offered_unless_public_mode_is_on(browser: httpx.Client) -> None:
    assert browser.get("/sign-up").status_code == 404
    assert 'href="/sign-up"' not in browser.get("/sign-in").text


def test_registry_routes_keep_their_own_answers(server: ServerProcess) -> None:
    v2 = httpx.get(f"{server.url}/v2/")
    assert v2.status_code == 401
    assert v2.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert httpx.get(f"{server.url}/api/v1/users", auth=(ADMIN, PASSWORD)).status_code == 200
    assert httpx.get(f"{server.url}/v1/_ping").status_code == 200
    assert httpx.get(f"{server.url}/static/portside.css").headers["content-type"].startswith("text/css")


def test_private_repository_is_a_404_like_a_missing_one_and_user_text_is_escaped(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, auth=(ADMIN, PASSWORD), timeout=30) as admin:
        push_image(admin, "admin/hidden")
        push_image(admin, "admin/shown")
        changed = admin.patch(
            "/api/v1/repositories/admin/shown",
            json={"visibility": "public", "description": "<script>alert(1)</script> & more"},
        )
        assert changed.status_code == 200, changed.text
    hidden = httpx.get(f"{server.url}/r/admin/hidden")
    missing = httpx.get(f"{server.url}/r/admin/missing")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.text.replace("admin/hidden", "X") == missing.text.replace("admin/missing", "X")
    shown = httpx.get(f"{server.url}/r/admin/shown")
    assert shown.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in shown.text
    assert "<script>alert(1)" not in shown.text
    assert "script-src 'self'" in shown.headers["content-security-policy"]


def test_with_authentication_on_a_private_repository_is_labelled_private_only(
    browser: httpx.Client, server: ServerProcess
) -> None:
    with httpx.Client(base_url=server.url, auth=(ADMIN, PASSWORD), timeout=30) as admin:
        push_image(admin, "admin/labelled")
    assert sign_in(browser).status_code == 303
    page = browser.get("/r/admin/labelled")
    assert page.status_code == 200
    assert '<span class="badge">private</span>' in page.text
    assert "not enforced" not in page.text
    assert "open-registry-note" not in page.text
    assert '<span class="badge">private</span>' in browser.get("/n/admin").text


def test_deleting_a_user_ends_their_sessions(browser: httpx.Client, server: ServerProcess) -> None:
    name = f"leaver{uuid.uuid4().hex[:8]}"
    made = httpx.post(
        f"{server.url}/api/v1/users", json={"username": name, "password": "leaver-password"}, auth=(ADMIN, PASSWORD)
    )
    assert made.status_code == 201, made.text
    assert sign_in(browser, name, "leaver-password").status_code == 303
    assert "Sign out" in browser.get("/").text
    assert httpx.delete(f"{server.url}/api/v1/users/{name}", auth=(ADMIN, PASSWORD)).status_code == 204
    assert "Sign out" not in browser.get("/").text


def test_pull_commands_name_the_host_a_trusted_proxy_forwards(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, auth=(ADMIN, PASSWORD), timeout=30) as admin:
        push_image(admin, "admin/proxied")
        assert admin.patch("/api/v1/repositories/admin/proxied", json={"visibility": "public"}).status_code == 200
    direct = httpx.get(f"{server.url}/r/admin/proxied")
    assert f"docker pull {server.host}/admin/proxied:latest" in direct.text
    proxied = httpx.get(f"{server.url}/r/admin/proxied", headers={"X-Forwarded-Host": "registry.example.org"})
    assert "docker pull registry.example.org/admin/proxied:latest" in proxied.text


def test_repeated_wrong_passwords_are_throttled_with_a_message(browser: httpx.Client, server: ServerProcess) -> None:
    name = f"guessed{uuid.uuid4().hex[:8]}"
    made = httpx.post(
        f"{server.url}/api/v1/users", json={"username": name, "password": "the-real-password"}, auth=(ADMIN, PASSWORD)
    )
    assert made.status_code == 201, made.text
    statuses = [sign_in(browser, name, f"guess-{n}").status_code for n in range(11)]
    assert statuses[:10] == [401] * 10
    assert statuses[10] == 429
    throttled = sign_in(browser, name, "the-real-password")
    assert throttled.status_code == 429
    assert "Too many failed attempts" in throttled.text
    assert "portside_session" not in browser.cookies


def test_an_anonymous_post_goes_to_sign_in_and_back_to_the_page_it_came_from(
    browser: httpx.Client, server: ServerProcess
) -> None:
    token = form_token(browser, "/sign-in")
    referer = f"{server.url}/r/admin/shown"
    data = {"csrf_token": token, "star": "1"}
    response = browser.post("/r/admin/shown/-/star", data=data, headers={"Referer": referer})
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=%2Fr%2Fadmin%2Fshown"
