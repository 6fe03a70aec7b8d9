"""Numbers no row or page can have, digits ``int`` refuses, and NUL characters: a clear 4xx, never a 500.

Each case here answered ``500`` before (found by tests/integration/test_management_api_fuzz.py and
by hand): an id or a size past what the database's integers hold reached the database, a
duration past what ``timedelta`` holds reached ``timedelta``, ``"²"`` passed ``str.isdigit`` and
failed ``int``, and PostgreSQL refused a NUL in a search filter. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.observe import log_lines
from tests.support.protocol import error_codes, push_image
from tests.support.server import ServerProcess
from tests.support.web import ADMIN, Browser, new_user, web_server

pytestmark = pytest.mark.integration

HUGE = 6404159377008802922496  # past 64 bits
PAST_INT32 = 2**31  # past PostgreSQL's integer ids


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server per database in Basic mode with an administrator."""
    yield from web_server(tmp_path_factory, "edges", request)


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    """The management API as the site administrator."""
    with httpx.Client(base_url=f"{server.url}/api/v1", auth=ADMIN, timeout=30) as client:
        yield client


@pytest.mark.parametrize("number", [HUGE, PAST_INT32, 0, -1])
def test_ids_no_row_can_have_are_refused_before_the_database(api: httpx.Client, number: int) -> None:
    for method, path in [
        ("DELETE", f"/immutable-rules/{number}"),
        ("DELETE", f"/retention/policies/{number}"),
        ("GET", f"/gc/runs/{number}"),
        ("DELETE", f"/user/tokens/{number}"),
        ("GET", f"/webhooks/root/{number}"),
        ("DELETE", f"/webhooks/root/{number}"),
        ("DELETE", f"/robots/root/ci/tokens/{number}"),
    ]:
        response = api.request(method, path)
        assert response.status_code == 422, (method, path, response.text)
        assert error_codes(response) == ["VALIDATION_FAILED"], (method, path)
    assert api.get("/audit", params={"before": HUGE}).status_code == 422
    run = api.post("/retention/runs", json={"dry_run": True, "policy_id": PAST_INT32})
    assert run.status_code == 422, run.text
    # The largest id a row can have is merely unknown.
    assert api.delete(f"/immutable-rules/{PAST_INT32 - 1}").status_code == 404


def test_retention_numbers_past_their_range_are_refused(api: httpx.Client) -> None:
    base = {"scope_kind": "namespace", "scope": "root"}
    for body in (
        {"untagged_after": 379144636138205216768},
        {"delete_older_than": 36_501 * 86_400},
        {"keep_last": 1_000_001},
        {"keep_last": HUGE},
    ):
        response = api.post("/retention/policies", json=base | body)
        assert response.status_code == 422, (body, response.text)
    kept = api.post("/retention/policies", json=base | {"keep_last": 1_000_000, "untagged_after": 36_500 * 86_400})
    assert kept.status_code == 201, kept.text
    assert api.delete(f"/retention/policies/{kept.json()['id']}").status_code == 200


def test_quotas_for_bad_namespaces_or_sizes_are_refused(api: httpx.Client) -> None:
    odd = api.put("/quotas/%C2%83d%C3%8B%C2%A8", json={"limit_bytes": 0})
    assert (odd.status_code, error_codes(odd)) == (400, ["NAME_INVALID"])
    nested = api.put("/quotas/a%2Fb", json={"limit_bytes": 0})
    assert nested.status_code in (400, 404), nested.text
    for size in (2**62 + 1, 2**63, HUGE):
        too_big = api.put("/quotas/root", json={"limit_bytes": size})
        assert (too_big.status_code, error_codes(too_big)) == (400, ["REQUEST_INVALID"]), size
    assert api.put("/quotas/root", json={"limit_bytes": 2**62}).json()["limit_bytes"] == 2**62
    assert api.put("/quotas/root", json={"limit_bytes": None}).status_code == 200


