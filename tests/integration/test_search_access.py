"""Search and repository metadata with access control on: who finds what, READMEs, stars.

One server per database (SQLite, PostgreSQL) in ``auth = "basic"`` mode with a first
administrator, shared by this module's tests; each test makes its own users and repositories.
One more server in ``auth = "token"`` mode checks ``docker search`` with bearer tokens.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from tests.support.accounts import token_for
from tests.support.described import push_described_image
from tests.support.protocol import error_codes
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration

ADMIN = ("root", "root-password-1")
PASSWORD = "correct-horse-battery"
ADMIN_ENV = {"PORTSIDE_ADMIN_USERNAME": ADMIN[0], "PORTSIDE_ADMIN_PASSWORD": ADMIN[1]}

HOSTILE_README = """# Title

<script>alert('x')</script>
<img src="x" onerror="alert(1)">
[click](javascript:alert(document.cookie))
[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)
<a href="javascript:alert(1)">raw link</a>
<iframe src="https://example.invalid"></iframe>

[safe](https://example.invalid/docs) and `code` and **bold**

| a | b |
|---|---|
| 1 | 2 |
"""


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def markup_of(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Every start tag in ``html`` with its attributes, as a browser's parser sees them."""
    parser = _Markup()
    parser.feed(html)
    return parser.tags


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One Basic-mode server per database, shared by the module's tests."""
    env = {**ADMIN_ENV, "PORTSIDE_AUTH": "basic", "PORTSIDE_LOGIN_FAILURES_PER_ADDRESS": "1000"}
    if request.param == "postgresql":
        env["PORTSIDE_DATABASE_URL"] = request.getfixturevalue("postgres").create_database()
    process = ServerProcess(tmp_path_factory.mktemp(f"search-{request.param}") / "data", workers=2, env=env).start()
    yield process
    process.stop()


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    """``/api/v1`` of the shared server; pass ``auth=`` per request."""
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=30.0) as client:
        yield client


def word() -> str:
    """Letters no other test uses."""
    return "w" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


def expect(response: httpx.Response, status: int, code: str | None = None) -> Any:
    """Assert the status (and error code); the JSON body, if any."""
    assert response.status_code == status, response.text
    if code is not None:
        assert error_codes(response) == [code]
    return response.json() if response.content else None


def new_user(api: httpx.Client) -> tuple[str, str]:
    """A user made by the administrator; its credentials."""
    name = word()
    expect(api.post("/users", json={"username": name, "password": PASSWORD}, auth=ADMIN), 201)
    return name, PASSWORD


def push_as(server: ServerProcess, credentials: tuple[str, str], repository: str, **kwargs: Any) -> str:
    """Push a described image as a user; its digest."""
    with httpx.Client(base_url=server.url, auth=credentials, timeout=30.0) as client:
        return push_described_image(client, repository, kwargs.pop("tag", "v1"), **kwargs)


def found(api: httpx.Client, auth: tuple[str, str] | None, **params: Any) -> list[str]:
    """Names from ``/api/v1/search`` as ``auth`` (``None``: anonymous)."""
    body = expect(api.get("/search", params={"per_page": 100, **params}, auth=auth), 200)
    return [hit["name"] for hit in body["results"]]


