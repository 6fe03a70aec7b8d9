"""The management JSON API under /api/v1, against a real server: accounts, permissions, audit, schema.

Most tests share one server in ``auth = "basic"`` mode (so that a personal access token can be
used on ``/v2/`` too); each test makes its own users and organizations with unique names.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.protocol import error_codes, push_image
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration

ADMIN = ("root", "root-password-1")
PASSWORD = "correct-horse-battery"
BASIC_CHALLENGE = 'Basic realm="portside"'
ADMIN_ENV = {"PORTSIDE_ADMIN_USERNAME": ADMIN[0], "PORTSIDE_ADMIN_PASSWORD": ADMIN[1]}

# Every operation the schema must document.
EXPECTED_OPERATIONS = {
    "/user": {"get"},
    "/users": {"get", "post"},
    "/users/{username}": {"get", "delete"},
    "/users/{username}/password": {"put"},
    "/users/{username}/admin": {"put"},
    "/user/tokens": {"get", "post"},
    "/user/tokens/{token_id}": {"delete"},
    "/organizations": {"get", "post"},
    "/organizations/{organization}": {"get", "delete"},
    "/organizations/{organization}/members": {"get"},
    "/organizations/{organization}/members/{username}": {"put", "delete"},
    "/organizations/{organization}/teams": {"get", "post"},
    "/organizations/{organization}/teams/{team}": {"get", "delete"},
    "/organizations/{organization}/teams/{team}/members/{username}": {"put", "delete"},
    "/robots/{namespace}": {"get", "post"},
    "/robots/{namespace}/{name}": {"get", "delete"},
    "/robots/{namespace}/{name}/tokens": {"get", "post"},
    "/robots/{namespace}/{name}/tokens/{token_id}": {"delete"},
    "/repositories": {"get"},
    "/repositories/{name}": {"get", "patch", "delete"},
    "/permissions/repositories/{name}": {"get", "put", "delete"},
    "/permissions/namespaces/{namespace}": {"get", "put", "delete"},
    "/audit": {"get"},
    "/tag-history/{name}": {"get"},
    "/tag-restores": {"post"},
    "/immutable-rules": {"get", "post"},
    "/immutable-rules/{rule_id}": {"delete"},
    "/quotas": {"get"},
    "/quotas/{namespace}": {"get", "put"},
    "/gc/runs": {"get", "post"},
    "/gc/runs/{run_id}": {"get"},
    "/retention/policies": {"get", "post"},
    "/retention/policies/{policy_id}": {"delete"},
    "/retention/runs": {"get", "post"},
    "/search": {"get"},
    "/repository-metadata/{name}": {"get", "patch"},
    "/stars": {"get"},
    "/stars/{name}": {"put", "delete"},
    "/explore/{kind}": {"get"},
    "/webhooks/{namespace}": {"get", "post"},
    "/webhooks/{namespace}/{webhook_id}": {"get", "patch", "delete"},
    "/webhooks/{namespace}/{webhook_id}/deliveries": {"get"},
    "/maintenance": {"get", "put"},
}


# The shared ServerProcess counts a 401 from /v2/ as up, so servers with auth on need nothing more.
ManagementServer = ServerProcess


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagementServer]:
    """One server per database in Basic mode with a first administrator, shared by this module's tests."""
    env = {**ADMIN_ENV, "PORTSIDE_AUTH": "basic", "PORTSIDE_LOGIN_FAILURES_PER_ADDRESS": "1000"}
    if request.param == "postgresql":
        env["PORTSIDE_DATABASE_URL"] = request.getfixturevalue("postgres").create_database()
    data_dir = tmp_path_factory.mktemp(f"management-{request.param}") / "data"
    process = ManagementServer(data_dir, workers=2, env=env).start()
    yield process
    process.stop()


@pytest.fixture
def api(server: ManagementServer) -> Iterator[httpx.Client]:
    """A client for ``/api/v1`` of the shared server; pass ``auth=`` per request."""
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=30.0) as client:
        yield client


