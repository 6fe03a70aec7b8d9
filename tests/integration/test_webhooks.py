"""Webhooks against a real server: a loopback receiver records, verifies and sometimes refuses deliveries."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from portside.notifications.events import ENVELOPE_MEDIA_TYPE
from tests.support.accounts import PortsideCli
from tests.support.protocol import push_image, unique_repo
from tests.support.server import ServerProcess
from tests.support.webhooks import Receiver, wait_for

ADMIN = ("admin", "admin-password-1")
BACKOFF = 0.3
MAX_ATTEMPTS = 4
SERVER_ENV = {
    "PORTSIDE_AUTH": "basic",
    "PORTSIDE_ADMIN_USERNAME": ADMIN[0],
    "PORTSIDE_ADMIN_PASSWORD": ADMIN[1],
    "PORTSIDE_WEBHOOK_BACKOFF_SECONDS": str(BACKOFF),
    "PORTSIDE_WEBHOOK_POLL_SECONDS": "0.1",
    "PORTSIDE_WEBHOOK_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    # Read endpoints on every event, so a test's new endpoint sees its first push.
    "PORTSIDE_WEBHOOK_ENDPOINT_CACHE_SECONDS": "0",
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server with two workers (events from either, deliveries by the leader), on each database."""
    env = dict(SERVER_ENV)
    if request.param == "postgresql":
        env["PORTSIDE_DATABASE_URL"] = request.getfixturevalue("postgres").create_database()
    process = ServerProcess(tmp_path_factory.mktemp("webhooks") / "data", workers=2, env=env).start()
    yield process
    process.stop()


@pytest.fixture
def admin(server: ServerProcess) -> Iterator[httpx.Client]:
    """A client signed in as the site administrator."""
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=30.0) as http:
        yield http


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    """Start loopback receivers; all are stopped afterwards."""
    started: list[Receiver] = []

    def start(**options: Any) -> Receiver:
        receiver = Receiver(**options).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


