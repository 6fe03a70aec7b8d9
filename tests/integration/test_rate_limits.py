"""Docker Hub style pull limits on real two-worker servers (SQLite, PostgreSQL) and a three-node cluster.

Each test pulls from its own loopback source address (127.0.0.x), so each anonymous test
has a counter of its own on the shared server.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from deploy.localcluster import LocalCluster
from tests.support.accounts import PortsideCli, auth_env
from tests.support.observe import scrape, value
from tests.support.protocol import error_codes, push_image, sha256
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ANONYMOUS_LIMIT = 3
USER_LIMIT = 5
WINDOW = 3600
ALICE = ("alice", "alice-password-1")
BOB = ("bob", "bob-password-1")
_addresses = itertools.count(10)


@dataclass
class LimitedRegistry:
    """Rate-limited servers (one, or the nodes of a cluster behind ``url``) and an image alice pushed."""

    url: str
    servers: list[ServerProcess]
    repository: str
    media_type: str
    layer: str

    def client(self, auth: tuple[str, str] | None = None) -> httpx.Client:
        """A client from a loopback address no other test uses."""
        address = f"127.0.0.{next(_addresses)}"
        transport = httpx.HTTPTransport(local_address=address)
        return httpx.Client(base_url=self.url, auth=auth, transport=transport, timeout=30.0)

    @property
    def manifest_path(self) -> str:
        """Where the image's manifest is."""
        return f"/v2/{self.repository}/manifests/v1"

    def refused_pulls(self) -> float:
        """Anonymous pulls refused so far, summed over every server's metrics."""
        return sum(
            value(scrape(server.url), "portside_rate_limited_pulls_total", caller="anonymous")
            for server in self.servers
        )


def _prepare(url: str, cli_server: ServerProcess, servers: list[ServerProcess]) -> LimitedRegistry:
    cli = PortsideCli(cli_server)
    cli.create_user(*ALICE)
    cli.create_user(*BOB)
    with httpx.Client(base_url=url, auth=ALICE, timeout=30.0) as alice:
        image = push_image(alice, "alice/app", "v1", layers=1)
    cli.set_public("alice/app")
    return LimitedRegistry(url, servers, "alice/app", image.media_type, sha256(image.layers[0]))


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "cluster"])
def limited(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LimitedRegistry]:
    """One rate-limited registry per backend for the module: a two-worker server, or a cluster behind nginx."""
    env = auth_env(
        "basic",
        pull_rate_limit="true",
        pull_limit_anonymous=ANONYMOUS_LIMIT,
        pull_limit_authenticated=USER_LIMIT,
        pull_limit_window_seconds=WINDOW,
    )
    if request.param == "cluster":
        # Three nodes: the counters must be shared through PostgreSQL, and nginx's X-Forwarded-For
        # (from loopback, trusted by default) must name the real client address.
        cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="portside-limits-")), extra_env=env).start()
        try:
            yield _prepare(cluster.url, cluster.nodes[0], cluster.nodes)
        finally:
            cluster.stop()
            shutil.rmtree(cluster.root, ignore_errors=True)
        return
    if request.param == "postgresql":
        env["PORTSIDE_DATABASE_URL"] = request.getfixturevalue("postgres").create_database()
    server = ServerProcess(tmp_path_factory.mktemp(f"limits-{request.param}") / "data", workers=2, env=env).start()
    try:
        yield _prepare(server.url, server, [server])
    finally:
        server.stop()


def _limit(response: httpx.Response) -> tuple[str, str]:
    return response.headers["RateLimit-Limit"], response.headers["RateLimit-Remaining"]