# Helpers


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def expect(response: httpx.Response, status: int, code: str | None = None) -> Any:
    """Assert the status (and error code); return the JSON body, if any."""
    assert response.status_code == status, response.text
    if code is not None:
        assert error_codes(response) == [code]
    return response.json() if response.content else None


def new_user(api: httpx.Client, prefix: str = "user", password: str = PASSWORD) -> tuple[str, str]:
    """An admin-created user; its credentials."""
    name = unique(prefix)
    expect(api.post("/users", json={"username": name, "password": password}, auth=ADMIN), 201)
    return name, password


def new_organization(api: httpx.Client, owner: tuple[str, str]) -> str:
    """An organization created (and so owned) by ``owner``."""
    name = unique("org")
    expect(api.post("/organizations", json={"name": name}, auth=owner), 201)
    return name


def registry(server: ManagementServer, auth: tuple[str, str] | None) -> httpx.Client:
    """A ``/v2/`` client with Basic credentials (or none)."""
    return httpx.Client(base_url=server.url, auth=auth, timeout=30.0)


def push(server: ManagementServer, repository: str, auth: tuple[str, str]) -> None:
    """Push a small image as ``auth``."""
    with registry(server, auth) as client:
        push_image(client, repository, layers=1, layer_size=64)


def audit(api: httpx.Client, **filters: Any) -> list[dict[str, Any]]:
    """Audit events matching ``filters``, newest first."""
    return list(expect(api.get("/audit", params=filters, auth=ADMIN), 200)["events"])


def actions(events: list[dict[str, Any]]) -> set[str]:
    """The actions of some events."""
    return {event["action"] for event in events}


# The whole lifecycle


def test_lifecycle_users_organization_team_robot_grants_visibility_and_audit(
    server: ManagementServer, api: httpx.Client
) -> None:
    alice, bob = new_user(api, "alice"), new_user(api, "bob")
    me = expect(api.get("/user", auth=alice), 200)
    assert (me["username"], me["admin"], me["organizations"]) == (alice[0], False, [])

    org = new_organization(api, alice)
    assert expect(api.get("/user", auth=alice), 200)["organizations"] == [{"name": org, "owner": True}]
    member = f"/organizations/{org}/members/{bob[0]}"
    assert expect(api.put(member, json={}, auth=alice), 201) == {"username": bob[0], "owner": False}
    expect(api.put(member, json={"owner": False}, auth=alice), 200)
    expect(api.post(f"/organizations/{org}/teams", json={"name": "devs"}, auth=alice), 201)
    team = expect(api.put(f"/organizations/{org}/teams/devs/members/{bob[0]}", auth=alice), 200)
    assert team == {"organization": org, "name": "devs", "members": [bob[0]]}
    assert [m["username"] for m in expect(api.get(f"/organizations/{org}/members", auth=bob), 200)] == sorted(
        [alice[0], bob[0]]
    )

    robot = expect(api.post(f"/robots/{org}", json={"name": "ci", "description": "builds"}, auth=alice), 201)
    assert robot["full_name"] == f"{org}+ci"
    assert not {"secret", "token", "password"} & set(robot)
    token = expect(api.post(f"/robots/{org}/ci/tokens", json={"name": "deploy", "max_role": "push"}, auth=alice), 201)
    assert token["secret"].startswith("pst_")
    listed = expect(api.get(f"/robots/{org}/ci/tokens", auth=alice), 200)
    assert [(t["id"], t["max_role"]) for t in listed] == [(token["id"], "push")]
    assert "secret" not in listed[0]

    # The robot may push into the organization's namespace once it is granted to.
    grant = {"subject": f"robot:{org}+ci", "role": "push"}
    assert expect(api.put(f"/permissions/namespaces/{org}", json=grant, auth=alice), 200) == grant
    repository = f"{org}/app"
    push(server, repository, (f"{org}+ci", token["secret"]))

    # A team grant lets bob see the (private) repository, but not change it.
    team_grant = {"subject": f"team:{org}/devs", "role": "pull"}
    expect(api.put(f"/permissions/repositories/{repository}", json=team_grant, auth=alice), 200)
    assert expect(api.get(f"/permissions/repositories/{repository}", auth=alice), 200) == [team_grant]
    seen = expect(api.get(f"/repositories/{repository}", auth=bob), 200)
    assert (seen["visibility"], seen["role"]) == ("private", "pull")
    expect(api.patch(f"/repositories/{repository}", json={"visibility": "public"}, auth=bob), 403, "DENIED")
    expect(api.get(f"/repositories/{repository}"), 404, "NAME_UNKNOWN")

    changed = expect(
        api.patch(f"/repositories/{repository}", json={"visibility": "public", "description": "the app"}, auth=alice),
        200,
    )
    assert (changed["visibility"], changed["description"], changed["role"]) == ("public", "the app", "admin")
    assert expect(api.get(f"/repositories/{repository}"), 200)["role"] == "pull"
    expect(
        api.delete(f"/permissions/repositories/{repository}", params={"subject": team_grant["subject"]}, auth=alice),
        204,
    )
    assert expect(api.get(f"/permissions/repositories/{repository}", auth=alice), 200) == []

    everything = audit(api, target=org)
    assert {
        "org-create",
        "member-set",
        "team-create",
        "team-member-add",
        "robot-create",
        "token-create",
        "grant",
        "grant-remove",
        "visibility-change",
        "description-change",
    } <= actions(everything)
    (visibility,) = audit(api, actor=f"user:{alice[0]}", action="visibility-change", target=org)
    assert (visibility["target"], visibility["detail"], visibility["address"]) == (
        repository,
        {"visibility": "public"},
        "127.0.0.1",
    )
    assert {e["action"] for e in audit(api, target=bob[0])} == {"user-create"}