def docker_search(server: ServerProcess, term: str, headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
    """``GET /v1/search`` as the daemon sends it."""
    return httpx.get(
        f"{server.url}/v1/search",
        params={"q": term, "n": 25},
        headers={"X-Docker-Token": "true", **(headers or {})},
        timeout=30.0,
        **kw,
    )


@pytest.fixture
def alice_repos(api: httpx.Client, server: ServerProcess) -> Callable[[], tuple[tuple[str, str], str, str, str]]:
    """alice with a private and a public repository sharing a search word."""

    def make() -> tuple[tuple[str, str], str, str, str]:
        alice = new_user(api)
        term = word()
        private = f"{alice[0]}/{term}-private"
        public = f"{alice[0]}/{term}-public"
        push_as(server, alice, private)
        push_as(server, alice, public)
        expect(api.patch(f"/repositories/{public}", json={"visibility": "public"}, auth=alice), 200)
        return alice, term, private, public

    return make


def test_private_repositories_are_found_only_by_who_may_pull_them(
    api: httpx.Client, server: ServerProcess, alice_repos: Callable[[], tuple[tuple[str, str], str, str, str]]
) -> None:
    alice, term, private, public = alice_repos()
    bob = new_user(api)
    assert sorted(found(api, alice, q=term)) == sorted([private, public])
    assert found(api, bob, q=term) == [public]
    assert found(api, None, q=term) == [public]
    assert sorted(found(api, ADMIN, q=term)) == sorted([private, public])
    # Filters do not reveal private repositories either.
    assert found(api, bob, namespace=alice[0]) == [public]
    assert found(api, bob, label="org.example.none") == []
    # docker search: anonymous and Basic credentials.
    anonymous = docker_search(server, term)
    assert anonymous.status_code == 200
    assert [r["name"] for r in anonymous.json()["results"]] == [public]
    as_alice = docker_search(server, term, auth=alice)
    assert sorted(r["name"] for r in as_alice.json()["results"]) == sorted([private, public])
    assert docker_search(server, term, auth=(alice[0], "wrong-password")).status_code == 401
    # A grant opens the private repository to bob.
    grant = {"subject": f"user:{bob[0]}", "role": "pull"}
    expect(api.put(f"/permissions/repositories/{private}", json=grant, auth=alice), 200)
    assert sorted(found(api, bob, q=term)) == sorted([private, public])
    assert sorted(r["name"] for r in docker_search(server, term, auth=bob).json()["results"]) == sorted(
        [private, public]
    )
    # Metadata follows the same rule: 404 for what one may not pull.
    expect(api.get(f"/repository-metadata/{private}"), 404, "NAME_UNKNOWN")
    expect(api.get(f"/repository-metadata/{private}", auth=bob), 200)
    expect(api.get(f"/repository-metadata/{alice[0]}/missing"), 404, "NAME_UNKNOWN")


def test_readme_is_rendered_sanitised_and_searchable(
    api: httpx.Client, server: ServerProcess, alice_repos: Callable[[], tuple[tuple[str, str], str, str, str]]
) -> None:
    alice, _term, private, public = alice_repos()
    readme_word, description_word = word(), word()
    body = expect(
        api.patch(
            f"/repository-metadata/{public}",
            json={"readme": HOSTILE_README + f"\nAbout {readme_word}.", "description": f"Serves {description_word}"},
            auth=alice,
        ),
        200,
    )
    html = body["readme_html"]
    assert body["readme"].startswith("# Title")
    assert "<h1>Title</h1>" in html
    assert '<a href="https://example.invalid/docs" rel="nofollow noopener noreferrer">safe</a>' in html
    assert "<table>" in html and "<strong>bold</strong>" in html
    tags = markup_of(html)
    assert {tag for tag, _ in tags} <= {"h1", "p", "a", "code", "strong", "table", "thead", "tbody", "tr", "th", "td"}
    for tag, attributes in tags:
        for name, value in attributes:
            assert not name.startswith("on"), (tag, name)
            assert not (value or "").lower().startswith(("javascript:", "data:")), (tag, name, value)
    # Raw HTML is shown as text, never as markup.
    assert "&lt;script&gt;" in html
    assert body["description"] == f"Serves {description_word}"
    assert found(api, None, q=readme_word) == [public]
    assert found(api, None, q=description_word) == [public]
    hit = expect(api.get("/search", params={"q": description_word}), 200)["results"][0]
    assert hit["description"] == f"Serves {description_word}"
    # docker search shows the description.
    assert docker_search(server, description_word).json()["results"][0]["description"] == f"Serves {description_word}"
    audit = expect(api.get("/audit", params={"action": "metadata-change", "target": public}, auth=ADMIN), 200)
    assert [(e["actor"], e["detail"]["fields"]) for e in audit["events"]] == [
        (f"user:{alice[0]}", ["description", "readme"])
    ]
    # Only omitted fields stay; null clears.
    body = expect(api.patch(f"/repository-metadata/{public}", json={"readme": None}, auth=alice), 200)
    assert (body["readme"], body["readme_html"], body["description"]) == (None, "", f"Serves {description_word}")
    assert found(api, None, q=readme_word) == []
    # The settings API's description change is searchable too.
    other_word = word()
    expect(api.patch(f"/repositories/{private}", json={"description": f"Also {other_word}"}, auth=alice), 200)
    assert found(api, alice, q=other_word) == [private]


def test_a_written_description_goes_before_the_images_own(api: httpx.Client, server: ServerProcess) -> None:
    alice = new_user(api)
    repo = f"{alice[0]}/{word()}"
    push_as(server, alice, repo, labels={"org.opencontainers.image.description": "What the image says"})
    expect(api.patch(f"/repositories/{repo}", json={"visibility": "public"}, auth=alice), 200)

    def shown() -> tuple[str | None, str | None, str | None, str]:
        metadata = expect(api.get(f"/repository-metadata/{repo}"), 200)
        hit = expect(api.get("/search", params={"q": repo}), 200)["results"][0]
        v1 = docker_search(server, repo).json()["results"][0]
        return metadata["description"], metadata["image_description"], hit["description"], v1["description"]

    assert shown() == (None, "What the image says", "What the image says", "What the image says")
    body = expect(api.patch(f"/repository-metadata/{repo}", json={"description": "Written"}, auth=alice), 200)
    assert (body["description"], body["image_description"]) == ("Written", None)
    assert shown() == ("Written", None, "Written", "Written")
    # Cleared (null, or through the settings API), the image's own is shown again.
    expect(api.patch(f"/repository-metadata/{repo}", json={"description": None}, auth=alice), 200)
    assert shown() == (None, "What the image says", "What the image says", "What the image says")
    expect(api.patch(f"/repositories/{repo}", json={"description": "Set in settings"}, auth=alice), 200)
    assert shown()[2:] == ("Set in settings", "Set in settings")


def test_only_repository_admins_change_metadata(
    api: httpx.Client, server: ServerProcess, alice_repos: Callable[[], tuple[tuple[str, str], str, str, str]]
) -> None:
    alice, _term, private, public = alice_repos()
    bob = new_user(api)
    expect(api.patch(f"/repository-metadata/{public}", json={"description": "x"}), 401, "UNAUTHORIZED")
    expect(api.patch(f"/repository-metadata/{public}", json={"description": "x"}, auth=bob), 403, "DENIED")
    expect(api.patch(f"/repository-metadata/{private}", json={"description": "x"}, auth=bob), 404, "NAME_UNKNOWN")
    expect(api.patch(f"/repository-metadata/{public}", json={"readme": "x" * 300_000}, auth=alice), 400)
    expect(api.patch(f"/repository-metadata/{public}", json={"colour": "red"}, auth=alice), 422)
    expect(api.patch(f"/repository-metadata/{public}", json={"readme": "a\u0000b"}, auth=alice), 400)
    assert expect(api.get(f"/repository-metadata/{public}"), 200)["description"] is None
    expect(api.patch(f"/repository-metadata/{public}", json={"description": "ok"}, auth=ADMIN), 200)


def test_signed_in_users_star_repositories_they_may_pull(
    api: httpx.Client, server: ServerProcess, alice_repos: Callable[[], tuple[tuple[str, str], str, str, str]]
) -> None:
    alice, term, private, public = alice_repos()
    bob, carol = new_user(api), new_user(api)
    body = expect(api.put(f"/stars/{public}", auth=bob), 200)
    assert (body["stars"], body["starred"]) == (1, True)
    assert expect(api.put(f"/stars/{public}", auth=bob), 200)["stars"] == 1
    assert expect(api.put(f"/stars/{public}", auth=carol), 200)["stars"] == 2
    viewed = expect(api.get(f"/repository-metadata/{public}", auth=carol), 200)
    assert (viewed["stars"], viewed["starred"]) == (2, True)
    assert expect(api.get(f"/repository-metadata/{public}"), 200)["starred"] is False
    assert [item["name"] for item in expect(api.get("/stars", auth=bob), 200)] == [public]
    expect(api.put(f"/stars/{public}"), 401, "UNAUTHORIZED")
    expect(api.put(f"/stars/{private}", auth=bob), 404, "NAME_UNKNOWN")
    hit = expect(api.get("/search", params={"q": term}, auth=bob), 200)["results"][0]
    assert (hit["name"], hit["stars"]) == (public, 2)
    assert docker_search(server, term).json()["results"][0]["star_count"] == 2
    body = expect(api.delete(f"/stars/{public}", auth=bob), 200)
    assert (body["stars"], body["starred"]) == (1, False)
    assert expect(api.delete(f"/stars/{public}", auth=bob), 200)["stars"] == 1
    # Stars rank ties: the starred repository first when both match equally.
    assert found(api, alice, q=term) == [public, private]


def test_metadata_reports_size_and_last_push_and_explore_lists_what_one_may_see(
    api: httpx.Client, server: ServerProcess, alice_repos: Callable[[], tuple[tuple[str, str], str, str, str]]
) -> None:
    alice, _term, private, public = alice_repos()
    body = expect(api.get(f"/repository-metadata/{private}", auth=alice), 200)
    manifest = httpx.get(
        f"{server.url}/v2/{private}/manifests/v1",
        auth=alice,
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    document = manifest.json()
    expected = len(manifest.content) + document["config"]["size"] + sum(layer["size"] for layer in document["layers"])
    assert body["size"] == expected
    assert body["last_pushed_at"] is not None and body["role"] == "admin"
    recent = [item["name"] for item in expect(api.get("/explore/recent", params={"limit": 100}), 200)]
    assert public in recent and private not in recent
    mine = [item["name"] for item in expect(api.get("/explore/recent", params={"limit": 100}, auth=alice), 200)]
    assert mine.index(public) < mine.index(private)  # pushed after it
    popular = [item["name"] for item in expect(api.get("/explore/popular", params={"limit": 100}), 200)]
    assert private not in popular


def test_docker_search_with_bearer_tokens(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(env={**ADMIN_ENV, "PORTSIDE_AUTH": "token"})
    term = word()
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=30.0) as api:
        expect(api.post("/users", json={"username": term, "password": PASSWORD}, auth=ADMIN), 201)
    repository = f"{term}/{term}-app"
    token = token_for(server.url, [f"repository:{repository}:push,pull"], (term, PASSWORD))
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0) as client:
        push_described_image(client, repository, "v1")
    # Anonymous: private repositories stay hidden.
    anonymous = docker_search(server, term)
    assert anonymous.status_code == 200 and anonymous.json()["results"] == []
    # The daemon with an identity token asks for registry:catalog:search and sends the bearer token.
    search_token = token_for(server.url, ["registry:catalog:search"], (term, PASSWORD))
    with_token = docker_search(server, term, {"Authorization": f"Bearer {search_token}"})
    assert [r["name"] for r in with_token.json()["results"]] == [repository]
    # The daemon logged in with a password sends Basic credentials.
    assert [r["name"] for r in docker_search(server, term, auth=(term, PASSWORD)).json()["results"]] == [repository]
    bad = docker_search(server, term, {"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    assert bad.headers["WWW-Authenticate"].startswith("Bearer ")
