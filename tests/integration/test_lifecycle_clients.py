"""A real client meets the lifecycle rules: skopeo pushes refused by an immutable tag rule and by a
namespace's default quota print the registry's message, naming the rule or the quota."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.accounts import AuthServer, PortsideCli, auth_env, basic_header
from tests.support.clients import ClientError, ClientSandbox
from tests.support.images import build_image_layout

ALICE = ("alice", "alice-password-1")
DEFAULT_QUOTA = 200_000

pytestmark = [
    pytest.mark.integration,
    pytest.mark.clients,
    pytest.mark.timeout(180),
    pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed (apt-get install skopeo)"),
]


@pytest.fixture
def server(start_server: Callable[..., AuthServer]) -> AuthServer:
    """auth = basic, alice, and a default quota for every namespace."""
    started = start_server(env=auth_env("basic", default_namespace_quota_bytes=DEFAULT_QUOTA))
    PortsideCli(started).create_user(*ALICE)
    return started


@pytest.fixture
def sandbox(server: AuthServer, tmp_path: Path) -> Iterator[ClientSandbox]:
    with ClientSandbox.create(tmp_path / "clients", server.host, credentials=ALICE) as made:
        yield made


def _api(server: AuthServer, method: str, path: str, **kwargs: object) -> httpx.Response:
    headers = {"Authorization": basic_header(*ALICE)}
    return httpx.request(method, f"{server.url}/api/v1{path}", headers=headers, timeout=30.0, **kwargs)  # type: ignore[arg-type]


def test_skopeo_push_moving_an_immutable_tag_shows_the_rule(server: AuthServer, sandbox: ClientSandbox) -> None:
    rule = _api(server, "POST", "/immutable-rules", json={"scope_kind": "namespace", "scope": "alice", "pattern": "v*"})
    assert rule.status_code == 201, rule.text
    first = build_image_layout(sandbox.work / "first", layers=1, layer_size=4096, seed=501)
    second = build_image_layout(sandbox.work / "second", layers=1, layer_size=4096, seed=502)
    target = sandbox.docker_ref("alice/app", "v1")
    pushed = sandbox.skopeo_copy(first.oci_ref, target, preserve_digests=True)
    assert pushed == first.manifest_digest
    # The same image again is fine; another one onto the protected tag is refused, and skopeo says why.
    sandbox.skopeo_copy(first.oci_ref, target, preserve_digests=True)
    with pytest.raises(ClientError) as refused:
        sandbox.skopeo_copy(second.oci_ref, target, preserve_digests=True)
    stderr = refused.value.stderr_text
    assert f"immutable rule {rule.json()['id']}" in stderr and "'v*'" in stderr, stderr
    assert sandbox.skopeo_inspect_raw(target) == first.manifest_bytes
    # Tags the rule does not match still move.
    sandbox.skopeo_copy(second.oci_ref, sandbox.docker_ref("alice/app", "latest"), preserve_digests=True)


def test_skopeo_push_over_the_default_quota_shows_the_quota(server: AuthServer, sandbox: ClientSandbox) -> None:
    small = build_image_layout(sandbox.work / "small", layers=1, layer_size=4096, seed=503)
    sandbox.skopeo_copy(small.oci_ref, sandbox.docker_ref("alice/app", "small"), preserve_digests=True)
    quota = _api(server, "GET", "/quotas/alice").json()
    assert quota["limit_bytes"] == DEFAULT_QUOTA and quota["source"] == "default"
    used = quota["used_bytes"]
    assert used > 4096

    big = build_image_layout(sandbox.work / "big", layers=1, layer_size=3 * DEFAULT_QUOTA, seed=504)
    with pytest.raises(ClientError) as refused:
        sandbox.skopeo_copy(big.oci_ref, sandbox.docker_ref("alice/app", "big"), preserve_digests=True)
    assert "storage quota of namespace 'alice' exceeded" in refused.value.stderr_text, refused.value.stderr_text
    assert _api(server, "GET", "/quotas/alice").json()["used_bytes"] == used
