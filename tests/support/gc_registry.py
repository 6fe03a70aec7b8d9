"""Registries for garbage collection and retention tests, and the API calls those tests make.

GC tests need a small grace period and an administrator, so they start registries of their
own (one per backend) rather than the shared ``registry`` fixture.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from deploy.localcluster import LocalCluster
from tests.support.postgres import PostgresServer
from tests.support.server import ServerProcess

ADMIN = ("gcadmin", "gc-admin-password-1")


def lifecycle_env(grace_seconds: int) -> dict[str, str]:
    """Settings of a registry under GC test: a tiny grace, no schedules, an administrator."""
    return {
        "PORTSIDE_GC_GRACE_SECONDS": str(grace_seconds),
        "PORTSIDE_GC_INTERVAL_SECONDS": "0",
        "PORTSIDE_RETENTION_INTERVAL_SECONDS": "0",
        "PORTSIDE_ADMIN_USERNAME": ADMIN[0],
        "PORTSIDE_ADMIN_PASSWORD": ADMIN[1],
    }


@dataclass
class LifecycleRegistry:
    """A running registry under test: its URL, where its blobs are (filesystem only), its env."""

    backend: str
    url: str
    data_dir: Path | None
    env: dict[str, str]

    def blob_file(self, digest: str) -> Path | None:
        """Where the filesystem driver keeps a blob's bytes (None on S3)."""
        if self.data_dir is None:
            return None
        algorithm, encoded = digest.split(":", 1)
        return self.data_dir / "storage" / "blobs" / algorithm / encoded[:2] / encoded


@contextmanager
def lifecycle_registry(
    backend: str, root: Path, grace_seconds: int, postgres: PostgresServer | None
) -> Iterator[LifecycleRegistry]:
    """Start a registry on ``backend`` (sqlite, postgresql or cluster) with GC test settings."""
    env = lifecycle_env(grace_seconds)
    if backend == "cluster":
        # Cluster nodes take their settings from the environment on top of the example file.
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="portside-gc-cluster-")))
        try:
            cluster.start()
            yield LifecycleRegistry(backend, cluster.url, None, {**env, **cluster.node_env("cli")})
        finally:
            cluster.stop()
            shutil.rmtree(cluster.root, ignore_errors=True)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        return
    if backend == "postgresql":
        assert postgres is not None
        env["PORTSIDE_DATABASE_URL"] = postgres.create_database()
    server = ServerProcess(root / "data", workers=2, env=env).start()
    try:
        yield LifecycleRegistry(backend, server.url, server.data_dir, env)
    finally:
        server.stop()


def admin_client(url: str) -> httpx.Client:
    """An HTTP client with the administrator's Basic credentials."""
    return httpx.Client(base_url=url, timeout=120.0, auth=ADMIN)


def wait_for_gc(admin: httpx.Client, run: dict[str, Any], patience: float = 120.0) -> dict[str, Any]:
    """Poll a started run until it is no longer running."""
    deadline = time.monotonic() + patience
    while run["status"] == "running":
        assert time.monotonic() < deadline, f"garbage collection run {run['id']} did not finish: {run}"
        time.sleep(0.1)
        response = admin.get(f"/api/v1/gc/runs/{run['id']}")
        assert response.status_code == 200, response.text
        run = response.json()
    return run


def run_gc(admin: httpx.Client, *, dry_run: bool = False, patience: float = 120.0) -> dict[str, Any]:
    """Start a run through the API (waiting while another runs) and wait for it to finish."""
    deadline = time.monotonic() + patience
    while True:
        response = admin.post("/api/v1/gc/runs", json={"dry_run": dry_run})
        if response.status_code != 409:
            break
        assert time.monotonic() < deadline, "another garbage collection kept running"
        time.sleep(0.1)
    assert response.status_code == 202, response.text
    return wait_for_gc(admin, response.json(), patience)