def add_webhook(admin: httpx.Client, namespace: str, url: str, events: list[str] | None = None) -> dict[str, Any]:
    """Create an endpoint through the management API."""
    body: dict[str, Any] = {"url": url}
    if events is not None:
        body["events"] = events
    response = admin.post(f"/api/v1/webhooks/{namespace}", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def deliveries(admin: httpx.Client, namespace: str, webhook_id: int) -> list[dict[str, Any]]:
    """The delivery log through the management API."""
    response = admin.get(f"/api/v1/webhooks/{namespace}/{webhook_id}/deliveries")
    assert response.status_code == 200, response.text
    log: list[dict[str, Any]] = response.json()
    return log


def test_events_reach_the_namespace_endpoint_signed_in_distributions_envelope(
    server: ServerProcess, admin: httpx.Client, receivers: Callable[..., Receiver]
) -> None:
    acme = receivers(fail_first=2)
    other = receivers()
    hook = add_webhook(admin, "acme", acme.url)
    acme.secret = hook["secret"]
    other_hook = add_webhook(admin, "other", other.url)
    other.secret = other_hook["secret"]
    repo = unique_repo("acme")

    first = push_image(admin, repo, "v1")
    pulled = admin.get(f"/v2/{repo}/manifests/v1", headers={"Accept": first.media_type, "User-Agent": "hook-test/1"})
    assert pulled.status_code == 200
    second = push_image(admin, repo, "v1")
    assert admin.delete(f"/v2/{repo}/manifests/v1").status_code == 202
    assert admin.delete(f"/v2/{repo}/manifests/{first.digest}").status_code == 202
    push_image(admin, unique_repo("zeta"), "v1")
    other_image = push_image(admin, unique_repo("other"), "v1")

    expected = [
        ("push", first.digest, "v1"),
        ("tag_created", first.digest, "v1"),
        ("pull", first.digest, "v1"),
        ("push", second.digest, "v1"),
        ("tag_moved", second.digest, "v1"),
        ("tag_deleted", "", "v1"),
        ("delete", first.digest, ""),
    ]
    wait_for(lambda: len(acme.accepted_events()) >= len(expected), what="acme's events")
    events = sorted(acme.accepted_events(), key=lambda e: e["timestamp"])
    assert [(e["action"], e["target"]["digest"], e["target"].get("tag", "")) for e in events] == expected
    assert {e["target"]["repository"] for e in events} == {repo}

    for request in acme.snapshot():
        assert request.signature_ok, request.headers
        assert request.headers["content-type"] == ENVELOPE_MEDIA_TYPE
        assert request.headers["x-portside-signature"].startswith("sha256=")
    push = events[0]
    assert set(push) >= {"id", "timestamp", "action", "target", "request", "actor", "source"}
    assert push["target"]["mediaType"] == first.media_type
    assert push["target"]["size"] == push["target"]["length"] == len(first.manifest)
    assert push["target"]["url"] == f"{server.url}/v2/{repo}/manifests/{first.digest}"
    assert push["request"]["method"] == "PUT" and push["request"]["host"] == server.host
    assert push["request"]["addr"] == "127.0.0.1" and push["request"]["id"]
    assert push["actor"] == {"name": ADMIN[0]}
    assert set(push["source"]) == {"addr", "instanceID"}
    assert events[2]["request"]["useragent"] == "hook-test/1"

    # Two deliveries were refused once (500) and delivered on their next attempt. (The log is
    # written just after the receiver answers.)
    wait_for(
        lambda: {entry["status"] for entry in deliveries(admin, "acme", hook["id"])} == {"delivered"},
        what="acme's delivery log",
    )
    log = deliveries(admin, "acme", hook["id"])
    assert {entry["status"] for entry in log} == {"delivered"}
    assert {entry["last_status_code"] for entry in log} == {200}
    assert sorted(entry["attempts"] for entry in log) == [1] * (len(expected) - 2) + [2, 2]
    assert all(entry["delivered_at"] for entry in log)

    # Routing: the other namespace's endpoint got only its own push and tag.
    wait_for(lambda: len(other.accepted_events()) >= 2, what="other's events")
    assert {(e["action"], e["target"]["digest"]) for e in other.accepted_events()} == {
        ("push", other_image.digest),
        ("tag_created", other_image.digest),
    }
    assert not any(e["target"]["repository"].startswith("zeta/") for e in acme.accepted_events())


def test_event_filter_retries_with_exponential_backoff_then_gives_up(
    admin: httpx.Client, receivers: Callable[..., Receiver]
) -> None:
    flaky = receivers(fail_first=MAX_ATTEMPTS - 1)
    hook = add_webhook(admin, "filtered", flaky.url, ["push"])
    flaky.secret = hook["secret"]
    dead = receivers(failing=True)
    dead_hook = add_webhook(admin, "deadend", dead.url, ["tag"])
    repo = unique_repo("filtered")

    image = push_image(admin, repo, "v1")
    assert admin.get(f"/v2/{repo}/manifests/v1", headers={"Accept": image.media_type}).status_code == 200
    push_image(admin, unique_repo("deadend"), "v1")

    wait_for(lambda: len(flaky.accepted_events()) == 1, what="the push after retries")
    attempts = flaky.snapshot()
    assert [r.answered for r in attempts] == [500] * (MAX_ATTEMPTS - 1) + [200]
    assert len({r.headers["x-portside-delivery"] for r in attempts}) == 1
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
    for n, gap in enumerate(gaps):
        assert gap >= BACKOFF * 2**n * 0.9, gaps  # the wait doubles after each failure
    # Only the push: not the tag it created, not the pull.
    assert [e["action"] for e in flaky.accepted_events()] == ["push"]
    wait_for(lambda: deliveries(admin, "filtered", hook["id"])[0]["status"] == "delivered", what="the log")
    [entry] = deliveries(admin, "filtered", hook["id"])
    assert (entry["status"], entry["attempts"], entry["last_status_code"]) == ("delivered", MAX_ATTEMPTS, 200)

    def given_up() -> bool:
        log = deliveries(admin, "deadend", dead_hook["id"])
        return bool(log) and log[0]["status"] == "failed"

    wait_for(given_up, what="the dead endpoint's delivery to be marked failed")
    [failed] = deliveries(admin, "deadend", dead_hook["id"])
    assert failed["action"] == "tag_created" and failed["attempts"] == MAX_ATTEMPTS
    assert failed["last_status_code"] == 500 and "HTTP 500" in failed["last_error"]
    assert len(dead.snapshot()) == MAX_ATTEMPTS

    # Every attempt is counted in the metrics.
    metrics = admin.get("/metrics").text
    for outcome in ("delivered", "retrying", "failed"):
        assert f'portside_webhook_deliveries_total{{outcome="{outcome}"}}' in metrics


def test_only_namespace_admins_manage_webhooks(server: ServerProcess, admin: httpx.Client) -> None:
    cli = PortsideCli(server)
    cli.create_user("hookbob", "bob-password-1")
    with httpx.Client(base_url=server.url, auth=("hookbob", "bob-password-1")) as bob:
        assert bob.get("/api/v1/webhooks/acme").status_code == 403
        assert bob.post("/api/v1/webhooks/acme", json={"url": "http://127.0.0.1:9/x"}).status_code == 403
        created = bob.post("/api/v1/webhooks/hookbob", json={"url": "http://127.0.0.1:9/x", "events": ["pull"]})
        assert created.status_code == 201, created.text
        assert [w["url"] for w in bob.get("/api/v1/webhooks/hookbob").json()] == ["http://127.0.0.1:9/x"]
        bad = bob.post("/api/v1/webhooks/hookbob", json={"url": "ftp://x", "events": ["pull"]})
        assert bad.status_code == 400
        unknown = bob.post("/api/v1/webhooks/hookbob", json={"url": "http://x/", "events": ["pushed"]})
        assert unknown.status_code == 400 and "pushed" in unknown.text
    assert httpx.get(f"{server.url}/api/v1/webhooks/hookbob").status_code == 401
    audit = admin.get("/api/v1/audit", params={"target": "hookbob", "action": "webhook-create"}).json()
    assert [(e["actor"], e["detail"]["url"]) for e in audit["events"]] == [("user:hookbob", "http://127.0.0.1:9/x")]


def test_pending_deliveries_are_sent_after_a_restart(
    tmp_path: Path, start_server: Callable[..., ServerProcess], receivers: Callable[..., Receiver]
) -> None:
    env = {key: value for key, value in SERVER_ENV.items() if key != "PORTSIDE_WEBHOOK_MAX_ATTEMPTS"}
    server = start_server(data_dir=tmp_path / "data", env=env)
    receiver = receivers(failing=True)
    cli = PortsideCli(server)
    created = json.loads(cli.run("webhook", "add", "acme", receiver.url, "--events", "push"))
    receiver.secret = created["secret"]
    assert f"acme\t{receiver.url}\tpush\tenabled" in cli.run("webhook", "list")
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=30.0) as admin:
        image = push_image(admin, unique_repo("acme"), "v1")

    def refused_and_logged() -> bool:
        log = json.loads(cli.run("webhook", "deliveries", str(created["id"]), "--json"))
        return bool(log) and log[0]["attempts"] >= 1 and log[0]["status"] == "pending"

    wait_for(refused_and_logged, what="a first, refused attempt in the delivery log")
    server.stop()

    receiver.failing = False
    start_server(data_dir=tmp_path / "data", env=env, port=server.port)
    wait_for(lambda: len(receiver.accepted_events()) == 1, what="the delivery after the restart")
    [event] = receiver.accepted_events()
    assert (event["action"], event["target"]["digest"]) == ("push", image.digest)
    assert all(r.signature_ok for r in receiver.snapshot())

    def log() -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = json.loads(cli.run("webhook", "deliveries", str(created["id"]), "--json"))
        return entries

    wait_for(lambda: log()[0]["status"] == "delivered", what="the delivery log")
    assert [(d["status"], d["last_status_code"]) for d in log()] == [("delivered", 200)]
    assert log()[0]["attempts"] >= 2
    assert "removed webhook" in cli.run("webhook", "remove", str(created["id"]))
    assert cli.run("webhook", "list") == ""
