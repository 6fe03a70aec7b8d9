"""Tag history, restores, immutable tags, quotas and delete semantics, from the outside.

One registry per database backend (SQLite and PostgreSQL: the SQL differs) with ``auth = basic``,
a site administrator, alice (who owns the ``alice`` namespace) and bob (pull on alice's
namespace). Each test uses repositories and namespaces of its own.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from portside.metadata.store import MetadataStore
from portside.metadata.tables import tag_history
from tests.support.accounts import (
    AuthServer,
    Caller,
    PortsideCli,
    SmallImage,
    audit_events,
    auth_env,
    basic_header,
    manifest_variant,
    push_small_image,
)
from tests.support.protocol import OCI_MANIFEST, error_codes, random_bytes, sha256

ADMIN = ("root", "root-password-1")
ALICE = ("alice", "alice-password-1")
BOB = ("bob", "bob-password-1")


@dataclass
class Site:
    """A registry with its accounts, and callers for each of them."""

    server: AuthServer
    cli: PortsideCli
    admin: Caller
    alice: Caller
    bob: Caller

    def api(self, who: tuple[str, str] | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A management API call as ``who`` (None: anonymous)."""
        headers = {"Authorization": basic_header(*who)} if who else {}
        return httpx.request(method, f"{self.server.url}/api/v1{path}", headers=headers, timeout=30.0, **kwargs)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One registry per backend for the module."""
    env = auth_env("basic")
    if request.param == "postgresql":
        env["PORTSIDE_DATABASE_URL"] = request.getfixturevalue("postgres").create_database()
    server = AuthServer(tmp_path_factory.mktemp(f"lifecycle-{request.param}") / "data", workers=2, env=env).start()
    try:
        cli = PortsideCli(server)
        cli.create_user(*ADMIN, admin=True)
        cli.create_user(*ALICE)
        cli.create_user(*BOB)
        cli.grant("user:bob", "namespace:alice", "pull")
        callers = [Caller(server.url, "basic", who) for who in (ADMIN, ALICE, BOB)]
        yield Site(server, cli, *callers)
        for caller in callers:
            caller.close()
    finally:
        server.stop()


def _repo(namespace: str = "alice") -> str:
    return f"{namespace}/app-{uuid.uuid4().hex[:8]}"


def _namespace() -> str:
    return f"ns{uuid.uuid4().hex[:10]}"


def _put(caller: Caller, repository: str, reference: str, manifest: bytes) -> httpx.Response:
    return caller.put(
        f"/v2/{repository}/manifests/{reference}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
    )


def _pulled(caller: Caller, repository: str, tag: str) -> bytes:
    response = caller.get(f"/v2/{repository}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
    assert response.status_code == 200, response.text
    return response.content


def _history(site: Site, who: tuple[str, str], repository: str, tag: str | None = None) -> list[dict[str, Any]]:
    response = site.api(who, "GET", f"/tag-history/{repository}", params={"tag": tag} if tag else {})
    assert response.status_code == 200, response.text
    changes: list[dict[str, Any]] = response.json()["changes"]
    return changes


def _restore(site: Site, who: tuple[str, str] | None, repository: str, tag: str, digest: str) -> httpx.Response:
    return site.api(who, "POST", "/tag-restores", json={"repository": repository, "tag": tag, "digest": digest})


def _age_history(site: Site, repository: str, by: timedelta) -> None:
    """Make a repository's tag history look older, straight in the database (time cannot be sped up)."""

    async def backdate() -> None:
        store = MetadataStore(
            site.server.env.get("PORTSIDE_DATABASE_URL")
            or f"sqlite+aiosqlite:///{(site.server.data_dir / 'portside.db').resolve()}"
        )
        try:
            async with store.writing() as conn:
                repository_id = await store.repository_id(conn, repository)
                rows = (
                    await conn.execute(
                        select(tag_history.c.id, tag_history.c.recorded_at).where(
                            tag_history.c.repository_id == repository_id
                        )
                    )
                ).all()
                # Computed here: SQLite keeps times as text, so no date arithmetic in SQL.
                for row in rows:
                    await conn.execute(
                        update(tag_history).where(tag_history.c.id == row.id).values(recorded_at=row.recorded_at - by)
                    )
        finally:
            await store.close()

    asyncio.run(backdate())


