"""Retention policies end to end: dry runs against real runs, immutable tags, referrers, pulls, schedule, CLI.

Retention is evaluated the same way whatever the database, so these run on one SQLite server
(a single worker, so that the run sees the pulls its process buffered).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from portside.cli import cli
from tests.support.gc_registry import ADMIN, lifecycle_env, run_gc
from tests.support.protocol import (
    OCI_EMPTY,
    OCI_MANIFEST,
    descriptor,
    push_blob,
    push_image,
    push_manifest,
    sha256,
    unique_repo,
)
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One SQLite registry with an administrator, schedules off."""
    process = ServerProcess(tmp_path_factory.mktemp("retention") / "data", workers=1, env=lifecycle_env(1)).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def admin(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60, auth=ADMIN) as client:
        yield client


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def _add_policy(admin: httpx.Client, repo: str, **fields: Any) -> dict[str, Any]:
    response = admin.post("/api/v1/retention/policies", json={"scope_kind": "repository", "scope": repo, **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _run(admin: httpx.Client, policy_id: int, *, dry_run: bool) -> list[tuple[str, str]]:
    response = admin.post("/api/v1/retention/runs", json={"policy_id": policy_id, "dry_run": dry_run})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "done" and body["dry_run"] is dry_run
    return sorted((item["kind"], item["reference"]) for item in body["removed"])


def _tags(http: httpx.Client, repo: str) -> list[str]:
    return sorted(http.get(f"/v2/{repo}/tags/list").json()["tags"] or [])


def test_dry_run_shows_exactly_what_a_run_then_removes(admin: httpx.Client, http: httpx.Client) -> None:
    repo = unique_repo("ret")
    for tag in ["build-1", "build-2", "build-3", "build-4", "stable"]:
        push_image(http, repo, tag, layers=1, layer_size=128)
    stray = push_image(http, repo, None, layers=1, layer_size=128)
    policy = _add_policy(admin, repo, tag_pattern="build-*", keep_last=2, untagged_after=0)

    dry = _run(admin, policy["id"], dry_run=True)
    assert dry == [("manifest", stray.digest), ("tag", "build-1"), ("tag", "build-2")]
    assert _tags(http, repo) == ["build-1", "build-2", "build-3", "build-4", "stable"]
    assert http.get(f"/v2/{repo}/manifests/{stray.digest}").status_code == 200

    assert _run(admin, policy["id"], dry_run=False) == dry
    assert _tags(http, repo) == ["build-3", "build-4", "stable"]
    assert http.get(f"/v2/{repo}/manifests/{stray.digest}").status_code == 404
    # The deletes went through the tag-delete path: recorded in history as retention's.
    history = admin.get(f"/api/v1/tag-history/{repo}").json()["changes"]
    deleted = {c["tag"] for c in history if c["action"] == "deleted" and c["actor"] == "retention"}
    assert deleted == {"build-1", "build-2"}
    runs = admin.get("/api/v1/retention/runs").json()["runs"]
    assert [r["dry_run"] for r in runs[:2]] == [False, True]
    # The manifests of the removed tags are untagged now: the next run removes them, then nothing.
    second = _run(admin, policy["id"], dry_run=False)
    assert [kind for kind, _ in second] == ["manifest", "manifest"]
    assert _run(admin, policy["id"], dry_run=False) == []


def test_immutable_tags_are_never_removed(admin: httpx.Client, http: httpx.Client) -> None:
    repo = unique_repo("ret")
    for tag in ["v1.0", "v1.1", "nightly-1", "nightly-2"]:
        push_image(http, repo, tag, layers=1, layer_size=128)
    rule = admin.post("/api/v1/immutable-rules", json={"scope_kind": "repository", "scope": repo, "pattern": "v*"})
    assert rule.status_code == 201, rule.text
    policy = _add_policy(admin, repo, keep_last=0)
    assert _run(admin, policy["id"], dry_run=True) == [("tag", "nightly-1"), ("tag", "nightly-2")]
    _run(admin, policy["id"], dry_run=False)
    assert _tags(http, repo) == ["v1.0", "v1.1"]


def _push_referrer(http: httpx.Client, repo: str, subject: bytes, reference: str | None, note: str) -> str:
    empty = b"{}"
    push_blob(http, repo, empty)
    signature = b"signature bytes " + subject[:16]
    push_blob(http, repo, signature)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.signature",
            "config": descriptor(OCI_EMPTY, empty),
            "layers": [descriptor("application/vnd.example.signature", signature)],
            "subject": descriptor(OCI_MANIFEST, subject),
            "annotations": {"org.example.note": note},
        }
    ).encode()
    digest = sha256(manifest)
    response = push_manifest(http, repo, reference or digest, manifest, OCI_MANIFEST)
    assert response.status_code == 201, response.text
    return digest


