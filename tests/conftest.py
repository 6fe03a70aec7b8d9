"""Shared fixtures: real Portside registries (one node on SQLite, one on PostgreSQL, a cluster) and clients."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from deploy.localcluster import LocalCluster
from tests.support.postgres import PostgresServer, postgres_bin
from tests.support.server import RegistryEndpoint, ServerProcess

# Every test using `registry` runs against each: one node on SQLite, one node on PostgreSQL, and
# a cluster (PostgreSQL, S3, three nodes) behind nginx.
BACKENDS = ["sqlite", "postgresql", "cluster"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL cluster for the session; each server gets its own database in it."""
    if postgres_bin() is None:
        pytest.fail("PostgreSQL is not installed: `make test` installs Debian's postgresql package")
    # Not under pytest's tmp dir: that is private to root, and PostgreSQL runs as its own user.
    root = Path(tempfile.mkdtemp(prefix="portside-pg-"))
    server = PostgresServer(root).start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session", params=BACKENDS)
def registry(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryEndpoint]:
    """One registry per backend, shared by the tests of a session."""
    if request.param == "cluster":
        cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="portside-cluster-"))).start()
        assert cluster.balancer is not None
        try:
            yield RegistryEndpoint(cluster.url, f"127.0.0.1:{cluster.balancer.port}", cluster.balancer.port, None)
        finally:
            cluster.stop()
            shutil.rmtree(cluster.root, ignore_errors=True)
        return
    env: dict[str, str] = {}
    if request.param == "postgresql":
        env["PORTSIDE_DATABASE_URL"] = request.getfixturevalue("postgres").create_database()
    server = ServerProcess(tmp_path_factory.mktemp(f"registry-{request.param}") / "data", workers=2, env=env).start()
    try:
        yield RegistryEndpoint(server.url, server.host, server.port, server.data_dir)
    finally:
        server.stop()


@pytest.fixture
def client(registry: RegistryEndpoint) -> Iterator[httpx.Client]:
    """An HTTP client bound to the shared registry."""
    with httpx.Client(base_url=registry.url, timeout=60.0) as http:
        yield http


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start private servers (for crash and restart tests); all are stopped afterwards."""
    started: list[ServerProcess] = []

    def start(
        data_dir: Path | None = None,
        workers: int = 1,
        env: dict[str, str] | None = None,
        port: int = 0,
        extra_args: list[str] | None = None,
    ) -> ServerProcess:
        server = ServerProcess(
            data_dir or tmp_path / "data", workers=workers, env=env or {}, port=port, extra_args=extra_args or []
        ).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