def test_personal_access_token_is_a_password_on_v2_and_a_bearer_token_here(
    server: ManagementServer, api: httpx.Client
) -> None:
    carol = new_user(api, "carol")
    created = expect(
        api.post("/user/tokens", json={"name": "laptop", "max_role": "pull", "expires_in_days": 7}, auth=carol), 201
    )
    secret = created["secret"]
    assert created["expires_at"] is not None and created["max_role"] == "pull"

    with registry(server, (carol[0], secret)) as client:
        assert client.get("/v2/").status_code == 200
    bearer = {"Authorization": f"Bearer {secret}"}
    assert expect(api.get("/user", headers=bearer), 200)["token_max_role"] == "pull"
    (listed,) = expect(api.get("/user/tokens", headers=bearer), 200)
    assert listed["id"] == created["id"] and "secret" not in listed
    # A pull token cannot mint itself a stronger one, nor revoke tokens.
    expect(api.post("/user/tokens", json={"name": "x", "max_role": "admin"}, headers=bearer), 403, "DENIED")
    expect(api.delete(f"/user/tokens/{created['id']}", headers=bearer), 403, "DENIED")

    expect(api.delete(f"/user/tokens/{created['id']}", auth=carol), 204)
    expect(api.delete(f"/user/tokens/{created['id']}", auth=carol), 404, "NAME_UNKNOWN")
    with registry(server, (carol[0], secret)) as client:
        assert client.get("/v2/").status_code == 401
    expect(api.get("/user", headers=bearer), 401, "UNAUTHORIZED")
    assert actions(audit(api, actor=f"user:{carol[0]}")) >= {"token-create", "token-revoke"}


