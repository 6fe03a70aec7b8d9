"""Real clients (skopeo, podman) logging in to a registry with access control, in token and Basic mode.

Each test gets its own :class:`ClientSandbox` (auth file, storage and caches private
to it); accounts, tokens and grants are made with the ``portside`` CLI.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.accounts import AuthServer, PortsideCli, auth_env
from tests.support.clients import ClientError, ClientSandbox
from tests.support.images import BuiltImage, build_image_layout, read_blob, resolve_tag, sha256_digest

needs_skopeo = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
needs_podman = pytest.mark.skipif(
    shutil.which("podman") is None or os.geteuid() != 0, reason="podman (run as root here) is not available"
)

pytestmark = [pytest.mark.integration, pytest.mark.clients, pytest.mark.timeout(180), needs_skopeo]

ALICE = ("alice", "alice-password-1")

MakeSandbox = Callable[..., ClientSandbox]


@dataclass
class Site:
    """A server in one auth mode, with alice, her robot alice+ci (push on alice/ci) and a public image."""

    mode: str
    server: AuthServer
    cli: PortsideCli
    public_image: BuiltImage

    @property
    def host(self) -> str:
        return self.server.host


def _copy(sandbox: ClientSandbox, image: BuiltImage, repository: str, tag: str = "v1") -> str:
    return sandbox.skopeo_copy(image.oci_ref, sandbox.docker_ref(repository, tag), preserve_digests=True)


def _start_site(mode: str, base: Path) -> Site:
    server = AuthServer(base / "data", env=auth_env(mode)).start()
    try:
        cli = PortsideCli(server)
        cli.create_user(*ALICE)
        cli.create_robot("alice", "ci")
        cli.grant("robot:alice+ci", "repository:alice/ci", "push")
        with ClientSandbox.create(base / "setup", server.host, credentials=ALICE) as sandbox:
            image = build_image_layout(sandbox.work / "public", layers=1, layer_size=4096, seed=301)
            _copy(sandbox, image, "alice/public")
        cli.set_public("alice/public")
        return Site(mode, server, cli, image)
    except BaseException:
        server.stop()
        raise


@pytest.fixture(scope="module", params=["token", "basic"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    started = _start_site(request.param, tmp_path_factory.mktemp(f"clients-{request.param}"))
    yield started
    started.server.stop()


@pytest.fixture
def sandbox_for(tmp_path: Path) -> Iterator[MakeSandbox]:
    made: list[ClientSandbox] = []

    def make(site: Site, credentials: tuple[str, str] | None = None) -> ClientSandbox:
        sandbox = ClientSandbox.create(tmp_path / f"sandbox-{len(made)}", site.host, credentials=credentials)
        made.append(sandbox)
        return sandbox

    yield make
    for sandbox in made:
        sandbox.close()


def _repo(prefix: str) -> str:
    return f"alice/{prefix}-{uuid.uuid4().hex[:8]}"


# Both modes


def test_skopeo_login_then_push_and_pull_a_private_image(site: Site, sandbox_for: MakeSandbox) -> None:
    clients = sandbox_for(site)
    result = clients.skopeo_login(*ALICE)
    assert "Login Succeeded" in result.text + result.stderr_text
    image = build_image_layout(clients.work / "src", layers=2, layer_size=32 * 1024, seed=302)
    repository = _repo("app")

    assert _copy(clients, image, repository) == image.manifest_digest

    assert clients.skopeo_inspect_raw(clients.docker_ref(repository, "v1")) == image.manifest_bytes
    out = clients.work / "out"
    clients.skopeo_copy(clients.docker_ref(repository, "v1"), f"oci:{out}:v1", preserve_digests=True)
    assert resolve_tag(out, "v1").digest == image.manifest_digest
    for digest in image.blob_digests:
        assert sha256_digest(read_blob(out, digest)) == digest

    # Nobody else sees it.
    anonymous = sandbox_for(site)
    with pytest.raises(ClientError):
        anonymous.skopeo_inspect_raw(anonymous.docker_ref(repository, "v1"))


def test_a_wrong_password_fails_and_the_registrys_message_reaches_the_user(
    site: Site, sandbox_for: MakeSandbox
) -> None:
    clients = sandbox_for(site)
    # skopeo login words the failure itself; the registry's message is in its debug log.
    result = clients.skopeo(
        "--debug",
        "login",
        "--tls-verify=false",
        "--authfile",
        str(clients.auth_file),
        "--username",
        ALICE[0],
        "--password",
        "not-her-password",
        site.host,
        check=False,
    )
    assert result.returncode != 0
    assert "invalid username/password" in result.stderr_text
    assert "unauthorized: invalid username or password" in result.stderr_text
    assert site.host not in clients.auth_file.read_text()

    # With a wrong password already in the auth file, the registry's message is what skopeo prints.
    stale = sandbox_for(site, (ALICE[0], "not-her-password"))
    with pytest.raises(ClientError) as refused:
        stale.skopeo_inspect_raw(stale.docker_ref("alice/public", "v1"))
    assert "unauthorized: invalid username or password" in refused.value.stderr_text


def test_anonymous_inspect_works_on_a_public_image_and_fails_on_a_private_one(
    site: Site,
    sandbox_for: MakeSandbox,
) -> None:
    owner = sandbox_for(site, ALICE)
    image = build_image_layout(owner.work / "src", layers=1, layer_size=4096, seed=303)
    private = _repo("private")
    _copy(owner, image, private)

    anonymous = sandbox_for(site)
    public = anonymous.skopeo_inspect(anonymous.docker_ref("alice/public", "v1"))
    assert public["Digest"] == site.public_image.manifest_digest
    with pytest.raises(ClientError) as refused:
        anonymous.skopeo_inspect(anonymous.docker_ref(private, "v1"))
    assert "unauthorized" in refused.value.stderr_text.lower() or "denied" in refused.value.stderr_text.lower()
    # An anonymous push into someone's namespace is refused too.
    with pytest.raises(ClientError):
        _copy(anonymous, image, _repo("anonymous-push"))


# Token mode only (the token instance of ``site``)

token_mode = pytest.mark.parametrize("site", ["token"], indirect=True)


@needs_podman
@token_mode
def test_podman_login_push_and_pull(site: Site, sandbox_for: MakeSandbox) -> None:
    clients = sandbox_for(site)
    clients.podman_login(*ALICE)
    image_id = clients.podman_pull(clients.image_ref("alice/public", "v1"))
    assert f"sha256:{image_id}" == site.public_image.config_digest

    repository = _repo("podman")
    pushed = clients.podman_push(image_id, clients.docker_ref(repository, "v1"))

    assert sha256_digest(clients.skopeo_inspect_raw(clients.docker_ref(repository, "v1"))) == pushed
    clients.podman_rmi(image_id)
    again = clients.podman_pull(clients.image_ref(repository, "v1"))
    assert again == image_id
    # Logged out, the private copy is out of reach.
    clients.podman("logout", "--authfile", str(clients.auth_file), site.host)
    with pytest.raises(ClientError):
        clients.podman_pull(clients.image_ref(repository, "v1"))


@token_mode
def test_a_personal_access_token_is_a_password_and_its_role_is_a_ceiling(
    site: Site,
    sandbox_for: MakeSandbox,
) -> None:
    push_token = site.cli.create_token("alice", "push")
    pull_token = site.cli.create_token("alice", "pull")
    repository = _repo("pat")

    pusher = sandbox_for(site)
    pusher.skopeo_login("alice", push_token)
    image = build_image_layout(pusher.work / "src", layers=1, layer_size=4096, seed=304)
    assert _copy(pusher, image, repository) == image.manifest_digest

    puller = sandbox_for(site)
    puller.skopeo_login("alice", pull_token)
    assert puller.skopeo_inspect_raw(puller.docker_ref(repository, "v1")) == image.manifest_bytes
    with pytest.raises(ClientError):
        _copy(puller, image, repository, "v2")
    # A token is bound to its owner.
    assert puller.skopeo_login("bob", pull_token, check=False).returncode != 0


@token_mode
def test_a_robot_token_pushes_where_the_robot_was_granted_and_nowhere_else(
    site: Site,
    sandbox_for: MakeSandbox,
) -> None:
    secret = site.cli.create_token("alice+ci", "push")
    robot = sandbox_for(site)
    robot.skopeo_login("alice+ci", secret)
    image = build_image_layout(robot.work / "src", layers=1, layer_size=4096, seed=305)

    assert _copy(robot, image, "alice/ci") == image.manifest_digest
    assert robot.skopeo_inspect_raw(robot.docker_ref("alice/ci", "v1")) == image.manifest_bytes
    # The robot lives in alice's namespace but has only its grant.
    with pytest.raises(ClientError):
        _copy(robot, image, _repo("elsewhere"))
    assert robot.skopeo_login("alice+ci", "pst_not-the-secret", check=False).returncode != 0