def _summary(changes: list[dict[str, Any]]) -> list[tuple[str, str, str | None, str | None, str | None]]:
    return [(c["tag"], c["action"], c["old_digest"], c["new_digest"], c["actor"]) for c in changes]


# Tag history


def test_history_records_create_move_delete_and_manifest_delete_with_the_actor(site: Site) -> None:
    repository = _repo()
    first = push_small_image(site.alice, repository, "v1")
    moved = manifest_variant(first)
    second_digest = sha256(moved)
    assert _put(site.alice, repository, "v1", moved).status_code == 201
    assert _put(site.alice, repository, "v1", moved).status_code == 201  # the same digest again: no change
    assert _put(site.admin, repository, "stable", moved).status_code == 201
    assert site.alice.delete(f"/v2/{repository}/manifests/v1").status_code == 202
    # Deleting a tag keeps its manifest: "stable" and the digest still serve it.
    assert _pulled(site.alice, repository, second_digest) == moved
    assert _pulled(site.alice, repository, "stable") == moved
    # Deleting the manifest by digest removes the tags left on it, each recorded.
    assert _put(site.alice, repository, "edge", moved).status_code == 201
    assert site.admin.delete(f"/v2/{repository}/manifests/{second_digest}").status_code == 202
    tags = site.alice.get(f"/v2/{repository}/tags/list").json()["tags"]
    assert tags == []

    changes = _history(site, ALICE, repository)
    assert _summary(changes) == [
        ("stable", "deleted", second_digest, None, "user:root"),
        ("edge", "deleted", second_digest, None, "user:root"),
        ("edge", "created", None, second_digest, "user:alice"),
        ("v1", "deleted", second_digest, None, "user:alice"),
        ("stable", "created", None, second_digest, "user:root"),
        ("v1", "moved", first.digest, second_digest, "user:alice"),
        ("v1", "created", None, first.digest, "user:alice"),
    ]
    only_v1 = _history(site, BOB, repository, "v1")
    assert [c["action"] for c in only_v1] == ["deleted", "moved", "created"]
    times = [c["recorded_at"] for c in changes]
    assert times == sorted(times, reverse=True)

    # The CLI shows the same history.
    lines = site.cli.run("tag", "history", repository, "v1").splitlines()
    assert len(lines) == 3
    assert "deleted" in lines[0] and "by user:alice" in lines[0]
    assert f"{first.digest} -> {second_digest}" in lines[1]


def test_anonymous_changes_on_an_open_registry_have_no_actor(start_server: Callable[..., AuthServer]) -> None:
    server = start_server()  # auth = "none"
    anyone = Caller(server.url, "basic")
    try:
        image = push_small_image(anyone, "team/app", "v1")
        assert anyone.delete("/v2/team/app/manifests/v1").status_code == 202
    finally:
        anyone.close()
    lines = PortsideCli(server).run("tag", "history", "team/app", "v1", "--json").splitlines()
    changes = [json.loads(line) for line in lines]
    assert [(c["action"], c["actor"]) for c in changes] == [("deleted", None), ("created", None)]
    assert changes[1]["new_digest"] == image.digest and changes[0]["in_window"] is True
    # `repository:tag`, as users write image references, names the same tag.
    assert PortsideCli(server).run("tag", "history", "team/app:v1", "--json").splitlines() == lines