def test_users_change_their_own_password_with_the_current_one(api: httpx.Client) -> None:
    dave, erin = new_user(api, "dave"), new_user(api, "erin")
    url = f"/users/{dave[0]}/password"
    expect(api.put(url, json={"password": "a-new-password"}, auth=dave), 400, "REQUEST_INVALID")
    wrong = {"password": "a-new-password", "current_password": "not-it-at-all"}
    expect(api.put(url, json=wrong, auth=dave), 403, "DENIED")
    expect(api.put(url, json={"password": "a-new-password", "current_password": PASSWORD}, auth=dave), 204)
    expect(api.get("/user", auth=dave), 401, "UNAUTHORIZED")
    expect(api.get("/user", auth=(dave[0], "a-new-password")), 200)

    dave = (dave[0], "a-new-password")
    expect(api.put(f"/users/{erin[0]}/password", json={"password": "by-dave-1234"}, auth=dave), 403, "DENIED")
    expect(api.put(f"/users/{erin[0]}/password", json={"password": "by-the-admin"}, auth=ADMIN), 204)
    expect(api.get("/user", auth=(erin[0], "by-the-admin")), 200)
    assert actions(audit(api, target=erin[0], action="password-change")) == {"password-change"}


def test_deleting_a_user_removes_the_robots_and_tokens_of_their_namespace(
    server: ManagementServer, api: httpx.Client
) -> None:
    frank = new_user(api, "frank")
    expect(api.post(f"/robots/{frank[0]}", json={"name": "bot"}, auth=frank), 201)
    secret = expect(
        api.post(f"/robots/{frank[0]}/bot/tokens", json={"name": "t", "max_role": "pull"}, auth=frank), 201
    )["secret"]
    with registry(server, (f"{frank[0]}+bot", secret)) as client:
        assert client.get("/v2/").status_code == 200

    expect(api.delete(f"/users/{frank[0]}", auth=ADMIN), 204)
    expect(api.get(f"/users/{frank[0]}", auth=ADMIN), 404, "NAME_UNKNOWN")
    with registry(server, (f"{frank[0]}+bot", secret)) as client:
        assert client.get("/v2/").status_code == 401
    assert actions(audit(api, target=frank[0])) >= {"user-create", "robot-create", "token-create", "user-delete"}


def test_repository_listing_shows_what_the_caller_may_see_page_by_page(
    server: ManagementServer, api: httpx.Client
) -> None:
    gina, stranger = new_user(api, "gina"), new_user(api, "stranger")
    names = [f"{gina[0]}/r{i}" for i in range(3)]
    for name in names:
        push(server, name, gina)
    expect(api.patch(f"/repositories/{names[0]}", json={"visibility": "public"}, auth=gina), 200)

    seen: list[str] = []
    last: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"last": last} if last else {})}
        page = expect(api.get("/repositories", params=params, auth=gina), 200)
        assert len(page["repositories"]) <= 2
        seen += [r["name"] for r in page["repositories"]]
        last = page["next"]
        if last is None:
            break
    assert [name for name in seen if name.startswith(f"{gina[0]}/")] == names
    assert seen == sorted(seen)

    def visible_to(auth: tuple[str, str] | None) -> set[str]:
        body = expect(api.get("/repositories", params={"limit": 1000}, auth=auth), 200)
        return {r["name"] for r in body["repositories"]}

    assert visible_to(stranger) & set(names) == {names[0]}
    assert visible_to(None) & set(names) == {names[0]}


def test_audit_log_filters_by_time_and_pages_with_a_cursor(api: httpx.Client) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    owner = new_user(api, "olga")
    org = new_organization(api, owner)
    for team in ("t1", "t2", "t3"):
        expect(api.post(f"/organizations/{org}/teams", json={"name": team}, auth=owner), 201)

    newest_first = audit(api, target=org, since=started.isoformat())
    assert [e["action"] for e in newest_first] == ["team-create"] * 3 + ["org-create"]
    assert [e["detail"].get("team") for e in newest_first[:3]] == ["t3", "t2", "t1"]
    assert audit(api, target=org, until=started.isoformat()) == []

    paged: list[dict[str, Any]] = []
    params: dict[str, Any] = {"target": org, "limit": 3}
    while True:
        page = expect(api.get("/audit", params=params, auth=ADMIN), 200)
        paged += page["events"]
        if page["next_before"] is None:
            break
        params["before"] = page["next_before"]
    assert paged == newest_first


# Authorization


