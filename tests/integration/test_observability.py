"""Metrics, health probes and request logs of a real two-worker server."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.observe import scrape, value, wait_for_lines
from tests.support.postgres import PostgresServer
from tests.support.protocol import push_image, sha256, unique_repo
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

MANIFEST_ROUTE = "/v2/<name>/manifests/<reference>"
BLOB_ROUTE = "/v2/<name>/blobs/<digest>"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server with two workers for the module (access log on, other logs at warning)."""
    process = ServerProcess(tmp_path_factory.mktemp("observability") / "data", workers=2).start()
    try:
        yield process
    finally:
        process.stop()


def _log(server: ServerProcess) -> Path:
    assert server.log_path is not None
    return server.log_path


def test_metrics_count_requests_by_route_template_status_and_bytes(server: ServerProcess) -> None:
    before = scrape(server.url)
    repo = unique_repo("metrics")
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        image = push_image(client, repo, "v1", layers=2, layer_size=4096)
        for _ in range(3):
            assert client.get(f"/v2/{repo}/manifests/v1", headers={"Accept": image.media_type}).status_code == 200
        assert client.get(f"/v2/{repo}/manifests/missing").status_code == 404
        assert client.get(f"/v2/{repo}/blobs/{sha256(image.layers[0])}").status_code == 200
    after = scrape(server.url)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("portside_http_requests_total", method="GET", route=MANIFEST_ROUTE, status="200") == 3
    assert grew("portside_http_requests_total", method="GET", route=MANIFEST_ROUTE, status="404") == 1
    assert grew("portside_http_requests_total", method="PUT", route=MANIFEST_ROUTE, status="201") == 1
    assert grew("portside_http_request_duration_seconds_count", method="GET", route=MANIFEST_ROUTE) == 4
    assert grew("portside_http_response_bytes_total", method="GET", route=MANIFEST_ROUTE) >= 3 * len(image.manifest)
    assert grew("portside_http_response_bytes_total", method="GET", route=BLOB_ROUTE) == 4096
    assert grew("portside_http_request_bytes_total", method="PUT", route=MANIFEST_ROUTE) == len(image.manifest)
    # Blob bodies arrive on the upload routes: two layers and the config at least.
    uploaded = sum(
        grew("portside_http_request_bytes_total", method=method, route=route)
        for method in ("POST", "PATCH", "PUT")
        for route in ("/v2/<name>/blobs/uploads/", "/v2/<name>/blobs/uploads/<uuid>")
    )
    assert uploaded >= 2 * 4096 + len(image.config)
    # Labels are templates: no series names the repository.
    assert not any(repo in label for (_, labels) in after for _, label in labels)
    # Storage figures come from the database at scrape time.
    assert grew("portside_storage_blobs") == 3
    assert grew("portside_storage_bytes") == 2 * 4096 + len(image.config)
    # GC runs are counted too: tests/integration/test_lifecycle_events.py starts one and checks.


def test_metrics_add_up_across_both_workers(server: ServerProcess) -> None:
    before = scrape(server.url)
    sent: list[str] = []
    pids: set[int] = set()

    def ping(request_id: str) -> int:
        # A new connection each time, so the kernel hands them to both workers.
        return httpx.get(f"{server.url}/v2/", headers={"X-Request-Id": request_id}).status_code

    # Concurrent batches until both workers have answered (the kernel decides who accepts).
    with ThreadPoolExecutor(max_workers=8) as pool:
        while len(pids) < 2 and len(sent) < 400:
            batch = [f"workers-{len(sent) + n}" for n in range(20)]
            assert set(pool.map(ping, batch)) == {200}
            sent += batch
            pids |= {line["pid"] for request_id in batch for line in wait_for_lines(_log(server), request_id)}
    assert len(pids) == 2, "the requests should have been answered by both workers"
    after = scrape(server.url)
    counted = value(after, "portside_http_requests_total", method="GET", route="/v2/", status="200") - value(
        before, "portside_http_requests_total", method="GET", route="/v2/", status="200"
    )
    # Whichever worker answers the scrape, it reports the requests of both.
    assert counted == len(sent)