def test_anonymous_pulls_count_down_then_get_429_with_retry_after(limited: LimitedRegistry) -> None:
    with limited.client() as client:
        remaining = []
        for _ in range(ANONYMOUS_LIMIT):
            response = client.get(limited.manifest_path, headers={"Accept": limited.media_type})
            assert response.status_code == 200
            assert response.headers["RateLimit-Limit"] == f"{ANONYMOUS_LIMIT};w={WINDOW}"
            remaining.append(response.headers["RateLimit-Remaining"])
        assert remaining == [f"{n};w={WINDOW}" for n in (2, 1, 0)]
        refused = client.get(limited.manifest_path)
    assert refused.status_code == 429
    assert error_codes(refused) == ["TOOMANYREQUESTS"]
    assert 0 < int(refused.headers["Retry-After"]) <= WINDOW
    assert _limit(refused) == (f"{ANONYMOUS_LIMIT};w={WINDOW}", f"0;w={WINDOW}")


def test_head_and_blob_downloads_do_not_count(limited: LimitedRegistry) -> None:
    with limited.client() as client:
        first = client.get(limited.manifest_path)
        assert _limit(first)[1] == f"{ANONYMOUS_LIMIT - 1};w={WINDOW}"
        for _ in range(ANONYMOUS_LIMIT + 2):
            head = client.head(limited.manifest_path)
            assert head.status_code == 200
            # HEAD shows the quota without using it (as Docker Hub's check of the limit does).
            assert _limit(head)[1] == f"{ANONYMOUS_LIMIT - 1};w={WINDOW}"
            assert client.get(f"/v2/{limited.repository}/blobs/{limited.layer}").status_code == 200
        second = client.get(limited.manifest_path)
    assert second.status_code == 200
    assert _limit(second)[1] == f"{ANONYMOUS_LIMIT - 2};w={WINDOW}"


def test_signed_in_users_have_their_own_larger_allowance(limited: LimitedRegistry) -> None:
    # Three addresses, one account: the count follows the account, not the address.
    statuses = []
    for _ in range(USER_LIMIT + 1):
        with limited.client(auth=BOB) as bob:
            response = bob.get(limited.manifest_path)
            statuses.append(response.status_code)
            assert response.headers["RateLimit-Limit"] == f"{USER_LIMIT};w={WINDOW}"
            assert response.headers["Docker-RateLimit-Source"] == "user:bob"
    assert statuses == [200] * USER_LIMIT + [429]
    # Bob's pulls used nothing of an anonymous caller's allowance, nor of alice's.
    with limited.client() as anonymous:
        assert _limit(anonymous.get(limited.manifest_path))[1] == f"{ANONYMOUS_LIMIT - 1};w={WINDOW}"
    with limited.client(auth=ALICE) as alice:
        assert _limit(alice.get(limited.manifest_path))[1] == f"{USER_LIMIT - 1};w={WINDOW}"


def test_error_answers_on_manifests_carry_the_quota_too(limited: LimitedRegistry) -> None:
    with limited.client() as client:
        missing = client.get(f"/v2/{limited.repository}/manifests/no-such-tag")
    assert missing.status_code == 404
    assert _limit(missing) == (f"{ANONYMOUS_LIMIT};w={WINDOW}", f"{ANONYMOUS_LIMIT - 1};w={WINDOW}")


def test_concurrent_pulls_on_all_workers_and_nodes_never_exceed_the_limit(limited: LimitedRegistry) -> None:
    address = f"127.0.0.{next(_addresses)}"
    before = limited.refused_pulls()

    def pull(_: int) -> int:
        # A new connection per pull: the kernel (or nginx) spreads them over workers and nodes.
        transport = httpx.HTTPTransport(local_address=address)
        with httpx.Client(base_url=limited.url, transport=transport, timeout=60.0) as client:
            return client.get(limited.manifest_path).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(pull, range(12)))
    assert sorted(statuses) == [200] * ANONYMOUS_LIMIT + [429] * (12 - ANONYMOUS_LIMIT)
    assert limited.refused_pulls() - before == 12 - ANONYMOUS_LIMIT


def test_no_rate_limit_headers_when_switched_off(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server()
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        push_image(client, "open/app", "v1", layers=1)
        response = client.get("/v2/open/app/manifests/v1")
    assert response.status_code == 200
    assert "RateLimit-Limit" not in response.headers
    assert "RateLimit-Remaining" not in response.headers
