"""oras-py (PyPI ``oras``), the ORAS project's Python SDK, as a real artifact client.

Files pushed as an OCI artifact, whole and in chunks, pulled back byte for byte; tags listed and
deleted; an artifact that refers to another found through the referrers API; its annotations in
search. On the shared registries (no authentication: SQLite, PostgreSQL, the cluster), and in
token mode with oras-py's Basic backend, which sends the password on every request.

oras-py's token backend cannot push to a registry that follows the token spec: it asks for a token
with the scope of the first challenge (``pull``, for the ``HEAD`` that checks whether a blob
exists) and, when the ``POST`` that starts the upload answers ``401 insufficient_scope``, retries
with the same token instead of asking for ``pull,push`` (it asks anew only after a ``403``).
docs/access-control.md says so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import oras.client
import oras.oci
import pytest

from tests.support.accounts import PortsideCli, auth_env
from tests.support.protocol import unique_repo
from tests.support.server import RegistryEndpoint, ServerProcess

pytestmark = pytest.mark.integration

ADMIN = ("admin", "admin-password-1")
DESCRIPTION = "org.opencontainers.image.description"


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, bytes]]:
    """Three files in the working directory (oras-py pushes only paths below it): small, 3 MiB, empty."""
    contents = {"notes.txt": b"hello from oras-py\n", "data.bin": os.urandom(3 << 20), "empty": b""}
    for name, content in contents.items():
        (tmp_path / name).write_bytes(content)
    monkeypatch.chdir(tmp_path)
    yield contents


def pulled(client: oras.client.OrasClient, target: str, outdir: Path) -> dict[str, bytes]:
    """What ``pull`` wrote, by file name."""
    paths = client.pull(target=target, outdir=str(outdir))
    return {Path(path).name: Path(path).read_bytes() for path in paths}


def check_round_trip(client: oras.client.OrasClient, host: str, repo: str, files: dict[str, bytes]) -> None:
    """Push whole and in chunks, pull both back, list and delete tags, attach a referrer."""
    target = f"{host}/{repo}"
    pushed = client.push(
        files=list(files), target=f"{target}:v1", manifest_annotations={DESCRIPTION: "Pushed by oras-py"}
    )
    assert pushed.status_code == 201, pushed.text
    chunked = client.push(files=["data.bin"], target=f"{target}:chunked", do_chunked=True, chunk_size=1 << 20)
    assert chunked.status_code == 201, chunked.text
    assert sorted(client.get_tags(target)) == ["chunked", "v1"]
    assert pulled(client, f"{target}:v1", Path("out-v1")) == files
    assert pulled(client, f"{target}:chunked", Path("out-chunked")) == {"data.bin": files["data.bin"]}
    manifest = client.get_manifest(f"{target}:v1")
    assert manifest["annotations"] == {DESCRIPTION: "Pushed by oras-py"}
    assert [layer["annotations"]["org.opencontainers.image.title"] for layer in manifest["layers"]] == list(files)

    subject = oras.oci.Subject.from_manifest(manifest)
    signed = client.push(
        files=["notes.txt"], target=f"{target}:sig", subject=subject, manifest_annotations={"kind": "signature"}
    )
    assert signed.status_code == 201, signed.text
    assert signed.headers["OCI-Subject"] == subject.digest
    referrers = client.do_request(f"http://{host}/v2/{repo}/referrers/{subject.digest}")
    assert referrers.status_code == 200
    assert [entry["annotations"] for entry in referrers.json()["manifests"]] == [{"kind": "signature"}]

    assert client.delete_tag(target, "chunked") is True
    assert sorted(client.get_tags(target)) == ["sig", "v1"]


def test_oras_py_round_trip_without_authentication(
    registry: RegistryEndpoint, files: dict[str, bytes], client: httpx.Client
) -> None:
    repo = unique_repo("oras-py")
    check_round_trip(oras.client.OrasClient(hostname=registry.host, insecure=True), registry.host, repo, files)
    # The artifact's description is the repository's, in search.
    results = client.get("/v1/search", params={"q": repo}).json()["results"]
    assert [(hit["name"], hit["description"]) for hit in results] == [(repo, "Pushed by oras-py")]


@pytest.fixture
def token_server(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    """A server in token mode with an administrator."""
    return start_server(env=auth_env("token", admin_username=ADMIN[0], admin_password=ADMIN[1]))


def test_oras_py_with_basic_credentials_in_token_mode(token_server: ServerProcess, files: dict[str, bytes]) -> None:
    host = f"127.0.0.1:{token_server.port}"
    PortsideCli(token_server).create_user("olga", "olga-password-1")
    client = oras.client.OrasClient(hostname=host, insecure=True, auth_backend="basic")
    assert client.login(username="olga", password="olga-password-1", hostname=host) == {"Status": "Login Succeeded"}
    check_round_trip(client, host, "olga/artifacts", files)
    # Nobody else may read her private repository, with or without credentials.
    PortsideCli(token_server).create_user("ivan", "ivan-password-1")
    other = oras.client.OrasClient(hostname=host, insecure=True, auth_backend="basic")
    other.login(username="ivan", password="ivan-password-1", hostname=host)
    refused = other.do_request(f"http://{host}/v2/olga/artifacts/manifests/v1")
    assert refused.status_code == 403
    assert json.loads(refused.text)["errors"][0]["code"] == "DENIED"
    anonymous = httpx.get(f"http://{host}/v2/olga/artifacts/manifests/v1")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer ")