def test_history_needs_pull(site: Site) -> None:
    repository = _repo("root")
    push_small_image(site.admin, repository, "v1")
    assert site.api(BOB, "GET", f"/tag-history/{repository}").status_code == 404
    assert site.api(None, "GET", f"/tag-history/{repository}").status_code == 404
    assert site.api(BOB, "GET", f"/tag-history/{_repo()}").status_code == 404  # no such repository


# Restores


def test_restoring_a_moved_and_a_deleted_tag_serves_the_old_bytes(site: Site) -> None:
    repository = _repo()
    old = push_small_image(site.alice, repository, "latest")
    newer = manifest_variant(old)
    assert _put(site.alice, repository, "latest", newer).status_code == 201
    assert _pulled(site.alice, repository, "latest") == newer

    restored = _restore(site, ALICE, repository, "latest", old.digest)
    assert restored.status_code == 200, restored.text
    assert restored.json() == {
        "repository": repository,
        "tag": "latest",
        "digest": old.digest,
        "previous": sha256(newer),
        "changed": True,
    }
    assert _pulled(site.bob, repository, "latest") == old.manifest
    # Restoring what the tag already has changes nothing and records nothing.
    again = _restore(site, ALICE, repository, "latest", old.digest)
    assert again.status_code == 200 and again.json()["changed"] is False

    # A deleted tag comes back the same way, here from the CLI.
    assert site.alice.delete(f"/v2/{repository}/manifests/latest").status_code == 202
    assert site.alice.get(f"/v2/{repository}/manifests/latest").status_code == 404
    output = site.cli.run("tag", "restore", repository, "latest", sha256(newer))
    assert f"restored to {sha256(newer)}" in output
    assert _pulled(site.alice, repository, "latest") == newer
    config = site.alice.get(f"/v2/{repository}/blobs/{old.config}")
    assert config.status_code == 200

    changes = _history(site, ALICE, repository, "latest")
    assert _summary(changes)[:3] == [
        ("latest", "restored", None, sha256(newer), "cli"),
        ("latest", "deleted", old.digest, None, "user:alice"),
        ("latest", "restored", sha256(newer), old.digest, "user:alice"),
    ]
    restores = audit_events(site.server, action="tag-restore", target=f"{repository}:latest")
    assert {e.actor for e in restores} == {"user:alice", "cli"}


def test_restore_refuses_digests_outside_the_history_or_gone(site: Site) -> None:
    repository = _repo()
    image = push_small_image(site.alice, repository, "v1")
    other = push_small_image(site.alice, repository, "other")
    # A digest that the repository holds but this tag never had.
    refused = _restore(site, ALICE, repository, "v1", other.digest)
    assert refused.status_code == 404 and error_codes(refused) == ["MANIFEST_UNKNOWN"]
    assert "not in the history" in refused.json()["errors"][0]["message"]
    # A digest the tag had, but whose manifest was deleted since.
    variant = manifest_variant(image)
    assert _put(site.alice, repository, "v1", variant).status_code == 201
    assert site.alice.delete(f"/v2/{repository}/manifests/{image.digest}").status_code == 202
    gone = _restore(site, ALICE, repository, "v1", image.digest)
    assert gone.status_code == 404 and "no longer exists" in gone.json()["errors"][0]["message"]
    assert _pulled(site.alice, repository, "v1") == variant
    # The CLI says so too, with a failure status.
    failed = site.cli.run("tag", "restore", repository, "v1", image.digest, check=False)
    assert "no longer exists" in failed


