"""Search over a real registry on every backend (SQLite FTS5, PostgreSQL full text, the cluster):
what is found, by which filter, in which order, and that the index follows pushes, retags and deletes.

The shared ``registry`` runs with ``auth = "none"``, where everyone may pull everything, so every
repository is searchable by everyone; access rules are checked in test_search_access.py. Each test
makes its own repositories under a fresh namespace and words no other test uses.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.described import push_artifact, push_described_image, push_index
from tests.support.protocol import error_codes

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).parent.parent / "fixtures" / "docker-search-response.json"


def word() -> str:
    """A word no other test (or earlier run) uses: letters only, so every tokenizer keeps it whole."""
    return "w" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


def search(client: httpx.Client, **params: Any) -> dict[str, Any]:
    """``/api/v1/search`` answered 200; its body."""
    response = client.get("/api/v1/search", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def names(client: httpx.Client, **params: Any) -> list[str]:
    """The repository names a search returns, in order."""
    return [hit["name"] for hit in search(client, per_page=100, **params)["results"]]


def test_search_finds_repositories_by_name_tag_label_and_annotation(client: httpx.Client) -> None:
    ns, name_word, tag_word, label_word, title_word, license_word = (word() for _ in range(6))
    repo = f"{ns}/{name_word}-server"
    push_described_image(
        client,
        repo,
        f"1.0-{tag_word}",
        labels={"maintainer": f"{label_word} team", "org.opencontainers.image.vendor": "Acme"},
        annotations={
            "org.opencontainers.image.title": f"The {title_word}",
            "org.opencontainers.image.licenses": license_word,
        },
    )
    assert names(client, q=name_word) == [repo]
    assert names(client, q=repo) == [repo]
    found = search(client, q=tag_word)["results"]
    assert [hit["name"] for hit in found] == [repo]
    assert found[0]["matched_tags"] == [f"1.0-{tag_word}"]
    found = search(client, q=label_word)["results"]
    assert [hit["name"] for hit in found] == [repo]
    assert found[0]["matched_labels"] == [f"maintainer={label_word} team"]
    found = search(client, q=title_word)["results"]
    assert [hit["name"] for hit in found] == [repo]
    assert found[0]["matched_annotations"] == [f"org.opencontainers.image.title=The {title_word}"]
    assert names(client, q=license_word) == [repo]
    # Every word must match; a word the repository lacks excludes it.
    assert names(client, q=f"{name_word} {word()}") == []
    hit = search(client, q=name_word)["results"][0]
    assert hit["namespace"] == ns
    assert hit["last_pushed_at"] is not None
    assert set(hit) >= {"description", "visibility", "stars", "pulls"}


def test_filters_match_exactly(client: httpx.Client) -> None:
    ns, topic = word(), word()
    arm = f"{ns}/arm"
    amd = f"{ns}/amd"
    multi = f"{ns}/multi"
    chart = f"{ns}/chart"
    push_described_image(client, arm, "v1", labels={"topic": topic, "tier": "web"}, architecture="arm64")
    push_described_image(
        client,
        amd,
        "v1",
        labels={"topic": topic},
        annotations={"org.opencontainers.image.licenses": "MIT"},
    )
    push_index(client, multi, "v1", [("linux", "amd64"), ("linux", "s390x")], {"topic": topic})
    push_artifact(client, chart, "v1", "application/vnd.example.chart.v1+json")

    assert sorted(names(client, namespace=ns)) == sorted([arm, amd, multi, chart])
    assert sorted(names(client, q=f"namespace:{ns}")) == sorted([arm, amd, multi, chart])
    assert sorted(names(client, namespace=ns, label=f"topic={topic}")) == sorted([arm, amd])
    assert names(client, namespace=ns, label="tier") == [arm]
    assert names(client, namespace=ns, label=["tier=web", f"topic={topic}"]) == [arm]
    assert names(client, namespace=ns, label="tier=db") == []
    assert names(client, namespace=ns, annotation="org.opencontainers.image.licenses=MIT") == [amd]
    assert names(client, namespace=ns, annotation=f"topic={topic}") == [multi]
    assert names(client, namespace=ns, platform="linux/arm64") == [arm]
    assert names(client, namespace=ns, platform="linux/s390x") == [multi]
    assert sorted(names(client, namespace=ns, platform="linux/amd64")) == sorted([amd, multi])
    assert sorted(names(client, namespace=ns, platform="linux")) == sorted([arm, amd, multi])
    assert names(client, namespace=ns, artifact_type="application/vnd.example.chart.v1+json") == [chart]
    assert names(client, q=f"{topic} platform:linux/arm64") == [arm]
    # Filters never match by substring.
    assert names(client, namespace=ns, label=f"topic={topic[:-1]}") == []
    assert names(client, namespace=ns[:-1]) == []


def test_odd_labels_never_fail_a_push(client: httpx.Client) -> None:
    ns = word()
    repo = f"{ns}/odd"
    labels = {"nul": "a\u0000b", "long": "x" * 10_000, "k" * 400: "v", "emoji": "\U0001f433 whale"}
    push_described_image(client, repo, "v1", labels=labels)
    assert names(client, namespace=ns, label="nul=ab") == [repo]
    assert names(client, namespace=ns, label="emoji") == [repo]
    assert names(client, q=f"whale namespace:{ns}") == [repo]


def test_exact_then_prefix_then_full_text(client: httpx.Client) -> None:
    ns, term = word(), word()
    exact = f"{ns}/{term}"
    prefix = f"{ns}/{term}-tools"
    mention = f"{ns}/other"
    # Pushed in reverse order, so that recency cannot explain the ranking.
    push_described_image(client, mention, "v1", annotations={"org.opencontainers.image.description": f"uses {term}"})
    push_described_image(client, prefix, "v1")
    push_described_image(client, exact, "v1")
    assert names(client, q=term, namespace=ns) == [exact, prefix, mention]
    # The full name: exact first, the name prefix next, then the one that only mentions both words.
    assert names(client, q=f"{ns}/{term}") == [exact, prefix, mention]
    assert names(client, q=term, namespace=ns, sort="name") == sorted([exact, prefix, mention])


@pytest.mark.parametrize(
    "q", ["the", "a an of", '"unbalanced', "x' OR 1=1 --", "a & b | !c", "(x:*)", "NEAR(a b)", "***", "é ß 中文", "_"]
)
def test_any_query_text_is_answered(client: httpx.Client, q: str) -> None:
    # Stopwords, full-text operators and SQL are only words to match, never syntax.
    search(client, q=q)
    assert client.get("/v1/search", params={"q": q}).status_code == 200


def test_pages_and_sizes(client: httpx.Client) -> None:
    ns = word()
    repos = [f"{ns}/r{i}" for i in range(5)]
    for repo in repos:
        push_described_image(client, repo, "v1")
    seen: list[str] = []
    for page in (1, 2, 3):
        body = search(client, namespace=ns, sort="name", page=page, per_page=2)
        assert (body["total"], body["num_pages"], body["page"], body["per_page"]) == (5, 3, page, 2)
        seen += [hit["name"] for hit in body["results"]]
    assert seen == sorted(repos)
    assert search(client, namespace=ns, page=9)["results"] == []
    for bad in ({"per_page": 0}, {"per_page": 101}, {"page": 0}, {"label": "=x"}, {"platform": "a//b"}):
        response = client.get("/api/v1/search", params=bad)
        assert response.status_code in (400, 422), (bad, response.text)
        assert response.json()["errors"], bad


def test_index_follows_retag_tag_delete_and_manifest_delete(client: httpx.Client) -> None:
    ns, old_label, new_label, tag_word = word(), word(), word(), word()
    repo = f"{ns}/app"
    first = push_described_image(client, repo, "latest", labels={"release": old_label})
    assert names(client, q=old_label) == [repo]
    # Retag: latest now points at an image with other labels; the old image's labels stop matching.
    second = push_described_image(client, repo, "latest", labels={"release": new_label})
    assert names(client, q=new_label) == [repo]
    assert names(client, q=old_label) == []
    assert names(client, namespace=ns, label=f"release={old_label}") == []
    # Tagging the old image again brings it back; deleting that tag removes it again.
    manifest = client.get(
        f"/v2/{repo}/manifests/{first}", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}
    )
    put = client.put(
        f"/v2/{repo}/manifests/{tag_word}",
        content=manifest.content,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert put.status_code == 201
    assert names(client, q=old_label) == [repo]
    assert names(client, q=tag_word) == [repo]
    assert client.delete(f"/v2/{repo}/manifests/{tag_word}").status_code == 202
    assert names(client, q=tag_word) == []
    assert names(client, q=old_label) == []
    # Deleting the manifest latest points at removes its labels and the tag.
    assert client.delete(f"/v2/{repo}/manifests/{second}").status_code == 202
    assert names(client, q=new_label) == []
    assert names(client, q="latest", namespace=ns) == []
    # The repository itself is still found by name.
    assert names(client, q=repo) == [repo]


def test_index_children_count_only_while_their_index_is_tagged(client: httpx.Client) -> None:
    ns = word()
    repo = f"{ns}/multi"
    index = push_index(client, repo, "v1", [("linux", "riscv64")])
    assert names(client, namespace=ns, platform="linux/riscv64") == [repo]
    assert client.delete(f"/v2/{repo}/manifests/{index}").status_code == 202
    assert names(client, namespace=ns, platform="linux/riscv64") == []


DESCRIPTION = "org.opencontainers.image.description"


def test_a_repository_without_a_description_shows_its_images_own(client: httpx.Client) -> None:
    ns = word()
    repo = f"{ns}/described"
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}

    def shown() -> tuple[str | None, str | None, str]:
        hit = search(client, q=repo)["results"][0]
        v1 = client.get("/v1/search", params={"q": repo}, headers={"X-Docker-Token": "true"}).json()
        metadata = client.get(f"/api/v1/repository-metadata/{repo}").json()
        assert metadata["description"] is None
        assert metadata["image_description"] == hit["description"]
        return hit["description"], metadata["image_description"], v1["results"][0]["description"]

    push_described_image(client, repo, "v1", labels={DESCRIPTION: "Label of v1", "maintainer": "ops"})
    assert shown() == ("Label of v1", "Label of v1", "Label of v1")
    # The tag that moved last decides, and an annotation goes before a label.
    second = push_described_image(
        client, repo, "v2", labels={DESCRIPTION: "Label of v2"}, annotations={DESCRIPTION: "Annotation of v2"}
    )
    assert shown()[0] == "Annotation of v2"
    # An untagged push changes nothing; blank values are no description.
    push_described_image(client, repo, None, labels={DESCRIPTION: "Untagged"})
    push_described_image(client, repo, "blank", labels={DESCRIPTION: "  "})
    assert shown()[0] == "Annotation of v2"
    # Tagging v1's image again makes it the newest.
    v1 = client.get(f"/v2/{repo}/manifests/v1", headers=accept)
    put = client.put(
        f"/v2/{repo}/manifests/again",
        content=v1.content,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert put.status_code == 201
    assert shown()[0] == "Label of v1"
    # A multi-platform index: its children's labels count while it is tagged.
    index = push_index(client, repo, "multi", [("linux", "arm64")], labels={DESCRIPTION: "From the child"})
    assert shown()[0] == "From the child"
    assert client.delete(f"/v2/{repo}/manifests/{index}").status_code == 202
    assert shown()[0] == "Label of v1"
    # Deleting images falls back to the older ones; with none describing itself, there is none.
    for tag in ("v1", "blank"):
        digest = client.head(f"/v2/{repo}/manifests/{tag}", headers=accept).headers["Docker-Content-Digest"]
        assert client.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202
    assert shown()[0] == "Annotation of v2"
    assert client.delete(f"/v2/{repo}/manifests/{second}").status_code == 202
    assert shown() == (None, None, "")
    # The next image that describes itself is shown, and found by its words.
    push_described_image(client, repo, "v3", labels={DESCRIPTION: f"Finds {ns}zeta"})
    assert shown()[0] == f"Finds {ns}zeta"
    assert names(client, q=f"{ns}zeta") == [repo]


def test_docker_search_answers_what_the_daemon_decodes(client: httpx.Client) -> None:
    ns = word()
    repos = [f"{ns}/svc{i}" for i in range(3)]
    for repo in repos:
        push_described_image(client, repo, "v1")
    ping = client.get("/v1/_ping")
    assert ping.status_code == 200
    assert ping.headers["X-Docker-Registry-Standalone"] == "true"
    response = client.get("/v1/search", params={"q": ns, "n": 2}, headers={"X-Docker-Token": "true"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    expected = json.loads(FIXTURE.read_text())
    assert set(body) == set(expected)
    assert set(body["results"][0]) == set(expected["results"][0])
    for key, value in expected.items():
        assert type(body[key]) is type(value), key
    for key, value in expected["results"][0].items():
        assert type(body["results"][0][key]) is type(value), key
    assert (body["query"], body["num_results"], body["num_pages"], body["page"], body["page_size"]) == (ns, 3, 2, 1, 2)
    second = client.get("/v1/search", params={"q": ns, "n": 2, "page": 2}).json()
    assert len(second["results"]) == 1
    assert sorted(r["name"] for r in body["results"] + second["results"]) == sorted(repos)
    assert all(r["is_official"] is False and r["is_automated"] is False for r in body["results"])
    # n defaults to 25.
    assert client.get("/v1/search", params={"q": ns}).json()["page_size"] == 25


@pytest.mark.parametrize("n", ["0", "101", "-1", "ten", "2.5"])
def test_docker_search_rejects_bad_n(client: httpx.Client, n: str) -> None:
    response = client.get("/v1/search", params={"q": "x", "n": n})
    assert response.status_code == 400
    assert error_codes(response) == ["REQUEST_INVALID"]
    assert "between 1 and 100" in response.json()["errors"][0]["message"]


def test_pulls_are_counted_and_shown(client: httpx.Client) -> None:
    ns = word()
    repo = f"{ns}/pulled"
    push_described_image(client, repo, "v1")
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    for _ in range(3):
        assert client.get(f"/v2/{repo}/manifests/v1", headers=accept).status_code == 200
    # HEAD requests are not pulls.
    assert client.head(f"/v2/{repo}/manifests/v1", headers=accept).status_code == 200
    # Counts are buffered per process and written about once a second: poll for them.
    pulls = poll(lambda: client.get(f"/api/v1/repository-metadata/{repo}").json()["pulls"], 3)
    assert pulls == 3
    assert search(client, q=repo)["results"][0]["pulls"] == 3


def poll(read: Any, want: Any, attempts: int = 100) -> Any:
    """Read until the value is ``want`` (or the attempts run out, returning the last value)."""
    value = read()
    for _ in range(attempts):
        if value == want:
            return value
        time.sleep(0.1)
        value = read()
    return value
