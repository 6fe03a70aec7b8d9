"""Manifests: validation, byte-exact storage, negotiation, deletes and artifacts, against a real server."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support.protocol import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    EMPTY_DIGEST,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    descriptor,
    error_codes,
    image_manifest,
    push_blob,
    push_image,
    push_manifest,
    random_bytes,
    sha256,
    unique_repo,
)
from tests.support.rawhttp import raw_request
from tests.support.server import RegistryEndpoint

pytestmark = pytest.mark.integration

CONTAINERS_IMAGE_ACCEPT = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
]


def test_put_by_tag_then_get_by_tag_and_digest_returns_exact_bytes(client: httpx.Client) -> None:
    repo = unique_repo()
    image = push_image(client, repo, "v1")
    for reference in ("v1", image.digest):
        response = client.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
        assert response.status_code == 200
        assert response.content == image.manifest
        assert response.headers["Content-Type"] == OCI_MANIFEST
        assert response.headers["Docker-Content-Digest"] == image.digest


def test_put_answers_201_with_location_and_digest(client: httpx.Client) -> None:
    repo = unique_repo()
    config, layer = random_bytes(100), random_bytes(100)
    push_blob(client, repo, config)
    push_blob(client, repo, layer)
    manifest = image_manifest(config, [layer])
    response = push_manifest(client, repo, "latest", manifest, OCI_MANIFEST)
    assert response.status_code == 201
    assert response.headers["Docker-Content-Digest"] == sha256(manifest)
    assert response.headers["Location"] == f"/v2/{repo}/manifests/{sha256(manifest)}"


def test_put_by_digest_stores_an_untagged_manifest(client: httpx.Client) -> None:
    repo = unique_repo()
    image = push_image(client, repo, tag=None)
    assert client.get(f"/v2/{repo}/manifests/{image.digest}").content == image.manifest
    assert client.get(f"/v2/{repo}/tags/list").json()["tags"] == []


def test_put_by_digest_that_does_not_match_is_digest_invalid(client: httpx.Client) -> None:
    repo = unique_repo()
    image = push_image(client, repo)
    other = sha256(b"not this manifest")
    response = push_manifest(client, repo, other, image.manifest, OCI_MANIFEST)
    assert response.status_code == 400
    assert error_codes(response) == ["DIGEST_INVALID"]


def test_head_manifest_has_headers_and_no_body(client: httpx.Client) -> None:
    repo = unique_repo()
    image = push_image(client, repo)
    response = client.head(f"/v2/{repo}/manifests/latest")
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(image.manifest))
    assert response.headers["Docker-Content-Digest"] == image.digest
    assert response.headers["Content-Type"] == OCI_MANIFEST
    assert response.content == b""


def test_head_never_sends_a_body_on_the_wire(registry: RegistryEndpoint, client: httpx.Client) -> None:
    repo = unique_repo()
    push_image(client, repo)
    for path in (f"/v2/{repo}/manifests/latest", f"/v2/{repo}/manifests/missing", f"/v2/{repo}/blobs/{EMPTY_DIGEST}"):
        response = raw_request("127.0.0.1", registry.port, f"HEAD {path} HTTP/1.1\r\nHost: x\r\n".encode())
        assert response.body == b"", path


def test_repeated_accept_lines_are_merged(registry: RegistryEndpoint, client: httpx.Client) -> None:
    repo = unique_repo()
    children = [push_image(client, repo, tag=None) for _ in range(2)]
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [descriptor(OCI_MANIFEST, c.manifest) for c in children],
        }
    ).encode()
    assert push_manifest(client, repo, "multi", index, OCI_INDEX).status_code == 201
    head = f"GET /v2/{repo}/manifests/multi HTTP/1.1\r\nHost: x\r\n".encode()
    head += b"".join(f"Accept: {media_type}\r\n".encode() for media_type in CONTAINERS_IMAGE_ACCEPT)
    response = raw_request("127.0.0.1", registry.port, head)
    assert response.status == 200
    assert response.header("content-type") == OCI_INDEX
    assert response.body == index


def test_tag_whose_type_is_not_accepted_is_manifest_unknown(client: httpx.Client) -> None:
    repo = unique_repo()
    push_image(client, repo)
    response = client.get(f"/v2/{repo}/manifests/latest", headers={"Accept": DOCKER_MANIFEST})
    assert response.status_code == 404
    assert error_codes(response) == ["MANIFEST_UNKNOWN"]
    wildcard = client.get(f"/v2/{repo}/manifests/latest", headers={"Accept": "*/*"})
    assert wildcard.status_code == 200


def test_docker_schema2_manifest_and_manifest_list_are_accepted(client: httpx.Client) -> None:
    repo = unique_repo()
    amd64 = push_image(client, repo, tag=None, docker=True)
    arm64 = push_image(client, repo, tag=None, docker=True)
    manifest_list = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_LIST,
            "manifests": [
                descriptor(DOCKER_MANIFEST, amd64.manifest, platform={"architecture": "amd64", "os": "linux"}),
                descriptor(DOCKER_MANIFEST, arm64.manifest, platform={"architecture": "arm64", "os": "linux"}),
            ],
        }
    ).encode()
    assert push_manifest(client, repo, "latest", manifest_list, DOCKER_LIST).status_code == 201
    response = client.get(f"/v2/{repo}/manifests/latest", headers={"Accept": f"{DOCKER_LIST}, {DOCKER_MANIFEST}"})
    assert response.headers["Content-Type"] == DOCKER_LIST
    assert response.content == manifest_list
    child = client.get(f"/v2/{repo}/manifests/{amd64.digest}", headers={"Accept": DOCKER_MANIFEST})
    assert child.headers["Content-Type"] == DOCKER_MANIFEST


def test_index_with_a_missing_child_is_manifest_blob_unknown(client: httpx.Client) -> None:
    repo = unique_repo()
    present = push_image(client, repo, tag=None)
    ghost = image_manifest(b"{}", [b"x"])
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [descriptor(OCI_MANIFEST, present.manifest), descriptor(OCI_MANIFEST, ghost)],
        }
    ).encode()
    response = push_manifest(client, repo, "latest", index, OCI_INDEX)
    assert response.status_code == 400
    assert error_codes(response) == ["MANIFEST_BLOB_UNKNOWN"]
    assert response.json()["errors"][0]["detail"] == [{"digest": sha256(ghost), "kind": "manifest"}]


def test_manifest_with_a_missing_layer_is_manifest_blob_unknown_and_not_stored(client: httpx.Client) -> None:
    repo = unique_repo()
    config = random_bytes(50)
    push_blob(client, repo, config)
    manifest = image_manifest(config, [random_bytes(10)])
    response = push_manifest(client, repo, "latest", manifest, OCI_MANIFEST)
    assert response.status_code == 400
    assert error_codes(response) == ["MANIFEST_BLOB_UNKNOWN"]
    assert client.get(f"/v2/{repo}/manifests/latest").status_code == 404


def test_manifest_cannot_reference_a_blob_linked_only_elsewhere(client: httpx.Client) -> None:
    other, repo = unique_repo(), unique_repo()
    config, layer = random_bytes(50), random_bytes(50)
    push_blob(client, other, config)
    push_blob(client, other, layer)
    response = push_manifest(client, repo, "latest", image_manifest(config, [layer]), OCI_MANIFEST)
    assert error_codes(response) == ["MANIFEST_BLOB_UNKNOWN"]


def test_schema1_manifest_is_refused_with_a_clear_error(client: httpx.Client) -> None:
    schema1 = json.dumps({"schemaVersion": 1, "name": "a", "tag": "b", "fsLayers": [], "history": []}).encode()
    response = push_manifest(
        client, unique_repo(), "old", schema1, "application/vnd.docker.distribution.manifest.v1+prettyjws"
    )
    assert response.status_code == 400
    assert error_codes(response) == ["MANIFEST_INVALID"]
    assert "schema 1" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b"{not json", OCI_MANIFEST, "MANIFEST_INVALID"),
        (b"[]", OCI_MANIFEST, "MANIFEST_INVALID"),
        (
            json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode(),
            OCI_MANIFEST,
            "MANIFEST_INVALID",
        ),
        (
            json.dumps(
                {"schemaVersion": 2, "config": {"mediaType": "a/b", "digest": "sha256:00", "size": 1}, "layers": []}
            ).encode(),
            OCI_MANIFEST,
            "MANIFEST_INVALID",
        ),
        (json.dumps({"schemaVersion": 2, "config": {}, "layers": []}).encode(), "", "MANIFEST_INVALID"),
        (
            json.dumps({"schemaVersion": 3, "mediaType": OCI_MANIFEST, "config": {}, "layers": []}).encode(),
            OCI_MANIFEST,
            "MANIFEST_INVALID",
        ),
    ],
    ids=["bad-json", "not-object", "type-mismatch", "bad-digest", "no-media-type", "bad-schema-version"],
)
def test_malformed_manifests_are_manifest_invalid(
    client: httpx.Client, body: bytes, content_type: str, code: str
) -> None:
    repo = unique_repo()
    response = push_manifest(client, repo, "latest", body, content_type)
    assert response.status_code == 400
    assert error_codes(response) == [code]
    assert client.get(f"/v2/{repo}/manifests/latest").status_code == 404


def test_unsupported_media_type_is_415(client: httpx.Client) -> None:
    response = push_manifest(client, unique_repo(), "latest", b'{"schemaVersion": 2}', "text/plain")
    assert response.status_code == 415


def test_manifest_over_the_size_limit_is_413(client: httpx.Client) -> None:
    big = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "annotations": {"x": "y" * (4 * 1024 * 1024)}})
    response = push_manifest(client, unique_repo(), "big", big.encode(), OCI_MANIFEST)
    assert response.status_code == 413


@pytest.mark.parametrize("tag", ["-leading-dash", "a" * 129, "has+plus", ".dot"])
def test_invalid_tags_are_refused(client: httpx.Client, tag: str) -> None:
    repo = unique_repo()
    image = push_image(client, repo, tag=None)
    response = push_manifest(client, repo, tag, image.manifest, OCI_MANIFEST)
    assert response.status_code == 400
    assert error_codes(response) == ["TAG_INVALID"]


def test_unknown_manifest_in_known_repository_is_manifest_unknown(client: httpx.Client) -> None:
    repo = unique_repo()
    push_image(client, repo)
    assert error_codes(client.get(f"/v2/{repo}/manifests/nope")) == ["MANIFEST_UNKNOWN"]
    assert error_codes(client.get(f"/v2/{repo}/manifests/{sha256(b'x')}")) == ["MANIFEST_UNKNOWN"]


def test_manifest_of_unknown_repository_is_name_unknown(client: httpx.Client) -> None:
    response = client.get(f"/v2/{unique_repo()}/manifests/latest")
    assert response.status_code == 404
    assert error_codes(response) == ["NAME_UNKNOWN"]


def test_delete_by_tag_only_untags(client: httpx.Client) -> None:
    repo = unique_repo()
    image = push_image(client, repo, "a")
    assert push_manifest(client, repo, "b", image.manifest, OCI_MANIFEST).status_code == 201
    assert client.delete(f"/v2/{repo}/manifests/a").status_code == 202
    assert client.get(f"/v2/{repo}/manifests/a").status_code == 404
    assert client.get(f"/v2/{repo}/manifests/b").content == image.manifest
    assert client.get(f"/v2/{repo}/manifests/{image.digest}").status_code == 200


def test_delete_by_digest_removes_the_manifest_and_its_tags(client: httpx.Client) -> None:
    repo = unique_repo()
    image = push_image(client, repo, "a")
    push_manifest(client, repo, "b", image.manifest, OCI_MANIFEST)
    assert client.delete(f"/v2/{repo}/manifests/{image.digest}").status_code == 202
    assert client.get(f"/v2/{repo}/manifests/{image.digest}").status_code == 404
    assert client.get(f"/v2/{repo}/tags/list").json()["tags"] == []
    assert error_codes(client.delete(f"/v2/{repo}/manifests/{image.digest}")) == ["MANIFEST_UNKNOWN"]


def test_retagging_moves_the_tag(client: httpx.Client) -> None:
    repo = unique_repo()
    first = push_image(client, repo, "latest")
    second = push_image(client, repo, "latest")
    assert client.get(f"/v2/{repo}/manifests/latest").content == second.manifest
    assert client.get(f"/v2/{repo}/manifests/{first.digest}").content == first.manifest


def test_artifact_with_subject_answers_oci_subject_and_is_a_referrer(client: httpx.Client) -> None:
    repo = unique_repo()
    subject = push_image(client, repo)
    layer = random_bytes(300)
    push_blob(client, repo, layer)
    artifact = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.sbom",
            "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2},
            "layers": [descriptor("application/spdx+json", layer)],
            "subject": descriptor(OCI_MANIFEST, subject.manifest),
            "annotations": {"org.opencontainers.image.created": "2026-11-28T00:00:00Z"},
        }
    ).encode()
    response = push_manifest(client, repo, sha256(artifact), artifact, OCI_MANIFEST)
    assert response.status_code == 201, response.text
    assert response.headers["OCI-Subject"] == subject.digest
    referrers = client.get(f"/v2/{repo}/referrers/{subject.digest}")
    assert referrers.status_code == 200
    assert referrers.headers["Content-Type"] == OCI_INDEX
    assert referrers.json()["manifests"] == [
        {
            "mediaType": OCI_MANIFEST,
            "digest": sha256(artifact),
            "size": len(artifact),
            "artifactType": "application/vnd.example.sbom",
            "annotations": {"org.opencontainers.image.created": "2026-11-28T00:00:00Z"},
        }
    ]


def test_subject_may_be_pushed_before_it_exists(client: httpx.Client) -> None:
    repo = unique_repo()
    push_image(client, repo)
    absent = sha256(b"future manifest")
    artifact = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.sig",
            "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2},
            "layers": [],
            "subject": {"mediaType": OCI_MANIFEST, "digest": absent, "size": 10},
        }
    ).encode()
    assert push_manifest(client, repo, sha256(artifact), artifact, OCI_MANIFEST).status_code == 201
    assert [m["digest"] for m in client.get(f"/v2/{repo}/referrers/{absent}").json()["manifests"]] == [sha256(artifact)]
