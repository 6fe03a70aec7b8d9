"""Several stateless nodes on one PostgreSQL and one bucket: any request may land on any node."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.storage.conftest import CREDENTIALS, REGION, S3Server
from tests.support.postgres import PostgresServer
from tests.support.protocol import OCI_MANIFEST, image_manifest, push_blob, random_bytes, sha256, unique_repo
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def _node_env(database_url: str, s3_server: S3Server, prefix: str, name: str) -> dict[str, str]:
    return {
        "PORTSIDE_DATABASE_URL": database_url,
        "PORTSIDE_STORAGE_DRIVER": "s3",
        "PORTSIDE_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "PORTSIDE_S3_BUCKET": s3_server.bucket,
        "PORTSIDE_S3_REGION": REGION,
        "PORTSIDE_S3_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "PORTSIDE_S3_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "PORTSIDE_S3_PREFIX": prefix,
        "PORTSIDE_NODE_NAME": name,
        "PORTSIDE_UPLOAD_PURGE_INTERVAL_SECONDS": "1",
    }


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer, s3_server: S3Server
) -> Iterator[tuple[list[ServerProcess], str]]:
    """Three nodes, each with its own data dir (nothing shared but the database and the bucket).

    Shared by this module's tests; the test that kills a node runs last.
    """
    tmp_path = tmp_path_factory.mktemp("cluster")
    s3_prefix = f"cluster-{uuid.uuid4().hex[:8]}/"
    database_url = postgres.create_database()
    nodes: list[ServerProcess] = []
    for name in ("node-a", "node-b", "node-c"):
        env = _node_env(database_url, s3_server, s3_prefix, name)
        nodes.append(ServerProcess(tmp_path / name, workers=2, env=env).start())
        time.sleep(0.5)  # node-a starts first, so it is the first to lead
    yield nodes, database_url
    for node in nodes:
        node.stop()


def _job_nodes(postgres: PostgresServer, database_url: str, since_id: int = 0) -> tuple[set[str], int]:
    database = database_url.rsplit("/", 1)[1]
    query = f"SELECT id, node FROM job_runs WHERE id > {since_id} ORDER BY id"
    result = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(postgres.port), "-U", "postgres", "-d", database, "-Atc", query],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    rows = [line.split("|", 1) for line in result.stdout.splitlines() if line]
    return {node.split(":", 1)[0] for _, node in rows}, max([since_id, *(int(i) for i, _ in rows)])


def test_an_upload_started_continued_and_finished_on_three_nodes(cluster: tuple[list[ServerProcess], str]) -> None:
    nodes, _ = cluster
    repo, data = unique_repo("cluster"), random_bytes(6 * MIB + 7)
    clients = [httpx.Client(base_url=node.url, timeout=60) for node in nodes]
    try:
        location = clients[0].post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
        first = clients[1].patch(location, content=data[: 3 * MIB], headers={"Content-Range": f"0-{3 * MIB - 1}"})
        assert first.status_code == 202, first.text
        assert clients[2].get(location).headers["Range"] == f"0-{3 * MIB - 1}"
        finished = clients[2].put(location, params={"digest": sha256(data)}, content=data[3 * MIB :])
        assert finished.status_code == 201, finished.text
        for client in clients:
            assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data
    finally:
        for client in clients:
            client.close()


def test_a_tag_pushed_through_one_node_is_served_by_the_others_at_once(
    cluster: tuple[list[ServerProcess], str],
) -> None:
    nodes, _ = cluster
    repo = unique_repo("cluster")
    with httpx.Client(base_url=nodes[0].url, timeout=60) as first:
        config, layer = random_bytes(100), random_bytes(1000)
        push_blob(first, repo, config)
        push_blob(first, repo, layer)
        for round_number in range(3):
            manifest = image_manifest(config, [layer], annotations={"round": str(round_number)})
            response = first.put(
                f"/v2/{repo}/manifests/latest", content=manifest, headers={"Content-Type": OCI_MANIFEST}
            )
            assert response.status_code == 201
            for node in nodes[1:]:
                served = httpx.get(f"{node.url}/v2/{repo}/manifests/latest", headers={"Accept": OCI_MANIFEST})
                assert served.content == manifest


def test_background_jobs_run_on_one_node_and_move_when_it_dies(
    cluster: tuple[list[ServerProcess], str], postgres: PostgresServer
) -> None:
    nodes, database_url = cluster
    time.sleep(4)
    leaders, last_id = _job_nodes(postgres, database_url)
    assert leaders == {"node-a"}, leaders
    nodes[0].kill()
    deadline = time.monotonic() + 30
    successors: set[str] = set()
    while time.monotonic() < deadline:
        time.sleep(1)
        successors, _ = _job_nodes(postgres, database_url, last_id)
        if successors:
            break
    assert len(successors) == 1 and successors <= {"node-b", "node-c"}, successors


def test_a_token_issued_by_one_node_is_accepted_by_another(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer, s3_server: S3Server
) -> None:
    root = tmp_path_factory.mktemp("token-cluster")
    database_url = postgres.create_database()
    shared = {"PORTSIDE_AUTH": "token", "PORTSIDE_KEYS_DIR": str(root / "keys")}
    env_a = {**_node_env(database_url, s3_server, "tokens/", "node-a"), **shared}
    env_b = {**_node_env(database_url, s3_server, "tokens/", "node-b"), **shared}
    node_a = ServerProcess(root / "a", env=env_a).start()  # migrates the new database
    created = subprocess.run(
        [sys.executable, "-m", "portside", "user", "create", "alice", "--password", "alice-password"],
        env={**os.environ, **env_a, "PORTSIDE_DATA_DIR": str(root / "cli")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    node_b = ServerProcess(root / "b", env=env_b).start()
    try:
        assert created.returncode == 0, created.stderr
        answer = httpx.get(
            f"{node_a.url}/token",
            params={"service": "portside", "scope": "repository:alice/app:pull,push"},
            auth=("alice", "alice-password"),
        )
        assert answer.status_code == 200, answer.text
        bearer = {"Authorization": f"Bearer {answer.json()['token']}"}
        data = random_bytes(1000)
        pushed = httpx.post(
            f"{node_b.url}/v2/alice/app/blobs/uploads/", params={"digest": sha256(data)}, content=data, headers=bearer
        )
        assert pushed.status_code == 201, pushed.text
        assert httpx.get(f"{node_a.url}/v2/alice/app/blobs/{sha256(data)}", headers=bearer).content == data
    finally:
        node_a.stop()
        node_b.stop()
