"""Tags lists, the catalog and the referrers API, against a real server."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support.protocol import (
    EMPTY_DIGEST,
    OCI_EMPTY,
    OCI_MANIFEST,
    descriptor,
    error_codes,
    push_image,
    push_manifest,
    unique_repo,
)

pytestmark = pytest.mark.integration


def test_tags_are_listed_in_lexical_order(client: httpx.Client) -> None:
    repo = unique_repo()
    image = push_image(client, repo, "b")
    for tag in ("A", "a", "B", "1.0", "_x", "z", "a-1"):
        assert push_manifest(client, repo, tag, image.manifest, OCI_MANIFEST).status_code == 201
    response = client.get(f"/v2/{repo}/tags/list")
    assert response.json() == {"name": repo, "tags": sorted(["A", "a", "B", "1.0", "_x", "z", "a-1", "b"])}


def test_tags_pagination_follows_link_headers(client: httpx.Client) -> None:
    repo = unique_repo()
    image = push_image(client, repo, "t00")
    expected = [f"t{i:02d}" for i in range(7)]
    for tag in expected[1:]:
        push_manifest(client, repo, tag, image.manifest, OCI_MANIFEST)
    seen: list[str] = []
    url: str | None = f"/v2/{repo}/tags/list?n=3"
    pages = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        seen += response.json()["tags"]
        pages += 1
        link = response.headers.get("Link")
        url = link.split(";")[0].strip("<>") if link else None
    assert seen == expected
    assert pages == 3


def test_tags_last_parameter_starts_after_that_tag(client: httpx.Client) -> None:
    repo = unique_repo()
    image = push_image(client, repo, "a")
    for tag in ("b", "c", "d"):
        push_manifest(client, repo, tag, image.manifest, OCI_MANIFEST)
    response = client.get(f"/v2/{repo}/tags/list", params={"n": 2, "last": "a"})
    assert response.json()["tags"] == ["b", "c"]
    assert 'rel="next"' in response.headers["Link"]
    last_page = client.get(f"/v2/{repo}/tags/list", params={"n": 5, "last": "b"})
    assert last_page.json()["tags"] == ["c", "d"]
    assert "Link" not in last_page.headers


def test_tags_with_n_zero_is_an_empty_list(client: httpx.Client) -> None:
    repo = unique_repo()
    push_image(client, repo)
    assert client.get(f"/v2/{repo}/tags/list", params={"n": 0}).json()["tags"] == []


def test_tags_with_invalid_n_is_refused(client: httpx.Client) -> None:
    repo = unique_repo()
    push_image(client, repo)
    response = client.get(f"/v2/{repo}/tags/list", params={"n": "-1"})
    assert response.status_code == 400
    assert error_codes(response) == ["PAGINATION_NUMBER_INVALID"]


def test_tags_of_unknown_repository_is_name_unknown(client: httpx.Client) -> None:
    response = client.get(f"/v2/{unique_repo()}/tags/list")
    assert response.status_code == 404
    assert error_codes(response) == ["NAME_UNKNOWN"]


def test_catalog_lists_repositories_in_order_with_pagination(client: httpx.Client) -> None:
    prefix = unique_repo("catalog")
    names = [f"{prefix}/r{i}" for i in range(5)]
    for name in reversed(names):
        push_image(client, name)
    everything = client.get("/v2/_catalog").json()["repositories"]
    assert everything == sorted(everything)
    assert [n for n in everything if n.startswith(prefix)] == names
    first = client.get("/v2/_catalog", params={"n": 2, "last": names[0]})
    assert first.json()["repositories"] == names[1:3]
    link = first.headers["Link"]
    assert link.startswith("</v2/_catalog?") and link.endswith('>; rel="next"')
    second = client.get(link.split(";")[0].strip("<>"))
    assert second.json()["repositories"] == names[3:5]


def test_referrers_filter_by_artifact_type(client: httpx.Client) -> None:
    repo = unique_repo()
    subject = push_image(client, repo)
    digests = {}
    for artifact_type in ("application/vnd.example.sbom", "application/vnd.example.sig"):
        artifact = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": artifact_type,
                "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2},
                "layers": [],
                "subject": descriptor(OCI_MANIFEST, subject.manifest),
            }
        ).encode()
        response = push_manifest(client, repo, f"{artifact_type.rsplit('.', 1)[1]}", artifact, OCI_MANIFEST)
        assert response.status_code == 201
        digests[artifact_type] = response.headers["Docker-Content-Digest"]
    everything = client.get(f"/v2/{repo}/referrers/{subject.digest}")
    assert "OCI-Filters-Applied" not in everything.headers
    assert {m["digest"] for m in everything.json()["manifests"]} == set(digests.values())
    filtered = client.get(
        f"/v2/{repo}/referrers/{subject.digest}", params={"artifactType": "application/vnd.example.sig"}
    )
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in filtered.json()["manifests"]] == [digests["application/vnd.example.sig"]]


def test_referrers_of_an_image_manifest_report_the_config_media_type(client: httpx.Client) -> None:
    repo = unique_repo()
    subject = push_image(client, repo)
    signature = push_image(client, repo, tag=None, subject=descriptor(OCI_MANIFEST, subject.manifest))
    manifests = client.get(f"/v2/{repo}/referrers/{subject.digest}").json()["manifests"]
    assert manifests == [
        {
            "mediaType": OCI_MANIFEST,
            "digest": signature.digest,
            "size": len(signature.manifest),
            "artifactType": "application/vnd.oci.image.config.v1+json",
        }
    ]


def test_referrers_with_no_referrers_is_an_empty_index(client: httpx.Client) -> None:
    repo = unique_repo()
    subject = push_image(client, repo)
    response = client.get(f"/v2/{repo}/referrers/{subject.digest}")
    assert response.status_code == 200
    assert response.json() == {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [],
    }


def test_referrers_with_malformed_digest_is_digest_invalid(client: httpx.Client) -> None:
    repo = unique_repo()
    push_image(client, repo)
    assert error_codes(client.get(f"/v2/{repo}/referrers/sha256:nothex")) == ["DIGEST_INVALID"]
