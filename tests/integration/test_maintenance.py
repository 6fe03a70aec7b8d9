"""Read-only mode: the CLI and the admin API switch it for every worker; writes get Distribution's answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.accounts import PortsideCli
from tests.support.images import build_image_layout
from tests.support.protocol import Image, error_codes, push_image, sha256, unique_repo
from tests.support.server import ServerProcess

ADMIN = ("admin", "admin-password-1")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Two workers, no caching of the flag, so each request sees the switch at once; on each database."""
    env = {
        "PORTSIDE_AUTH": "basic",
        "PORTSIDE_ADMIN_USERNAME": ADMIN[0],
        "PORTSIDE_ADMIN_PASSWORD": ADMIN[1],
        "PORTSIDE_MAINTENANCE_CACHE_SECONDS": "0",
    }
    if request.param == "postgresql":
        env["PORTSIDE_DATABASE_URL"] = request.getfixturevalue("postgres").create_database()
    process = ServerProcess(tmp_path_factory.mktemp("maintenance") / "data", workers=2, env=env).start()
    yield process
    process.stop()


def assert_read_only(response: httpx.Response) -> None:
    """Distribution's `maintenance: readonly` answer: 405, UNSUPPORTED; ours says why."""
    assert response.status_code == 405, response.text
    assert error_codes(response) == ["UNSUPPORTED"]
    assert "read-only" in response.json()["errors"][0]["message"]
    assert response.headers["allow"] == "GET, HEAD"


def test_read_only_refuses_writes_and_keeps_reads(server: ServerProcess, tmp_path: Path) -> None:
    cli = PortsideCli(server)
    cli.create_user("mbob", "bob-password-1")
    repo = unique_repo("admin")
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=30.0) as admin:
        image = push_image(admin, repo, "v1")
        assert "read-only" in cli.run("maintenance", "on")
        assert json.loads(cli.run("maintenance", "status", "--json")) == {
            "read_only": True,
            "configured": False,
            "runtime": True,
        }

        # Every worker refuses every kind of write (several requests reach both workers).
        for _ in range(4):
            assert_read_only(admin.post(f"/v2/{repo}/blobs/uploads/"))
        assert_read_only(admin.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(b"x")}, content=b"x"))
        assert_read_only(
            admin.put(f"/v2/{repo}/manifests/v2", content=image.manifest, headers={"Content-Type": image.media_type})
        )
        assert_read_only(admin.delete(f"/v2/{repo}/manifests/v1"))
        assert_read_only(admin.delete(f"/v2/{repo}/blobs/{sha256(image.config)}"))
        assert_read_only(admin.post("/api/v1/robots/admin", json={"name": "ci"}))
        assert_read_only(admin.delete("/api/v1/robots/admin/maintenance"))  # only the switch itself passes

        # Reads go on.
        for _ in range(4):
            pulled = admin.get(f"/v2/{repo}/manifests/v1", headers={"Accept": image.media_type})
            assert pulled.status_code == 200 and pulled.content == image.manifest
        assert admin.get(f"/v2/{repo}/blobs/{sha256(image.config)}").content == image.config
        assert admin.head(f"/v2/{repo}/manifests/v1", headers={"Accept": image.media_type}).status_code == 200
        assert admin.get(f"/v2/{repo}/tags/list").json()["tags"] == ["v1"]
        assert admin.get("/api/v1/robots/admin").status_code == 200
        build_image_layout(tmp_path / "layout", layers=1, layer_size=100, seed=5)
        refused = cli.run("import", str(tmp_path / "layout"), f"{repo}:imported", check=False)
        assert "UNSUPPORTED" in refused and "read-only" in refused

        # The admin API shows and switches it; only site admins may switch.
        assert admin.get("/api/v1/maintenance").json() == {"read_only": True, "configured": False, "runtime": True}
        with httpx.Client(base_url=server.url, auth=("mbob", "bob-password-1")) as bob:
            assert bob.put("/api/v1/maintenance", json={"read_only": False}).status_code == 403
        switched = admin.put("/api/v1/maintenance", json={"read_only": False})
        assert switched.status_code == 200 and switched.json()["read_only"] is False
        assert "read-write" in cli.run("maintenance", "status")
        assert push_manifest_status(admin, repo, image) == 201
        assert admin.put("/api/v1/maintenance", json={"read_only": True}).json()["read_only"] is True
        assert_read_only(admin.delete(f"/v2/{repo}/manifests/v2"))
        assert "read-write" in cli.run("maintenance", "off")
        assert admin.delete(f"/v2/{repo}/manifests/v2").status_code == 202


def push_manifest_status(client: httpx.Client, repo: str, image: Image) -> int:
    """PUT the image's manifest under tag v2; the status."""
    headers = {"Content-Type": image.media_type}
    return client.put(f"/v2/{repo}/manifests/v2", content=image.manifest, headers=headers).status_code