def test_referrers_of_kept_manifests_stay(admin: httpx.Client, http: httpx.Client) -> None:
    repo = unique_repo("ret")
    image = push_image(http, repo, "release", layers=1, layer_size=128)
    tagged_signature = _push_referrer(http, repo, image.manifest, "sig-release", "tagged")
    untagged_sbom = _push_referrer(http, repo, image.manifest + b" ", None, "sbom")  # subject unknown: goes
    untagged_signature = _push_referrer(http, repo, image.manifest, None, "untagged")
    policy = _add_policy(admin, repo, tag_pattern="sig-*", keep_last=0, untagged_after=0)
    removed = _run(admin, policy["id"], dry_run=False)
    assert removed == [("manifest", untagged_sbom)]
    assert _tags(http, repo) == ["release", "sig-release"]
    for digest in (tagged_signature, untagged_signature):
        assert http.get(f"/v2/{repo}/manifests/{digest}").status_code == 200


def test_recently_pulled_tags_are_kept(admin: httpx.Client, http: httpx.Client) -> None:
    repo = unique_repo("ret")
    for tag in ["a", "b", "c"]:
        push_image(http, repo, tag, layers=1, layer_size=128)
    assert http.get(f"/v2/{repo}/manifests/a", headers={"Accept": OCI_MANIFEST}).status_code == 200
    policy = _add_policy(admin, repo, keep_last=0, keep_pulled_within=3600)
    assert _run(admin, policy["id"], dry_run=False) == [("tag", "b"), ("tag", "c")]
    assert _tags(http, repo) == ["a"]


def test_policies_are_managed_by_admins_of_their_scope(
    admin: httpx.Client, http: httpx.Client, server: ServerProcess
) -> None:
    repo = unique_repo("ret")
    push_image(http, repo, "x", layers=1, layer_size=64)
    anonymous = http.post(
        "/api/v1/retention/policies", json={"scope_kind": "repository", "scope": repo, "keep_last": 1}
    )
    assert anonymous.status_code == 401
    empty = admin.post("/api/v1/retention/policies", json={"scope_kind": "repository", "scope": repo})
    assert empty.status_code == 400 and "keep_last" in empty.text
    bad_pattern = admin.post(
        "/api/v1/retention/policies", json={"scope_kind": "namespace", "scope": "a/b", "keep_last": 1}
    )
    assert bad_pattern.status_code == 400
    policy = _add_policy(admin, repo, keep_last=1)
    listed = admin.get("/api/v1/retention/policies", params={"scope_kind": "repository", "scope": repo}).json()
    assert [p["id"] for p in listed["policies"]] == [policy["id"]]
    assert admin.delete(f"/api/v1/retention/policies/{policy['id']}").status_code == 200
    assert admin.delete(f"/api/v1/retention/policies/{policy['id']}").status_code == 404