def test_search_pages_and_nul_characters(api: httpx.Client, server: ServerProcess) -> None:
    assert api.get("/search", params={"page": 10_001}).status_code == 422
    assert api.get("/search", params={"page": 10_000}).status_code == 200
    for params in (
        {"artifact_type": "a\x00b"},
        {"namespace": "\x00"},
        {"label": "k=\x00"},
        {"q": "annotation:k=v\x00"},
    ):
        response = api.get("/search", params=params)
        assert (response.status_code, error_codes(response)) == (400, ["REQUEST_INVALID"]), params
        assert "NUL" in response.json()["errors"][0]["message"]
    docker = httpx.get(f"{server.url}/v1/search", params={"q": "x", "page": 10_001})
    assert (docker.status_code, error_codes(docker)) == (400, ["REQUEST_INVALID"])
    superscript = httpx.get(f"{server.url}/v1/search", params={"q": "x", "n": "²"})
    assert (superscript.status_code, error_codes(superscript)) == (400, ["REQUEST_INVALID"])
    tags = httpx.get(f"{server.url}/v2/root/app/tags/list", params={"n": "²"}, auth=ADMIN)
    assert (tags.status_code, error_codes(tags)) == (400, ["PAGINATION_NUMBER_INVALID"])


def test_web_pages_take_only_ascii_digits_and_real_ids(server: ServerProcess) -> None:
    with Browser(server) as browser:
        browser.sign_in(ADMIN[0], ADMIN[1])
        assert browser.get("/search?q=x&page=%C2%B2").status_code == 200
        assert browser.get(f"/search?q=x&page={HUGE}").status_code == 200
        for before in ("%C2%B2", str(HUGE)):
            assert browser.get(f"/admin/audit?before={before}").status_code == 200
        for token in ("%C2%B2", str(HUGE), str(PAST_INT32)):
            assert browser.post(f"/account/tokens/{token}/revoke").status_code == 404, token
        user = new_user(server)
        assert browser.get(f"/n/{user}/-/webhooks/{HUGE}").status_code == 404


def test_nul_characters_are_refused_in_urls_and_in_text_people_write(api: httpx.Client, server: ServerProcess) -> None:
    # In a URL, on every route, before any handler (PostgreSQL refuses a NUL in any text).
    for path in (
        "/v2/_catalog?last=a%00b",
        "/v2/a%00b/tags/list",
        "/api/v1/repositories?last=a%00b",
        "/api/v1/users/a%00b",
        "/r/a%00b",
    ):
        response = httpx.get(f"{server.url}{path}", auth=ADMIN)
        assert (response.status_code, error_codes(response)) == (400, ["REQUEST_INVALID"]), path
    # A literal "%00" in a value is text, not a NUL.
    assert httpx.get(f"{server.url}/v2/_catalog", params={"last": "a%00b"}, auth=ADMIN).status_code == 200
    # Descriptions: of a robot, and of a repository through its settings.
    robot = api.post("/robots/root", json={"name": "nulbot", "description": "a\x00b"})
    assert (robot.status_code, error_codes(robot)) == (400, ["REQUEST_INVALID"])
    assert "NUL" in robot.json()["errors"][0]["message"]
    long = api.post("/robots/root", json={"name": "longbot", "description": "x" * 1001})
    assert (long.status_code, error_codes(long)) == (422, ["VALIDATION_FAILED"])
    assert {r["name"] for r in api.get("/robots/root").json()}.isdisjoint({"nulbot", "longbot"})
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=30) as client:
        push_image(client, "root/described", layers=1, layer_size=64)
    settings = api.patch("/repositories/root/described", json={"description": "a\x00b"})
    assert (settings.status_code, error_codes(settings)) == (400, ["REQUEST_INVALID"])
    with Browser(server) as browser:
        browser.sign_in(ADMIN[0], ADMIN[1])
        form = browser.post("/robots/root", {"name": "formbot", "description": "a\x00b"})
        assert form.status_code == 400
        assert "NUL" in form.text
        long_form = browser.post("/robots/root", {"name": "formbot", "description": "x" * 1001})
        assert long_form.status_code == 400
        assert "longer than 1000" in long_form.text


def test_a_member_named_with_a_nul_is_no_user_and_reaches_no_query(server: ServerProcess) -> None:
    organization = f"org{new_user(server)[4:]}"
    created = httpx.post(f"{server.url}/api/v1/organizations", json={"name": organization}, auth=ADMIN, timeout=30)
    assert created.status_code == 201, created.text
    with Browser(server) as browser:
        browser.sign_in(ADMIN[0], ADMIN[1])
        added = browser.post(f"/organizations/{organization}/members", {"username": "a\x00b", "role": "member"})
    assert added.status_code == 404
    assert "no user" in added.text
    # Refused before the database: no "value refused" warning (that would mean a check is missing).
    assert not [line for line in log_lines(server.log_path) if "value refused" in line.get("message", "")]