def test_anonymous_callers_get_401_with_a_basic_challenge(api: httpx.Client) -> None:
    for method, path in [
        ("GET", "/user"),
        ("GET", "/users"),
        ("POST", "/organizations"),
        ("GET", "/user/tokens"),
        ("GET", "/audit"),
        ("GET", "/robots/root"),
        ("PUT", "/permissions/namespaces/root"),
        ("PATCH", "/repositories/root/app"),
    ]:
        response = api.request(method, path, json={})
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["WWW-Authenticate"] == BASIC_CHALLENGE
        assert error_codes(response) == ["UNAUTHORIZED"]
    wrong = api.get("/user", auth=(ADMIN[0], "wrong-password"))
    expect(wrong, 401, "UNAUTHORIZED")
    assert wrong.headers["WWW-Authenticate"] == BASIC_CHALLENGE
    expect(api.get("/user", headers={"Authorization": "Bearer not-a-token"}), 401, "UNAUTHORIZED")


def test_only_site_admins_manage_users_and_read_the_audit_log(api: httpx.Client) -> None:
    hana, ivan = new_user(api, "hana"), new_user(api, "ivan")
    expect(api.post("/users", json={"username": unique("x"), "password": PASSWORD}, auth=hana), 403, "DENIED")
    expect(api.get("/users", auth=hana), 403, "DENIED")
    expect(api.get(f"/users/{ivan[0]}", auth=hana), 403, "DENIED")
    expect(api.delete(f"/users/{ivan[0]}", auth=hana), 403, "DENIED")
    expect(api.put(f"/users/{hana[0]}/admin", json={"admin": True}, auth=hana), 403, "DENIED")
    expect(api.get("/audit", auth=hana), 403, "DENIED")
    assert expect(api.get(f"/users/{hana[0]}", auth=hana), 200)["username"] == hana[0]

    assert expect(api.put(f"/users/{hana[0]}/admin", json={"admin": True}, auth=ADMIN), 200)["admin"] is True
    expect(api.get("/audit", params={"limit": 1}, auth=hana), 200)
    expect(api.put(f"/users/{hana[0]}/admin", json={"admin": False}, auth=ADMIN), 200)
    assert actions(audit(api, target=hana[0], action="admin-set")) == {"admin-set"}


def test_non_owners_cannot_change_an_organization_or_its_grants(api: httpx.Client) -> None:
    owner, member, stranger = new_user(api, "owner"), new_user(api, "member"), new_user(api, "outsider")
    org = new_organization(api, owner)
    expect(api.put(f"/organizations/{org}/members/{member[0]}", json={}, auth=owner), 201)
    expect(api.post(f"/organizations/{org}/teams", json={"name": "core"}, auth=owner), 201)

    for caller in (member, stranger):
        expect(api.delete(f"/organizations/{org}", auth=caller), 403, "DENIED")
        expect(api.put(f"/organizations/{org}/members/{caller[0]}", json={"owner": True}, auth=caller), 403, "DENIED")
        expect(api.post(f"/organizations/{org}/teams", json={"name": "mine"}, auth=caller), 403, "DENIED")
        expect(api.post(f"/robots/{org}", json={"name": "sneaky"}, auth=caller), 403, "DENIED")
        grant = {"subject": f"user:{caller[0]}", "role": "admin"}
        expect(api.put(f"/permissions/namespaces/{org}", json=grant, auth=caller), 403, "DENIED")
        expect(api.put(f"/permissions/repositories/{org}/app", json=grant, auth=caller), 404, "NAME_UNKNOWN")
    expect(api.get(f"/organizations/{org}/teams", auth=member), 200)
    expect(api.get(f"/organizations/{org}", auth=stranger), 403, "DENIED")
    assert org not in {o["name"] for o in expect(api.get("/organizations", auth=stranger), 200)}
    assert org in {o["name"] for o in expect(api.get("/organizations", auth=ADMIN), 200)}

    # Promoted, the member may change it; the last owner cannot leave or be demoted.
    expect(api.put(f"/organizations/{org}/members/{member[0]}", json={"owner": True}, auth=owner), 200)
    expect(api.delete(f"/organizations/{org}/members/{owner[0]}", auth=member), 204)
    expect(api.put(f"/organizations/{org}/members/{member[0]}", json={"owner": False}, auth=member), 409, "CONFLICT")
    expect(api.delete(f"/organizations/{org}/members/{member[0]}", auth=member), 409, "CONFLICT")
    expect(api.delete(f"/users/{member[0]}", auth=ADMIN), 409, "CONFLICT")
    expect(api.delete(f"/organizations/{org}", auth=member), 204)
    expect(api.get(f"/organizations/{org}", auth=ADMIN), 404, "NAME_UNKNOWN")