def test_restores_reach_back_only_through_the_history_window(site: Site) -> None:
    repository = _repo()
    old = push_small_image(site.alice, repository, "v1")
    newer = manifest_variant(old)
    assert _put(site.alice, repository, "v1", newer).status_code == 201
    _age_history(site, repository, timedelta(days=13))
    inside = site.api(ALICE, "GET", f"/tag-history/{repository}", params={"tag": "v1"}).json()
    assert set(inside["restorable_digests"]) == {old.digest, sha256(newer)}
    _age_history(site, repository, timedelta(days=2))  # 15 days old now, the window is 14
    outside = site.api(ALICE, "GET", f"/tag-history/{repository}", params={"tag": "v1"}).json()
    assert outside["restorable_digests"] == [] and len(outside["changes"]) == 2
    assert [c["in_window"] for c in outside["changes"]] == [False, False]
    whole = site.api(ALICE, "GET", f"/tag-history/{repository}").json()
    assert whole["restorable_digests"] is None and len(whole["changes"]) == 2
    refused = _restore(site, ALICE, repository, "v1", old.digest)
    assert refused.status_code == 404 and "within the history window" in refused.json()["errors"][0]["message"]
    # A newer change brings its own digests back into the window.
    assert _put(site.alice, repository, "v1", old.manifest).status_code == 201
    assert _restore(site, ALICE, repository, "v1", sha256(newer)).status_code == 200
    assert _pulled(site.alice, repository, "v1") == newer


def test_restore_needs_push(site: Site) -> None:
    repository = _repo()
    image = push_small_image(site.alice, repository, "v1")
    assert _put(site.alice, repository, "v1", manifest_variant(image)).status_code == 201
    denied = _restore(site, BOB, repository, "v1", image.digest)  # bob may pull only
    assert denied.status_code == 403 and error_codes(denied) == ["DENIED"]
    assert _restore(site, None, repository, "v1", image.digest).status_code == 401
    assert _history(site, BOB, repository, "v1")[0]["action"] == "moved"


# Immutable tags


def _add_rule(site: Site, who: tuple[str, str] | None, kind: str, scope: str, pattern: str) -> httpx.Response:
    return site.api(who, "POST", "/immutable-rules", json={"scope_kind": kind, "scope": scope, "pattern": pattern})


def test_immutable_tags_refuse_moves_and_deletes_naming_the_rule(site: Site) -> None:
    repository = _repo()
    image = push_small_image(site.alice, repository, "v1")
    variant = manifest_variant(image)
    assert _put(site.alice, repository, "v1", variant).status_code == 201  # moved before there is a rule
    created = _add_rule(site, ALICE, "namespace", "alice", "v*")
    assert created.status_code == 201, created.text
    rule = created.json()
    try:
        assert _put(site.alice, repository, "v1", variant).status_code == 201  # the same digest again is fine
        assert _put(site.alice, repository, "v2", image.manifest).status_code == 201  # so is a new matching tag

        def refused(response: httpx.Response) -> None:
            assert response.status_code == 403, response.text
            assert error_codes(response) == ["DENIED"]
            message = response.json()["errors"][0]["message"]
            assert f"immutable rule {rule['id']}" in message and "'v*'" in message

        refused(_put(site.alice, repository, "v1", image.manifest))
        refused(site.alice.delete(f"/v2/{repository}/manifests/v1"))
        refused(site.admin.delete(f"/v2/{repository}/manifests/{sha256(variant)}"))
        refused(_restore(site, ALICE, repository, "v1", image.digest))  # in its history, but a move
        refused(site.api(ADMIN, "DELETE", f"/repositories/{repository}"))
        # A tag the rule does not match moves freely, and can be restored.
        assert _put(site.alice, repository, "latest", variant).status_code == 201
        assert _put(site.alice, repository, "latest", image.manifest).status_code == 201
        assert _restore(site, ALICE, repository, "latest", sha256(variant)).status_code == 200
        assert _pulled(site.alice, repository, "v1") == variant
        assert [c["action"] for c in _history(site, ALICE, repository, "v1")] == ["moved", "created"]
    finally:
        assert site.api(ALICE, "DELETE", f"/immutable-rules/{rule['id']}").status_code == 204
    # Without the rule the tag moves again.
    assert _restore(site, ALICE, repository, "v1", image.digest).status_code == 200
    assert _pulled(site.alice, repository, "v1") == image.manifest
    events = audit_events(site.server, target="namespace:alice")
    assert {"immutable-rule-add", "immutable-rule-remove"} <= {e.action for e in events}


