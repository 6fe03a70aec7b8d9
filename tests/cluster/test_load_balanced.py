"""Through nginx in front of three nodes: a node dies mid-run and clients lose nothing.

Clients retry as real ones do (containers/image retries failed requests; a failed upload is
started again). What must hold: every push the registry acknowledged stays fully pullable.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from deploy.localcluster import LocalCluster
from tests.support.clients import ClientSandbox
from tests.support.images import build_image_layout
from tests.support.protocol import OCI_MANIFEST, image_manifest, random_bytes, sha256, unique_repo

pytestmark = pytest.mark.integration

T = TypeVar("T")


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """The cluster `make cluster` starts, with the example configuration files."""
    local = LocalCluster(Path(tempfile.mkdtemp(prefix="portside-lb-"))).start()
    try:
        yield local
    finally:
        local.stop()
        shutil.rmtree(local.root, ignore_errors=True)


class RetryingClient:
    """Retries a failed step a few times, as registry clients do; counts the retries."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=60)
        self.retries = 0

    def attempt(self, step: Callable[[], T], tries: int = 5) -> T:
        for attempt in range(tries):
            try:
                return step()
            except (httpx.TransportError, AssertionError):
                if attempt == tries - 1:
                    raise
                self.retries += 1
                time.sleep(0.2)
        raise AssertionError("unreachable")

    def push_blob(self, repo: str, data: bytes) -> None:
        def step() -> None:
            # A new session each attempt: a session on a dead node's request may be half-written.
            started = self.http.post(f"/v2/{repo}/blobs/uploads/")
            assert started.status_code == 202, started.text
            location = started.headers["Location"]
            middle = len(data) // 2
            first = self.http.patch(location, content=data[:middle], headers={"Content-Range": f"0-{middle - 1}"})
            assert first.status_code == 202, first.text
            done = self.http.put(first.headers["Location"], params={"digest": sha256(data)}, content=data[middle:])
            assert done.status_code == 201, done.text

        self.attempt(step)

    def push_image(self, repo: str, tag: str) -> bytes:
        config, layer = random_bytes(200), random_bytes(300_000)
        self.push_blob(repo, config)
        self.push_blob(repo, layer)
        manifest = image_manifest(config, [layer])

        def step() -> None:
            response = self.http.put(
                f"/v2/{repo}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
            )
            assert response.status_code == 201, response.text

        self.attempt(step)
        return manifest


def test_killing_a_node_mid_run_loses_no_acknowledged_push(cluster: LocalCluster) -> None:
    repo = unique_repo("lb")
    acknowledged: dict[str, bytes] = {}
    failures: list[BaseException] = []
    clients = [RetryingClient(cluster.url) for _ in range(3)]

    def pusher(client: RetryingClient, worker: int) -> None:
        try:
            for i in range(12):
                tag = f"w{worker}-{i}"
                acknowledged[tag] = client.push_image(repo, tag)
        except BaseException as exc:  # a push that failed even after retries
            failures.append(exc)

    threads = [threading.Thread(target=pusher, args=(client, n)) for n, client in enumerate(clients)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    cluster.nodes[1].kill()
    for thread in threads:
        thread.join(300)

    assert not failures, failures
    assert len(acknowledged) == 36
    print(f"retried steps: {sum(client.retries for client in clients)}")
    with httpx.Client(base_url=cluster.url, timeout=60) as http:
        for tag, manifest in acknowledged.items():
            served = http.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
            assert served.content == manifest
            for layer in httpx.Response(200, content=manifest).json()["layers"]:
                assert http.head(f"/v2/{repo}/blobs/{layer['digest']}").status_code == 200
    # Restarting the node brings it back into rotation with nothing to recover.
    cluster.nodes[1].start()


def test_skopeo_copies_through_the_balancer_while_a_node_restarts(cluster: LocalCluster, tmp_path: Path) -> None:
    if shutil.which("skopeo") is None:
        pytest.skip(reason="skopeo is not installed")
    image = build_image_layout(tmp_path / "layout", layers=3, layer_size=200_000, seed=7)
    assert cluster.balancer is not None
    host = f"127.0.0.1:{cluster.balancer.port}"
    with ClientSandbox.create(tmp_path / "sandbox", host) as clients:
        clients.skopeo_copy(image.oci_ref, f"docker://{host}/lb/skopeo:1", extra=["--retry-times", "3"])
        cluster.nodes[2].kill()
        out = tmp_path / "out"
        clients.skopeo_copy(f"docker://{host}/lb/skopeo:1", f"oci:{out}:copy", extra=["--retry-times", "3"])
        cluster.nodes[2].start()
        clients.skopeo_copy(
            f"docker://{host}/lb/skopeo:1", f"docker://{host}/lb/skopeo:2", extra=["--retry-times", "3"]
        )
    assert image.manifest_digest in (out / "index.json").read_text()