def test_a_stranger_sees_a_private_repository_exactly_as_a_missing_one(
    server: ManagementServer, api: httpx.Client
) -> None:
    jack, stranger = new_user(api, "jack"), new_user(api, "nosy")
    push(server, f"{jack[0]}/secret", jack)
    for caller in (stranger, None):
        for name in (f"{jack[0]}/secret", f"{jack[0]}/nothing-here"):
            response = api.get(f"/repositories/{name}", auth=caller)
            expect(response, 404, "NAME_UNKNOWN")
            assert response.json()["errors"][0]["message"] == f"no repository {name!r}"
    expect(api.patch(f"/repositories/{jack[0]}/secret", json={"visibility": "public"}, auth=stranger), 404)
    expect(api.get(f"/permissions/repositories/{jack[0]}/secret", auth=stranger), 404, "NAME_UNKNOWN")
    expect(api.get(f"/repositories/{jack[0]}/secret", auth=jack), 200)
    expect(api.get(f"/repositories/{jack[0]}/secret", auth=ADMIN), 200)


def test_the_last_site_administrator_stays_one(api: httpx.Client) -> None:
    expect(api.delete(f"/users/{ADMIN[0]}", auth=ADMIN), 409, "CONFLICT")
    expect(api.put(f"/users/{ADMIN[0]}/admin", json={"admin": False}, auth=ADMIN), 409, "CONFLICT")
    assert expect(api.get("/user", auth=ADMIN), 200)["admin"] is True


# Validation


def test_bad_names_and_short_passwords_are_400(server: ManagementServer, api: httpx.Client) -> None:
    kate = new_user(api, "kate")
    org = new_organization(api, kate)
    for username in ("Upper", "a", "has space", "-dash", "x" * 65):
        expect(api.post("/users", json={"username": username, "password": PASSWORD}, auth=ADMIN), 400, "NAME_INVALID")
    expect(api.post("/users", json={"username": unique("p"), "password": "short"}, auth=ADMIN), 400, "REQUEST_INVALID")
    expect(api.post("/organizations", json={"name": "Bad_Org!"}, auth=kate), 400, "NAME_INVALID")
    expect(api.post(f"/organizations/{org}/teams", json={"name": "A Team"}, auth=kate), 400, "NAME_INVALID")
    expect(api.post(f"/robots/{org}", json={"name": "ro bot"}, auth=kate), 400, "NAME_INVALID")
    for subject in ("nobody", "user:", "team:no-slash", "robot:no-plus", "group:x/y", "user:UP"):
        grant = {"subject": subject, "role": "pull"}
        expect(api.put(f"/permissions/namespaces/{org}", json=grant, auth=kate), 400, "REQUEST_INVALID")
    expect(api.patch("/repositories/Not/Valid", json={"visibility": "public"}, auth=kate), 400, "NAME_INVALID")
    grant = {"subject": f"user:{unique('ghost')}", "role": "pull"}
    expect(api.put(f"/permissions/namespaces/{org}", json=grant, auth=kate), 404, "NAME_UNKNOWN")