def test_concurrent_first_pushes_of_an_immutable_tag_cannot_both_win(site: Site) -> None:
    repository = _repo()
    image = push_small_image(site.alice, repository, "base")
    variants = [manifest_variant(image) for _ in range(2)]
    rule = _add_rule(site, ALICE, "repository", repository, "r*").json()
    pushers = [Caller(site.server.url, "basic", ALICE) for _ in variants]
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            for round_ in range(8):
                tag = f"r{round_}"
                answers = list(pool.map(_put, pushers, [repository] * 2, [tag] * 2, variants))
                statuses = sorted(answer.status_code for answer in answers)
                assert statuses == [201, 403], [answer.text for answer in answers]
                winner = variants[[answer.status_code for answer in answers].index(201)]
                assert _pulled(site.alice, repository, tag) == winner
                assert [c["action"] for c in _history(site, ALICE, repository, tag)] == ["created"]
    finally:
        for pusher in pushers:
            pusher.close()
        site.api(ALICE, "DELETE", f"/immutable-rules/{rule['id']}")


def test_repository_rules_and_who_may_manage_rules(site: Site) -> None:
    repository = _repo()
    image = push_small_image(site.alice, repository, "release-1")
    assert _add_rule(site, BOB, "namespace", "alice", "x*").status_code == 403  # bob only pulls
    assert _add_rule(site, BOB, "repository", repository, "x*").status_code == 403
    assert _add_rule(site, None, "namespace", "alice", "x*").status_code == 401
    assert _add_rule(site, ALICE, "repository", repository, "bad pattern").status_code == 400
    created = _add_rule(site, ALICE, "repository", repository, "release-*")
    assert created.status_code == 201, created.text
    assert _add_rule(site, ALICE, "repository", repository, "release-*").status_code == 409
    rule_id = created.json()["id"]
    listed = site.api(BOB, "GET", "/immutable-rules", params={"repository": repository})
    assert [r["id"] for r in listed.json()] == [rule_id]
    assert site.api(BOB, "GET", "/immutable-rules").status_code == 403  # every rule: site admins
    assert rule_id in [r["id"] for r in site.api(ADMIN, "GET", "/immutable-rules").json()]
    assert site.api(BOB, "DELETE", f"/immutable-rules/{rule_id}").status_code == 403

    response = _put(site.alice, repository, "release-1", manifest_variant(image))
    assert response.status_code == 403 and "'release-*'" in response.json()["errors"][0]["message"]
    # Other repositories of the namespace are not concerned.
    other = _repo()
    pushed = push_small_image(site.alice, other, "release-1")
    assert _put(site.alice, other, "release-1", manifest_variant(pushed)).status_code == 201

    # The CLI lists, adds and removes rules too.
    assert f"{rule_id}  repository {repository}  release-*" in site.cli.run("immutable", "list", "--namespace", "alice")
    added = site.cli.run("immutable", "add", "v9*", "--repository", repository)
    cli_rule = int(added.split("rule ")[1].split(":")[0])
    assert site.cli.run("immutable", "remove", str(cli_rule)).startswith("removed immutable rule")
    assert site.api(ALICE, "DELETE", f"/immutable-rules/{rule_id}").status_code == 204
    assert site.api(ALICE, "DELETE", f"/immutable-rules/{rule_id}").status_code == 404


# Quotas


def _set_quota(site: Site, namespace: str, limit: int | None) -> httpx.Response:
    return site.api(ADMIN, "PUT", f"/quotas/{namespace}", json={"limit_bytes": limit})


def _usage(site: Site, namespace: str) -> int:
    response = site.api(ADMIN, "GET", f"/quotas/{namespace}")
    assert response.status_code == 200, response.text
    used: int = response.json()["used_bytes"]
    return used


