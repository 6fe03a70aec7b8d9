"""Cached hot reads (api/hot_reads.py) answer exactly as the full handler does, and only when they may.

The first request for a manifest or blob goes through the full handler (a cache miss) and fills
the cache; the same request again is answered from memory. Both answers are compared whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from portside.auth.scopes import Scope
from portside.auth.tokens import KeyRing, TokenIssuer
from tests.support.accounts import AuthServer, Caller, PortsideCli, audit_events, auth_env
from tests.support.accounts import push_small_image as push_small_image_as
from tests.support.protocol import (
    OCI_INDEX,
    OCI_MANIFEST,
    error_codes,
    image_manifest,
    push_blob,
    push_manifest,
    sha256,
)
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration

ROOT = ("root", "root-password-1")
ALICE = ("alice", "alice-password-1")
DOCKER_ACCEPT = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"


def _comparable(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    # Every answer carries its own request id.
    headers = {k: v for k, v in response.headers.items() if k not in ("x-request-id", "date")}
    return response.status_code, headers, response.content


def _twice(send: Callable[[], httpx.Response]) -> tuple[httpx.Response, httpx.Response]:
    return send(), send()


@pytest.fixture
def open_server(start_server: Callable[..., ServerProcess]) -> Iterator[ServerProcess]:
    yield start_server()


def _push_image(client: httpx.Client, repo: str, tag: str, config: bytes, layer: bytes) -> tuple[bytes, int]:
    """Push the config and layer, then a manifest of them under ``tag``: the manifest and the PUT's status."""
    for blob in (config, layer):
        push_blob(client, repo, blob)
    manifest = image_manifest(config, [layer])
    return manifest, push_manifest(client, repo, tag, manifest, OCI_MANIFEST).status_code


def test_a_cached_answer_is_the_full_handlers_answer(open_server: ServerProcess) -> None:
    with httpx.Client(base_url=open_server.url, timeout=30) as client:
        config, layer = b'{"architecture":"amd64","os":"linux"}', b"layer bytes" * 100
        manifest, status = _push_image(client, "acme/app", "v1", config, layer)
        assert status == 201
        digest = sha256(manifest)
        checks: list[tuple[str, str, dict[str, str]]] = [
            ("GET", "/v2/acme/app/manifests/v1", {"Accept": DOCKER_ACCEPT}),
            ("HEAD", "/v2/acme/app/manifests/v1", {"Accept": DOCKER_ACCEPT}),
            ("GET", f"/v2/acme/app/manifests/{digest}", {}),
            ("HEAD", f"/v2/acme/app/manifests/{digest}", {}),
            ("GET", "/v2/acme/app/manifests/v1", {}),
            ("HEAD", f"/v2/acme/app/blobs/{sha256(layer)}", {}),
        ]
        for method, path, headers in checks:
            first = client.request(method, path, headers=headers)
            second = client.request(method, path, headers=headers)
            assert first.status_code == 200, (method, path, first.status_code)
            assert _comparable(second) == _comparable(first), (method, path)
        # Cached or not, what the handler refuses is still refused: a type the client does not accept,
        # a Range on a blob HEAD (answered by the full handler), another repository's blob.
        refused = client.get("/v2/acme/app/manifests/v1", headers={"Accept": OCI_INDEX})
        assert refused.status_code == 404 and error_codes(refused) == ["MANIFEST_UNKNOWN"]
        ranged = client.head(f"/v2/acme/app/blobs/{sha256(layer)}", headers={"Range": "bytes=0-9"})
        assert ranged.status_code == 206 and ranged.headers["content-length"] == "10"
        assert client.head(f"/v2/acme/other/blobs/{sha256(layer)}").status_code == 404


def test_a_moved_tag_is_seen_at_once_by_every_worker(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(workers=2)
    config, layer = b'{"architecture":"amd64","os":"linux"}', b"x" * 2048
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for blob in (config, layer):
            push_blob(client, "acme/app", blob)
        for round_ in range(6):
            manifest = image_manifest(config, [layer], annotations={"round": str(round_)})
            assert push_manifest(client, "acme/app", "latest", manifest, OCI_MANIFEST).status_code == 201
            # New connections land on either worker; each must see the push that was just acknowledged.
            for _ in range(4):
                with httpx.Client(base_url=server.url, timeout=30) as fresh:
                    pulled = fresh.get("/v2/acme/app/manifests/latest", headers={"Accept": OCI_MANIFEST})
                    assert pulled.status_code == 200 and pulled.content == manifest
        assert client.delete("/v2/acme/app/manifests/latest").status_code == 202
        for _ in range(4):
            with httpx.Client(base_url=server.url, timeout=30) as fresh:
                assert fresh.get("/v2/acme/app/manifests/latest").status_code == 404


def test_cached_pulls_are_audited_like_any_other(open_server: ServerProcess) -> None:
    with httpx.Client(base_url=open_server.url, timeout=30) as client:
        config, layer = b'{"architecture":"amd64","os":"linux"}', b"y" * 512
        _push_image(client, "acme/audited", "v1", config, layer)
        for _ in range(3):
            assert client.get("/v2/acme/audited/manifests/v1").status_code == 200
    open_server.stop()  # flushes the buffered audit events
    pulls = audit_events(open_server, action="pull", target="acme/audited:v1")
    assert len(pulls) == 3


def test_with_token_auth_only_a_token_granting_the_pull_gets_a_cached_answer(
    start_server: Callable[..., ServerProcess], tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = tmp_path_factory.mktemp("hot-token") / "data"
    server = AuthServer(data, env=auth_env("token", admin_username=ROOT[0], admin_password=ROOT[1])).start()
    try:
        cli = PortsideCli(server)
        cli.create_user(*ALICE)
        alice = Caller(server.url, "token", ALICE)
        image = push_small_image_as(alice, "alice/app")
        alice.close()
        issuer = TokenIssuer(KeyRing(server.data_dir / "keys"), "portside", "portside", 300)
        pull, _, _ = issuer.issue("alice", [Scope("repository", "alice/app", frozenset({"pull"}))])
        other, _, _ = issuer.issue("alice", [Scope("repository", "alice/other", frozenset({"pull"}))])
        url = f"{server.url}/v2/alice/app/manifests/v1"
        first, second = _twice(lambda: httpx.get(url, headers={"Authorization": f"Bearer {pull}"}, timeout=30))
        assert first.status_code == 200 and _comparable(second) == _comparable(first)
        assert second.content == image.manifest
        # The manifest is cached now; these must still be refused as the full handler refuses them.
        assert httpx.get(url, timeout=30).status_code == 401
        assert httpx.get(url, headers={"Authorization": f"Bearer {other}"}, timeout=30).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer not-a-token"}, timeout=30).status_code == 401
    finally:
        server.stop()