def test_requests_that_do_not_match_the_schema_are_422(api: httpx.Client) -> None:
    lena = new_user(api, "lena")
    missing = expect(api.post("/users", json={"username": unique("m")}, auth=ADMIN), 422, "VALIDATION_FAILED")
    assert missing["errors"][0]["detail"] == [{"location": ["body", "password"], "message": "Field required"}]
    expect(api.post("/user/tokens", json={"name": "t", "max_role": "superuser"}, auth=lena), 422, "VALIDATION_FAILED")
    expect(api.post("/user/tokens", json={"name": "t", "max_role": "pull", "expires_in_days": 0}, auth=lena), 422)
    expect(api.post("/organizations", json={"name": unique("o"), "color": "red"}, auth=lena), 422)
    expect(api.get("/repositories", params={"limit": 0}, auth=lena), 422, "VALIDATION_FAILED")
    expect(api.delete("/user/tokens/not-a-number", auth=lena), 422, "VALIDATION_FAILED")
    # The input is never echoed back: it may hold a password.
    body = api.post("/users", json={"username": 5, "password": "secret-input-1"}, auth=ADMIN).text
    assert "secret-input-1" not in body


def test_taken_names_are_409(api: httpx.Client) -> None:
    mia = new_user(api, "mia")
    org = new_organization(api, mia)
    expect(api.post("/users", json={"username": mia[0], "password": PASSWORD}, auth=ADMIN), 409, "CONFLICT")
    expect(api.post("/users", json={"username": org, "password": PASSWORD}, auth=ADMIN), 409, "CONFLICT")
    expect(api.post("/organizations", json={"name": mia[0]}, auth=mia), 409, "CONFLICT")
    expect(api.post(f"/organizations/{org}/teams", json={"name": "ops"}, auth=mia), 201)
    expect(api.post(f"/organizations/{org}/teams", json={"name": "ops"}, auth=mia), 409, "CONFLICT")
    expect(api.post(f"/robots/{org}", json={"name": "ci"}, auth=mia), 201)
    expect(api.post(f"/robots/{org}", json={"name": "ci"}, auth=mia), 409, "CONFLICT")


# The schema and other modes


def test_the_openapi_schema_documents_every_operation(api: httpx.Client) -> None:
    schema = expect(api.get("/openapi.json"), 200)
    assert {path: set(operations) for path, operations in schema["paths"].items()} == EXPECTED_OPERATIONS
    assert schema["servers"] == [{"url": "/api/v1"}]
    assert set(schema["components"]["securitySchemes"]) == {"basic", "bearer"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"]["401"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorBody"
            }, (method, path)
    docs = api.get("/docs")
    assert docs.status_code == 200 and "/api/v1/openapi.json" in docs.text


def test_unknown_paths_answer_with_the_error_body(api: httpx.Client) -> None:
    expect(api.get("/no-such-thing"), 404, "UNSUPPORTED")
    expect(api.post("/user"), 405, "UNSUPPORTED")


def test_without_registry_auth_changes_still_need_identity(start_server: Callable[..., ServerProcess]) -> None:
    process = start_server(env=ADMIN_ENV)
    with httpx.Client(base_url=f"{process.url}/api/v1", timeout=30.0) as client:
        response = client.post("/organizations", json={"name": "anyone"})
        expect(response, 401, "UNAUTHORIZED")
        assert response.headers["WWW-Authenticate"] == BASIC_CHALLENGE
        expect(client.post("/users", json={"username": "nina", "password": PASSWORD}, auth=ADMIN), 201)
        expect(client.post("/organizations", json={"name": "ninas"}, auth=("nina", PASSWORD)), 201)
        expect(client.get("/repositories"), 200)


def test_bad_bearer_tokens_are_throttled_per_address(start_server: Callable[..., ServerProcess]) -> None:
    process = start_server(env={**ADMIN_ENV, "PORTSIDE_LOGIN_FAILURES_PER_ADDRESS": "3"})
    with httpx.Client(base_url=f"{process.url}/api/v1", timeout=30.0) as client:
        bad = {"Authorization": "Bearer pst_" + "x" * 43}
        for _ in range(3):
            expect(client.get("/user", headers=bad), 401, "UNAUTHORIZED")
        throttled = client.get("/user", headers=bad)
        expect(throttled, 429, "TOOMANYREQUESTS")
        assert int(throttled.headers["Retry-After"]) >= 1