def _assert_over_quota(response: httpx.Response, namespace: str) -> None:
    assert response.status_code == 403, response.text
    assert error_codes(response) == ["DENIED"]
    message = response.json()["errors"][0]["message"]
    assert f"quota of namespace {namespace!r} exceeded" in message and "needs" in message


def test_quota_refuses_monolithic_chunked_and_mounted_pushes_before_storing(site: Site) -> None:
    namespace = _namespace()
    repository = f"{namespace}/app"
    assert _set_quota(site, namespace, 10_000).status_code == 200
    first = random_bytes(6_000)
    response = site.admin.post(f"/v2/{repository}/blobs/uploads/", params={"digest": sha256(first)}, content=first)
    assert response.status_code == 201, response.text
    assert _usage(site, namespace) == 6_000

    # Monolithic, with its Content-Length known up front.
    second = random_bytes(6_000)
    refused = site.admin.post(f"/v2/{repository}/blobs/uploads/", params={"digest": sha256(second)}, content=second)
    _assert_over_quota(refused, namespace)
    assert "needs 6000 bytes" in refused.json()["errors"][0]["message"]
    assert "uses 6000 of its 10000 bytes" in refused.json()["errors"][0]["message"]
    assert site.admin.head(f"/v2/{repository}/blobs/{sha256(second)}").status_code == 404

    # Chunked: a PATCH that would go over is refused, smaller ones pass, the commit is checked again.
    started = site.admin.post(f"/v2/{repository}/blobs/uploads/")
    location = started.headers["Location"]
    _assert_over_quota(site.admin.patch(location, content=second), namespace)
    assert site.admin.patch(location, content=second[:3_000]).status_code == 202
    streamed = site.admin.put(
        location,
        params={"digest": sha256(second)},
        content=iter([second[3_000:]]),  # no Content-Length
    )
    _assert_over_quota(streamed, namespace)
    assert site.admin.head(f"/v2/{repository}/blobs/{sha256(second)}").status_code == 404
    status = site.admin.get(location)
    assert status.status_code == 204 and status.headers["Range"] == "0-5999"  # the session is kept, uncommitted

    # A mount from another namespace adds the blob to this one: refused too.
    elsewhere = f"{_namespace()}/source"
    response = site.admin.post(f"/v2/{elsewhere}/blobs/uploads/", params={"digest": sha256(second)}, content=second)
    assert response.status_code == 201
    mount = site.admin.post(f"/v2/{repository}/blobs/uploads/", params={"mount": sha256(second), "from": elsewhere})
    _assert_over_quota(mount, namespace)
    assert site.admin.head(f"/v2/{repository}/blobs/{sha256(second)}").status_code == 404
    assert _usage(site, namespace) == 6_000

    # A blob the namespace already holds costs nothing more: linking it elsewhere in it is fine.
    shared = site.admin.post(
        f"/v2/{namespace}/other/blobs/uploads/", params={"mount": sha256(first), "from": repository}
    )
    assert shared.status_code == 201
    again = site.admin.post(f"/v2/{namespace}/third/blobs/uploads/", params={"digest": sha256(first)}, content=first)
    assert again.status_code == 201
    assert _usage(site, namespace) == 6_000

    # Raised, the same push goes through; usage shows it once.
    assert _set_quota(site, namespace, 20_000).json()["limit_bytes"] == 20_000
    finished = site.admin.put(location, params={"digest": sha256(second)})
    assert finished.status_code == 201, finished.text
    assert _usage(site, namespace) == 12_000
    events = audit_events(site.server, action="quota-set", target=namespace)
    assert [e.detail["limit_bytes"] for e in events] == [20_000, 10_000]


