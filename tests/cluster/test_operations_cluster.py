"""Operations across a cluster (PostgreSQL, one bucket, two nodes): the CLI imports, exports and
checks on the cluster's database and bucket, webhooks are delivered once whichever node saw the
event, and read-only mode reaches every node."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.storage.conftest import CREDENTIALS, REGION, S3Server
from tests.support.accounts import PortsideCli
from tests.support.clients import ClientSandbox
from tests.support.images import build_image_layout
from tests.support.postgres import PostgresServer
from tests.support.protocol import push_image, unique_repo
from tests.support.server import ServerProcess
from tests.support.webhooks import Receiver, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def nodes(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer, s3_server: S3Server
) -> Iterator[list[ServerProcess]]:
    """Two nodes sharing nothing but the database and the bucket."""
    tmp_path = tmp_path_factory.mktemp("ops-cluster")
    shared = {
        "PORTSIDE_DATABASE_URL": postgres.create_database(),
        "PORTSIDE_STORAGE_DRIVER": "s3",
        "PORTSIDE_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "PORTSIDE_S3_BUCKET": s3_server.bucket,
        "PORTSIDE_S3_REGION": REGION,
        "PORTSIDE_S3_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "PORTSIDE_S3_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "PORTSIDE_S3_PREFIX": f"ops-{uuid.uuid4().hex[:8]}/",
        "PORTSIDE_WEBHOOK_POLL_SECONDS": "0.2",
        "PORTSIDE_WEBHOOK_ENDPOINT_CACHE_SECONDS": "0",
        "PORTSIDE_MAINTENANCE_CACHE_SECONDS": "0",
    }
    started: list[ServerProcess] = []
    for name in ("node-a", "node-b"):
        env = {**shared, "PORTSIDE_NODE_NAME": name}
        started.append(ServerProcess(tmp_path / name, workers=1, env=env).start())
        time.sleep(0.5)
    yield started
    for node in started:
        node.stop()


def test_cli_and_webhooks_work_across_the_cluster(nodes: list[ServerProcess], tmp_path: Path) -> None:
    node_a, node_b = nodes
    cli = PortsideCli(node_a)
    receiver = Receiver().start()
    try:
        receiver.secret = json.loads(cli.run("webhook", "add", "acme", receiver.url))["secret"]
        image = build_image_layout(tmp_path / "layout", layers=2, layer_size=20_000, seed=3, tag="v1")
        repo = unique_repo("acme")
        assert image.manifest_digest in cli.run("import", str(tmp_path / "layout"), repo)

        with ClientSandbox.create(tmp_path / "clients", node_b.host) as clients:
            pulled = clients.skopeo_copy(clients.docker_ref(repo, "v1"), f"oci:{tmp_path / 'out'}:v1")
            assert pulled == image.manifest_digest
        with httpx.Client(base_url=node_a.url) as on_a:
            assert on_a.get(f"/v2/{repo}/manifests/v1", headers={"Accept": "*/*"}).status_code == 200
        with httpx.Client(base_url=node_b.url) as on_b:
            pushed = push_image(on_b, repo, "v2")

        # One delivery per event, whichever node saw it and whichever node leads.
        expected = {
            ("push", image.manifest_digest),  # the import
            ("pull", image.manifest_digest),  # skopeo through node-b, a GET on node-a
            ("push", pushed.digest),
            ("tag_created", pushed.digest),
        }

        def pulls_from_both() -> bool:
            pulls = [e for e in receiver.accepted_events() if e["action"] == "pull"]
            return {e["source"]["addr"].split(":")[0] for e in pulls} == {"node-a", "node-b"}

        def seen() -> set[tuple[str, str]]:
            return {(e["action"], e["target"]["digest"]) for e in receiver.accepted_events()}

        wait_for(lambda: seen() == expected and pulls_from_both(), what="every event")
        events = receiver.accepted_events()
        assert len({e["id"] for e in events}) == len(events)
        assert [e["action"] for e in events].count("push") == 2
        assert all(r.signature_ok for r in receiver.snapshot())

        # fsck and export read the bucket.
        assert "clean" in cli.run("fsck", "--quiet")
        cli.run("export", f"{repo}:v1", str(tmp_path / "v1.tar"), "--format", "docker-archive")
        with ClientSandbox.create(tmp_path / "clients2", node_b.host) as clients:
            clients.skopeo_copy(f"docker-archive:{tmp_path / 'v1.tar'}", f"oci:{tmp_path / 'back'}:v1")
            config = json.loads(clients.skopeo("inspect", "--config", f"oci:{tmp_path / 'back'}:v1").stdout)
        assert config == image.config
        # Layers pushed as gzip that are not gzip cannot become a docker-archive: a clear error.
        refused = cli.run("export", f"{repo}:v2", str(tmp_path / "v2.tar"), "--format", "docker-archive", check=False)
        assert "is not gzip data" in refused and not (tmp_path / "v2.tar").exists()

        # Read-only mode reaches both nodes at once.
        cli.run("maintenance", "on")
        for node in nodes:
            with httpx.Client(base_url=node.url) as http:
                assert http.post(f"/v2/{repo}/blobs/uploads/").status_code == 405
                assert http.get(f"/v2/{repo}/tags/list").json()["tags"] == ["v1", "v2"]
        cli.run("maintenance", "off")
        for node in nodes:
            with httpx.Client(base_url=node.url) as http:
                assert http.post(f"/v2/{repo}/blobs/uploads/").status_code == 202
    finally:
        receiver.stop()