def _cli(server: ServerProcess, *args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--data-dir", str(server.data_dir)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_retention_cli_add_list_run_remove(server: ServerProcess, http: httpx.Client) -> None:
    repo = unique_repo("retcli")
    for tag in ["old-1", "old-2", "old-3"]:
        push_image(http, repo, tag, layers=1, layer_size=64)
    added = _cli(server, "retention", "add", repo, "--tags", "old-*", "--keep-last", "1")
    policy_id = added.split()[2].rstrip(":")
    assert policy_id in _cli(server, "retention", "list")
    dry = json.loads(_cli(server, "retention", "run", "--policy", policy_id, "--dry-run", "--json"))
    assert sorted(item["reference"] for item in dry["removed"]) == ["old-1", "old-2"]
    assert _tags(http, repo) == ["old-1", "old-2", "old-3"]
    output = _cli(server, "retention", "run", "--policy", policy_id)
    assert "removed 2" in output
    assert _tags(http, repo) == ["old-3"]
    _cli(server, "retention", "remove", policy_id)
    assert f"{policy_id}:" not in _cli(server, "retention", "list")


def test_the_schedule_applies_policies(start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    env = {**lifecycle_env(1), "PORTSIDE_RETENTION_INTERVAL_SECONDS": "1"}
    scheduled = start_server(tmp_path / "scheduled", env=env)
    repo = unique_repo("sched")
    with (
        httpx.Client(base_url=scheduled.url, timeout=60) as http,
        httpx.Client(base_url=scheduled.url, timeout=60, auth=ADMIN) as admin,
    ):
        push_image(http, repo, "one", layers=1, layer_size=64)
        push_image(http, repo, "two", layers=1, layer_size=64)
        _add_policy(admin, repo, tag_pattern="one", keep_last=0)
        deadline = time.monotonic() + 60
        while _tags(http, repo) != ["two"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _tags(http, repo) == ["two"]
        runs = admin.get("/api/v1/retention/runs").json()["runs"]
        removed_by_schedule = [
            item
            for run in runs
            if run["trigger"] == "schedule"
            for item in run["removed"]
            if item["reference"] == "one"
        ]
        assert removed_by_schedule == [{"repository": repo, "kind": "tag", "reference": "one"}]


def test_a_namespace_policy_covers_every_repository_of_the_namespace(admin: httpx.Client, http: httpx.Client) -> None:
    namespace = unique_repo("ns").replace("/", "")
    inside = [f"{namespace}/one", f"{namespace}/two/deep"]
    outside = f"{namespace}x/other"
    for repo in [*inside, outside]:
        for tag in ["pr-1", "pr-2"]:
            push_image(http, repo, tag, layers=1, layer_size=64)
    response = admin.post(
        "/api/v1/retention/policies",
        json={"scope_kind": "namespace", "scope": namespace, "tag_pattern": "pr-*", "keep_last": 1},
    )
    assert response.status_code == 201, response.text
    removed = _run(admin, response.json()["id"], dry_run=False)
    assert removed == [("tag", "pr-1"), ("tag", "pr-1")]
    for repo in inside:
        assert _tags(http, repo) == ["pr-2"]
    assert _tags(http, outside) == ["pr-1", "pr-2"]


def test_garbage_collection_keeps_what_retention_keeps(admin: httpx.Client, http: httpx.Client) -> None:
    young, pulled, unprotected = unique_repo("retgc"), unique_repo("retgc"), unique_repo("retgc")
    waiting = push_image(http, young, None, layers=1, layer_size=64)
    recently_pulled = push_image(http, pulled, None, layers=1, layer_size=64)
    garbage = push_image(http, unprotected, None, layers=1, layer_size=64)
    _add_policy(admin, young, keep_last=5, untagged_after=3600)
    _add_policy(admin, pulled, keep_last=5, keep_pulled_within=3600)
    assert http.get(f"/v2/{pulled}/manifests/{recently_pulled.digest}").status_code == 200
    time.sleep(2)  # past the one-second grace period
    done = run_gc(admin)
    assert done["status"] == "done"
    assert http.get(f"/v2/{young}/manifests/{waiting.digest}").status_code == 200
    assert http.get(f"/v2/{pulled}/manifests/{recently_pulled.digest}").status_code == 200
    for data in [recently_pulled.config, *recently_pulled.layers]:
        assert http.get(f"/v2/{pulled}/blobs/{sha256(data)}").content == data
    assert http.get(f"/v2/{unprotected}/manifests/{garbage.digest}").status_code == 404