def test_quota_counts_manifests_and_is_visible_to_the_namespace(site: Site) -> None:
    namespace = _namespace()
    assert site.api(ALICE, "PUT", f"/quotas/{namespace}", json={"limit_bytes": 1}).status_code == 403
    site.cli.run("quota", "set", namespace, "1M")
    image = push_small_image(site.admin, f"{namespace}/app", "v1", layer_size=2_000)
    push_small_image(site.admin, f"{namespace}/app", "v2", layer_size=2_000)
    body = site.api(ADMIN, "GET", f"/quotas/{namespace}").json()
    config_size = len(site.admin.get(f"/v2/{namespace}/app/blobs/{image.config}").content)
    assert body["limit_bytes"] == 1024**2 and body["source"] == "namespace"
    assert 2 * (2_000 + config_size + len(image.manifest)) - 4 <= body["used_bytes"]
    assert body["used_bytes"] <= 2 * (2_000 + config_size + len(image.manifest)) + 4
    assert body["available_bytes"] == 1024**2 - body["used_bytes"]
    shown = site.cli.run("quota", "show", namespace)
    assert f"used {body['used_bytes']} bytes of {1024**2} bytes" in shown
    # alice sees her own namespace's usage, bob (pull on it) too; not others'.
    assert site.api(ALICE, "GET", "/quotas/alice").json()["limit_bytes"] is None
    assert site.api(BOB, "GET", "/quotas/alice").status_code == 200
    assert site.api(BOB, "GET", f"/quotas/{namespace}").status_code == 403
    # A manifest is refused when it alone would go over.
    site.cli.run("quota", "set", namespace, str(body["used_bytes"] + 10))
    refused = _put(site.admin, f"{namespace}/app", "v3", manifest_variant(image))
    _assert_over_quota(refused, namespace)
    assert "unlimited" in site.cli.run("quota", "set", namespace, "none")
    assert site.api(ADMIN, "GET", f"/quotas/{namespace}").json()["limit_bytes"] is None


# Repository deletes


def test_deleting_a_repository_removes_all_of_it_and_needs_delete(site: Site) -> None:
    repository = _repo()
    image: SmallImage = push_small_image(site.alice, repository, "v1")
    push_small_image(site.alice, repository, "v2")
    assert site.api(BOB, "DELETE", f"/repositories/{repository}").status_code == 403
    assert site.api(None, "DELETE", f"/repositories/{repository}").status_code == 401
    deleted = site.api(ALICE, "DELETE", f"/repositories/{repository}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"repository": repository, "tags": 2, "manifests": 2, "blob_links": 4}
    assert error_codes(site.alice.get(f"/v2/{repository}/tags/list")) == ["NAME_UNKNOWN"]
    assert site.alice.get(f"/v2/{repository}/manifests/{image.digest}").status_code == 404
    assert site.alice.head(f"/v2/{repository}/blobs/{image.layer}").status_code == 404
    assert site.api(ALICE, "GET", f"/repositories/{repository}").status_code == 404
    assert site.api(ALICE, "DELETE", f"/repositories/{repository}").status_code == 404
    events = audit_events(site.server, action="repository-delete", target=repository)
    assert [e.actor for e in events] == ["user:alice"]

    # From the CLI, and the name can be pushed to afresh.
    push_small_image(site.alice, repository, "v1")
    output = site.cli.run("repo", "delete", repository, "--yes")
    assert output == f"deleted {repository}: 1 tag(s), 1 manifest(s), 2 blob link(s)"
    assert site.api(ALICE, "GET", f"/tag-history/{repository}").status_code == 404


def test_registry_deletes_still_need_the_delete_role(site: Site) -> None:
    repository = _repo()
    image = push_small_image(site.alice, repository, "v1")
    assert site.bob.delete(f"/v2/{repository}/manifests/v1").status_code == 403
    assert site.bob.delete(f"/v2/{repository}/manifests/{image.digest}").status_code == 403
    assert _pulled(site.bob, repository, "v1") == image.manifest
    assert json.loads(_pulled(site.bob, repository, "v1"))["layers"][0]["digest"] == image.layer
