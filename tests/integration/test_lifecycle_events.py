"""Lifecycle jobs reach the operators' tools: retention scans go to webhooks, GC runs to the metrics."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support.protocol import push_image, unique_repo
from tests.support.server import ServerProcess
from tests.support.webhooks import Receiver, wait_for

ADMIN = ("admin", "admin-password-1")


@pytest.fixture
def admin(start_server: Callable[..., ServerProcess]) -> Iterator[httpx.Client]:
    """An admin client of a private server whose webhooks are sent within a fraction of a second."""
    env = {
        "PORTSIDE_AUTH": "basic",
        "PORTSIDE_ADMIN_USERNAME": ADMIN[0],
        "PORTSIDE_ADMIN_PASSWORD": ADMIN[1],
        "PORTSIDE_WEBHOOK_POLL_SECONDS": "0.1",
        "PORTSIDE_WEBHOOK_ENDPOINT_CACHE_SECONDS": "0",
    }
    server = start_server(env=env)
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=30.0) as http:
        yield http


def _gc_successes(admin: httpx.Client) -> float:
    text = admin.get("/metrics").text
    found = re.search(r'^portside_gc_runs_total\{outcome="success"\} ([0-9.e+]+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_a_retention_run_is_sent_to_the_namespace_webhooks(admin: httpx.Client) -> None:
    receiver = Receiver().start()
    try:
        repository = unique_repo("keep")
        namespace = repository.split("/")[0]
        hook = admin.post(f"/api/v1/webhooks/{namespace}", json={"url": receiver.url, "events": ["retention_scan"]})
        assert hook.status_code == 201, hook.text
        receiver.secret = hook.json()["secret"]
        push_image(admin, repository, "old")
        time.sleep(0.01)  # distinct push times, so "the last one" is well defined
        push_image(admin, repository, "new")
        policy = admin.post(
            "/api/v1/retention/policies", json={"scope_kind": "repository", "scope": repository, "keep_last": 1}
        )
        assert policy.status_code in (200, 201), policy.text
        run = admin.post("/api/v1/retention/runs", json={"dry_run": False, "policy_id": policy.json()["id"]})
        assert run.status_code in (200, 201), run.text

        wait_for(lambda: len(receiver.accepted_events()) >= 1, what="the retention_scan event")
        event = receiver.accepted_events()[0]
        assert event["action"] == "retention_scan"
        assert event["target"]["repository"] == repository
        assert event["retention"]["removed"] == ["old"]
        assert event["retention"]["dryRun"] is False
        assert all(request.signature_ok for request in receiver.snapshot())
    finally:
        receiver.stop()


def test_gc_runs_are_counted_in_the_metrics(admin: httpx.Client) -> None:
    before = _gc_successes(admin)
    started = admin.post("/api/v1/gc/runs", json={"dry_run": True})
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    wait_for(lambda: admin.get(f"/api/v1/gc/runs/{run_id}").json()["status"] == "done", what="the GC run")
    wait_for(lambda: _gc_successes(admin) == before + 1, what="the GC counter")
