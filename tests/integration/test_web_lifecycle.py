"""The web UI's lifecycle pages as a browser without scripts sees them (plain form posts).

Tag history and restores, immutable tag rules (repository and namespace), retention policies
and runs, repository deletes, quotas, and garbage collection in the admin area: every form's
answers (redirects, statuses, messages) and refusals (non-admins, CSRF, immutable rules), checked
against the registry API. One server per database (SQLite, PostgreSQL): the pages compare
recorded times with the history window, which each database returns in its own way.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.protocol import push_image
from tests.support.server import ServerProcess
from tests.support.web import (
    ADMIN,
    PASSWORD,
    Browser,
    new_user,
    notice_of,
    signed_in,
    unique,
    web_server,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server per database in Basic mode; GC has no grace period so a dry run has something to report."""
    yield from web_server(
        tmp_path_factory,
        "web-lifecycle",
        request,
        PORTSIDE_GC_GRACE_SECONDS="1",
        PORTSIDE_GC_INTERVAL_SECONDS="0",
        PORTSIDE_RETENTION_INTERVAL_SECONDS="0",
    )


@pytest.fixture
def browser(server: ServerProcess) -> Iterator[Browser]:
    """A fresh browser (no cookies)."""
    with Browser(server) as client:
        yield client


def manifest_digest(server: ServerProcess, user: str, repository: str, tag: str) -> str | None:
    """What ``repository:tag`` serves now (None if it is gone), through the registry API."""
    response = httpx.head(
        f"{server.url}/v2/{repository}/manifests/{tag}",
        auth=(user, PASSWORD),
        headers={"accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=30,
    )
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return response.headers["docker-content-digest"]


def wait_for_gc(server: ServerProcess, run_id: int) -> None:
    """Until the background run has finished (polled through the API, as a script would)."""
    for _ in range(600):
        if httpx.get(f"{server.url}/api/v1/gc/runs/{run_id}", auth=ADMIN, timeout=30).json()["status"] != "running":
            return
        time.sleep(0.1)
    raise AssertionError(f"garbage collection run {run_id} did not finish")


def test_tag_history_lists_changes_and_restores_moved_and_deleted_tags(server: ServerProcess, browser: Browser) -> None:
    owner, reader = new_user(server), new_user(server)
    repository = f"{owner}/app"
    with httpx.Client(base_url=server.url, auth=(owner, PASSWORD), timeout=30) as client:
        first = push_image(client, repository, "v1", layers=1, layer_size=64)
        second = push_image(client, repository, "v1", layers=1, layer_size=64)
        push_image(client, repository, "old", layers=1, layer_size=64)
        assert client.delete(f"/v2/{repository}/manifests/old").status_code in (202, 404)
    grant = {"subject": f"user:{reader}", "role": "pull"}
    assert httpx.put(
        f"{server.url}/api/v1/permissions/repositories/{repository}", json=grant, auth=(owner, PASSWORD)
    ).status_code in (200, 201, 204)

    browser.sign_in(owner)
    history = browser.get(f"/r/{repository}/-/history/v1")
    assert history.status_code == 200
    assert ">moved<" in history.text and ">created<" in history.text
    assert owner in history.text
    assert first.digest in history.text and second.digest in history.text
    # The current digest is not offered; the earlier one is.
    assert f'name="digest" value="{first.digest}"' in history.text
    assert f'name="digest" value="{second.digest}"' not in history.text

    restored = browser.post(f"/r/{repository}/-/restore", {"tag": "v1", "digest": first.digest})
    assert notice_of(restored) == f"/r/{repository}/-/history/v1?done=tag-restored"
    assert manifest_digest(server, owner, repository, "v1") == first.digest
    after = browser.get(f"/r/{repository}/-/history/v1?done=tag-restored").text
    assert "The tag was restored" in after and ">restored<" in after

    # The repository page offers the deleted tag back; restoring it serves it again.
    page = browser.get(f"/r/{repository}").text
    assert 'id="deleted-tags"' in page and "/-/history/old" in page
    assert manifest_digest(server, owner, repository, "old") is None
    deleted_digest = re.search(r'name="tag" value="old">\s*<input type="hidden" name="digest" value="([^"]+)"', page)
    assert deleted_digest is not None
    assert notice_of(browser.post(f"/r/{repository}/-/restore", {"tag": "old", "digest": deleted_digest.group(1)}))
    assert manifest_digest(server, owner, repository, "old") == deleted_digest.group(1)

    # A digest never in the tag's history is refused with the service's message, on the page.
    bogus = "sha256:" + "0" * 64
    refused = browser.post(f"/r/{repository}/-/restore", {"tag": "v1", "digest": bogus})
    assert refused.status_code == 404
    assert 'role="alert"' in refused.text

    # A reader sees the history but no restore buttons, and a restore post is refused.
    other = signed_in(server, reader)
    seen = other.get(f"/r/{repository}/-/history/v1")
    assert seen.status_code == 200 and "Restore" not in seen.text.split('id="history"')[1]
    assert other.post(f"/r/{repository}/-/restore", {"tag": "v1", "digest": second.digest}).status_code == 403
    assert manifest_digest(server, owner, repository, "v1") == first.digest
    # A restore without the CSRF token changes nothing.
    assert (
        browser.post(f"/r/{repository}/-/restore", {"tag": "v1", "digest": second.digest}, csrf=False).status_code
        == 403
    )
    assert manifest_digest(server, owner, repository, "v1") == first.digest
    # Anonymous viewers of a private repository get 404, as for the repository page.
    assert httpx.get(f"{server.url}/r/{repository}/-/history").status_code == 404


def test_repository_rules_refuse_moves_and_deletes_and_the_rules_can_be_removed(
    server: ServerProcess, browser: Browser
) -> None:
    owner, friend = new_user(server), new_user(server)
    repository = f"{owner}/rel"
    with httpx.Client(base_url=server.url, auth=(owner, PASSWORD), timeout=30) as client:
        push_image(client, repository, "v1.0", layers=1, layer_size=64)
    browser.sign_in(owner)
    settings = f"/r/{repository}/-/settings"
    assert 'id="rules-heading"' in browser.get(settings).text

    bad = browser.post(settings + "/add-rule", {"pattern": "v<1>"})
    assert bad.status_code == 400
    assert 'id="rules-error"' in bad.text and 'value="v&lt;1&gt;"' in bad.text
    assert notice_of(browser.post(settings + "/add-rule", {"pattern": "v*"})) == f"{settings}?done=rule-added"
    listed = httpx.get(
        f"{server.url}/api/v1/immutable-rules", params={"repository": repository}, auth=(owner, PASSWORD)
    )
    assert [rule["pattern"] for rule in listed.json()] == ["v*"]
    duplicate = browser.post(settings + "/add-rule", {"pattern": "v*"})
    assert duplicate.status_code == 409

    # A push moving the tag is refused, naming the rule.
    with (
        httpx.Client(base_url=server.url, auth=(owner, PASSWORD), timeout=30) as client,
        pytest.raises(AssertionError, match="v\\*"),
    ):
        push_image(client, repository, "v1.0", layers=1, layer_size=64)

    # Deleting the repository is refused with the rule's message shown next to the form.
    wrong_name = browser.post(settings + "/delete", {"confirm": "nope"})
    assert wrong_name.status_code == 400 and "to confirm deleting the repository" in wrong_name.text
    refused = browser.post(settings + "/delete", {"confirm": repository})
    assert refused.status_code == 403
    assert 'id="delete-error"' in refused.text and "protected by" in refused.text and "v*" in refused.text

    # Someone who is not an admin of the repository may not add or remove rules.
    rule_id = listed.json()[0]["id"]
    friend_browser = signed_in(server, friend)
    assert friend_browser.post(settings + "/add-rule", {"pattern": "x*"}).status_code == 404
    assert friend_browser.post(settings + "/remove-rule", {"rule": str(rule_id)}).status_code in (403, 404)

    assert notice_of(browser.post(settings + "/remove-rule", {"rule": str(rule_id)})).endswith("done=rule-removed")
    deleted = browser.post(settings + "/delete", {"confirm": repository})
    assert notice_of(deleted) == f"/n/{owner}?done=repository-deleted"
    assert "The repository was deleted" in browser.get(f"/n/{owner}?done=repository-deleted").text
    assert httpx.get(f"{server.url}/v2/{repository}/tags/list", auth=(owner, PASSWORD)).status_code == 404


def test_repository_delete_needs_the_delete_role(server: ServerProcess) -> None:
    owner, pusher = new_user(server), new_user(server)
    repository = f"{owner}/keep"
    with httpx.Client(base_url=server.url, auth=(owner, PASSWORD), timeout=30) as client:
        push_image(client, repository, "latest", layers=1, layer_size=64)
    grant = {"subject": f"user:{pusher}", "role": "push"}
    assert httpx.put(
        f"{server.url}/api/v1/permissions/repositories/{repository}", json=grant, auth=(owner, PASSWORD)
    ).status_code in (200, 201, 204)
    other = signed_in(server, pusher)
    assert other.get(f"/r/{repository}/-/settings").status_code == 403
    assert other.post(f"/r/{repository}/-/settings/delete", {"confirm": repository}).status_code == 403
    assert httpx.get(f"{server.url}/v2/{repository}/tags/list", auth=(owner, PASSWORD)).status_code == 200


def test_namespace_settings_rules_and_retention_dry_run(server: ServerProcess, browser: Browser) -> None:
    owner, stranger = new_user(server), new_user(server)
    repository = f"{owner}/builds"
    with httpx.Client(base_url=server.url, auth=(owner, PASSWORD), timeout=30) as client:
        for tag in ("build-1", "build-2", "build-3"):
            push_image(client, repository, tag, layers=1, layer_size=64)
    browser.sign_in(owner)
    settings = f"/n/{owner}/-/settings"
    page = browser.get(settings)
    assert page.status_code == 200 and "Storage used" in page.text
    assert 'id="namespace-settings-link"' in browser.get(f"/n/{owner}").text

    assert notice_of(browser.post(settings + "/add-rule", {"pattern": "release-*"})).endswith("done=rule-added")
    rules = httpx.get(f"{server.url}/api/v1/immutable-rules", params={"namespace": owner}, auth=(owner, PASSWORD))
    assert [(r["scope_kind"], r["pattern"]) for r in rules.json()] == [("namespace", "release-*")]

    empty = browser.post(settings + "/add-policy", {"tag_pattern": "build-*"})
    assert empty.status_code == 400 and "a policy needs" in empty.text and 'value="build-*"' in empty.text
    not_a_number = browser.post(settings + "/add-policy", {"tag_pattern": "build-*", "keep_last": "two"})
    assert not_a_number.status_code == 400 and "whole number" in not_a_number.text
    added = browser.post(settings + "/add-policy", {"tag_pattern": "build-*", "keep_last": "1"})
    assert notice_of(added).endswith("done=policy-added")
    policies = httpx.get(
        f"{server.url}/api/v1/retention/policies",
        params={"scope_kind": "namespace", "scope": owner},
        auth=(owner, PASSWORD),
    ).json()["policies"]
    assert [(p["tag_pattern"], p["keep_last"]) for p in policies] == [("build-*", 1)]
    policy_id = str(policies[0]["id"])

    dry = browser.post(settings + "/run-retention", {"policy": policy_id, "dry_run": "true", "back": settings})
    assert dry.status_code == 200
    assert "what would be removed" in dry.text
    assert dry.text.count(f"<td>{repository}</td><td>tag</td>") == 2
    assert "build-3" not in dry.text.split('id="run-removed"')[1]
    elsewhere = browser.post(settings + "/run-retention", {"policy": policy_id, "dry_run": "true", "back": "/\\evil"})
    assert '<a href="/">Back</a>' in elsewhere.text  # the back link stays on this site
    tags = httpx.get(f"{server.url}/v2/{repository}/tags/list", auth=(owner, PASSWORD)).json()["tags"]
    assert sorted(tags) == ["build-1", "build-2", "build-3"]

    ran = browser.post(settings + "/run-retention", {"policy": policy_id, "back": settings})
    assert ran.status_code == 200 and "what was removed" in ran.text
    tags = httpx.get(f"{server.url}/v2/{repository}/tags/list", auth=(owner, PASSWORD)).json()["tags"]
    assert tags == ["build-3"]
    # The repository page offers the deleted builds back (history keeps them).
    assert "/-/history/build-1" in browser.get(f"/r/{repository}").text

    assert notice_of(browser.post(settings + "/remove-policy", {"policy": policy_id})).endswith("done=policy-removed")

    outsider = signed_in(server, stranger)
    assert outsider.get(settings).status_code == 403
    assert outsider.post(settings + "/add-rule", {"pattern": "x*"}).status_code == 403
    assert outsider.post(settings + "/add-policy", {"keep_last": "1"}).status_code == 403
    assert browser.post(settings + "/add-rule", {"pattern": "y*"}, csrf=False).status_code == 403
    assert "y*" not in browser.get(settings).text


def test_admin_area_quotas_gc_and_retention(server: ServerProcess, browser: Browser) -> None:
    owner = new_user(server)
    repository = f"{owner}/junk"
    with httpx.Client(base_url=server.url, auth=(owner, PASSWORD), timeout=30) as client:
        push_image(client, repository, "a", layers=1, layer_size=64)
        untagged = push_image(client, repository, None, layers=1, layer_size=64)
    browser.sign_in(ADMIN[0], ADMIN[1])

    # Quotas: set with a unit, shown on the storage page and the namespace page; bad input kept.
    bad = browser.post("/admin/quotas", {"namespace": owner, "limit": "ten gigs"})
    assert bad.status_code == 400 and 'value="ten gigs"' in bad.text
    assert notice_of(browser.post("/admin/quotas", {"namespace": owner, "limit": "2 KiB"})) == (
        "/admin/storage?done=quota-set"
    )
    shown = httpx.get(f"{server.url}/api/v1/quotas/{owner}", auth=ADMIN).json()
    assert shown["limit_bytes"] == 2048 and shown["source"] == "namespace"
    storage = browser.get("/admin/storage").text
    assert 'id="quotas"' in storage and f">{owner}</a>" in storage.split('id="quotas"')[1]
    owner_browser = signed_in(server, owner)
    assert "2048 bytes" in owner_browser.get(f"/n/{owner}").text
    # The push that would go over the quota is refused.
    with (
        httpx.Client(base_url=server.url, auth=(owner, PASSWORD), timeout=30) as client,
        pytest.raises(AssertionError, match="quota"),
    ):
        push_image(client, repository, "big", layers=1, layer_size=4096)
    cleared = browser.post("/admin/quotas", {"namespace": owner, "clear": "true"})
    assert notice_of(cleared) == "/admin/storage?done=quota-cleared"
    assert httpx.get(f"{server.url}/api/v1/quotas/{owner}", auth=ADMIN).json()["limit_bytes"] is None

    # GC: a dry run reports the untagged manifest's blobs without removing them.
    time.sleep(1.1)  # past the one-second grace period, so the orphan counts as garbage
    assert browser.get("/admin/gc").status_code == 200
    started = browser.post("/admin/gc", {"dry_run": "true"})
    location = notice_of(started)
    run_path = location.split("?")[0]
    assert re.fullmatch(r"/admin/gc/runs/\d+", run_path)
    wait_for_gc(server, int(run_path.rsplit("/", 1)[1]))
    report = browser.get(run_path)
    assert 'id="gc-status">done (dry run)' in report.text
    assert untagged.digest in report.text
    assert (
        httpx.get(f"{server.url}/v2/{repository}/manifests/{untagged.digest}", auth=(owner, PASSWORD)).status_code
        == 200
    )
    assert "dry run" in browser.get("/admin/gc").text

    # Retention: add a policy for the repository, dry run everything, see it in the log.
    added = browser.post(
        "/admin/retention/add-policy",
        {"policy_scope_kind": "repository", "policy_scope": repository, "untagged_after_days": "0"},
    )
    assert notice_of(added) == "/admin/retention?done=policy-added"
    dry = browser.post("/admin/retention/run-retention", {"dry_run": "true", "back": "/admin/retention"})
    assert dry.status_code == 200 and untagged.digest in dry.text
    log = browser.get("/admin/retention").text
    assert 'id="retention-runs"' in log and untagged.digest in log

    # Nobody else gets in.
    for path in ("/admin/gc", "/admin/retention", "/admin/storage", run_path):
        assert owner_browser.get(path).status_code == 403
    assert owner_browser.post("/admin/gc", {"dry_run": "true"}).status_code == 403
    assert owner_browser.post("/admin/quotas", {"namespace": owner, "limit": "1"}).status_code == 403
    assert browser.post("/admin/gc", {"dry_run": "true"}, csrf=False).status_code == 403


def test_tag_page_links_to_its_history(server: ServerProcess, browser: Browser) -> None:
    owner = new_user(server)
    repository = f"{owner}/{unique('web')}"
    with httpx.Client(base_url=server.url, auth=(owner, PASSWORD), timeout=30) as client:
        push_image(client, repository, "1.0", layers=1, layer_size=64)
    browser.sign_in(owner)
    page = browser.get(f"/r/{repository}/-/tag/1.0").text
    assert f'href="/r/{repository}/-/history/1.0"' in page
    assert 'id="history-link"' in browser.get(f"/r/{repository}").text


def test_organization_page_shows_quota_and_links_its_namespace_settings(
    server: ServerProcess, browser: Browser
) -> None:
    owner = new_user(server)
    organization = unique("org")
    browser.sign_in(owner)
    assert notice_of(browser.post("/organizations", {"name": organization}))
    assert httpx.put(f"{server.url}/api/v1/quotas/{organization}", json={"limit_bytes": 5000}, auth=ADMIN).is_success
    page = browser.get(f"/organizations/{organization}").text
    assert "Storage used" in page and "5000 bytes" in page
    assert f'href="/n/{organization}/-/settings"' in page
    assert browser.get(f"/n/{organization}/-/settings").status_code == 200