def test_uploads_in_progress_follow_open_sessions(server: ServerProcess) -> None:
    repo = unique_repo("uploads")
    before = value(scrape(server.url), "portside_uploads_in_progress")
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        started = client.post(f"/v2/{repo}/blobs/uploads/")
        assert started.status_code == 202
        # A session counts from its first write (its id is signed: the POST stores nothing).
        assert value(scrape(server.url), "portside_uploads_in_progress") == before
        patched = client.patch(started.headers["Location"], content=b"some bytes")
        assert patched.status_code == 202
        assert value(scrape(server.url), "portside_uploads_in_progress") == before + 1
        assert client.delete(patched.headers["Location"]).status_code == 204
    assert value(scrape(server.url), "portside_uploads_in_progress") == before


def test_healthz_and_readyz_answer_ok(server: ServerProcess) -> None:
    health = httpx.get(f"{server.url}/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "storage": "ok"}}


def test_request_id_is_echoed_and_in_the_json_log_line(server: ServerProcess) -> None:
    repo = unique_repo("logs")
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        push_image(client, repo, "v1", layers=1)
        response = client.get(f"/v2/{repo}/manifests/v1", headers={"X-Request-Id": "trace-abc.123"})
    assert response.status_code == 200
    assert response.headers["X-Request-Id"] == "trace-abc.123"
    [line] = wait_for_lines(_log(server), "trace-abc.123")
    assert line["logger"] == "portside.access"
    assert line["method"] == "GET"
    assert line["route"] == MANIFEST_ROUTE
    assert line["path"] == f"/v2/{repo}/manifests/v1"
    assert line["status"] == 200
    assert line["bytes_out"] == len(response.content)
    assert line["bytes_in"] == 0
    assert line["duration_ms"] >= 0
    assert line["client"] == "127.0.0.1"
    assert line["user"] == "anonymous"


@pytest.mark.parametrize("incoming", ["has spaces in it", "x" * 200, 'quote"d'])
def test_unusable_request_ids_are_replaced_by_a_fresh_one(server: ServerProcess, incoming: str) -> None:
    response = httpx.get(f"{server.url}/v2/", headers={"X-Request-Id": incoming})
    generated = response.headers["X-Request-Id"]
    assert generated != incoming
    assert len(generated) == 32 and int(generated, 16) >= 0
    assert wait_for_lines(_log(server), generated)[0]["route"] == "/v2/"


def test_every_response_gets_a_request_id(server: ServerProcess) -> None:
    first = httpx.get(f"{server.url}/v2/nothing/here/tags/list")
    second = httpx.get(f"{server.url}/no-such-page")
    assert first.status_code == 404 and second.status_code == 404
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]
    [line] = wait_for_lines(_log(server), second.headers["X-Request-Id"])
    assert line["route"] == "<unmatched>"


def test_readyz_fails_on_database_outage_and_healthz_does_not(tmp_path: Path) -> None:
    postgres = PostgresServer(Path(tempfile.mkdtemp(prefix="portside-pg-ready-"))).start()
    server = None
    try:
        server = ServerProcess(
            tmp_path / "data", workers=1, env={"PORTSIDE_DATABASE_URL": postgres.create_database()}
        ).start()
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        postgres.stop()
        ready = httpx.get(f"{server.url}/readyz", headers={"X-Request-Id": "ready-db-down"}, timeout=30.0)
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["database"].startswith("failed")
        assert checks["storage"] == "ok"
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        # The warning written while answering carries the request's id too.
        lines = wait_for_lines(_log(server), "ready-db-down", count=2)
        assert any(line["level"] == "warning" and "database" in line["message"] for line in lines)
        # Scrapes still work, without the figures that need the database.
        samples = scrape(server.url)
        assert ("portside_storage_blobs", frozenset()) not in samples
        assert value(samples, "portside_http_requests_total", method="GET", route="/readyz", status="503") == 1
    finally:
        if server is not None:
            server.stop()
        postgres.stop()
        shutil.rmtree(postgres.root, ignore_errors=True)


def test_readyz_fails_when_blob_storage_is_unusable(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", workers=1).start()
    try:
        storage = server.data_dir / "storage"
        storage.rename(server.data_dir / "storage.moved")
        storage.write_text("not a directory")
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] == "ok"
        assert ready.json()["checks"]["storage"].startswith("failed")
        storage.unlink()
        (server.data_dir / "storage.moved").rename(storage)
        assert httpx.get(f"{server.url}/readyz").status_code == 200
    finally:
        server.stop()
