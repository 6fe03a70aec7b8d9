"""Docker and containerd themselves against a registry with token, and with Basic, authentication.

A Docker engine of the module's own (Debian's ``dockerd``, see :mod:`tests.support.docker_engine`)
logs in, loads an image built here, pushes it (mounting its layers into a second repository),
pulls it back, searches, makes a multi-platform list with ``docker manifest`` and meets an
immutable tag; containerd's ``ctr``, talking to the engine's containerd, pulls and pushes with
credentials. Another engine takes Portside as its ``registry-mirrors``. Images reach an engine
through ``docker load`` of an archive that skopeo writes from an OCI layout made here.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.accounts import AuthServer, PortsideCli, auth_env, basic_header
from tests.support.clients import ClientError, ClientSandbox
from tests.support.distribution import DISTRIBUTION_BINARY, Distribution
from tests.support.docker_engine import DockerEngine, docker_engine_missing
from tests.support.images import BuiltImage, build_image_layout, sha256_digest
from tests.support.observe import log_lines
from tests.support.server import free_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.clients,
    pytest.mark.timeout(300),
    pytest.mark.skipif(docker_engine_missing() is not None, reason=docker_engine_missing() or ""),
]

ALICE = ("alice", "alice-password-1")
BOB = ("bob", "bob-password-1")
DOCKER_V2S2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


class Site:
    """A server in one auth mode (``token`` or ``basic``) with alice and bob, and an engine."""

    def __init__(self, mode: str, base: Path) -> None:
        self.mode = mode
        self.base = base
        self.server = AuthServer(base / "data", env=auth_env(mode)).start()
        try:
            self.cli = PortsideCli(self.server)
            self.cli.create_user(*ALICE)
            self.cli.create_user(*BOB)
            self.skopeo = ClientSandbox.create(base / "skopeo", self.server.host, credentials=ALICE)
        except BaseException:
            self.server.stop()
            raise
        try:
            self.engine = DockerEngine.start()
        except BaseException:
            self.skopeo.close()
            self.server.stop()
            raise

    @property
    def host(self) -> str:
        return self.server.host

    def config(self, name: str) -> Path:
        """A ``DOCKER_CONFIG`` directory of its own: one per user, as on separate machines."""
        path = self.base / "docker-config" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def docker(self, config: Path, *args: str, check: bool = True, stdin: bytes | None = None) -> str:
        """Run ``docker ARGS`` as the user whose configuration is ``config``; its stdout and stderr."""
        result = self.engine.docker(*args, config=config, check=check, stdin=stdin)
        return result.text + "\n" + result.stderr_text

    def login(self, config: Path, user: str, password: str, check: bool = True) -> str:
        """``docker login`` with the password on stdin, as scripts do."""
        return self.docker(
            config, "login", self.host, "-u", user, "--password-stdin", check=check, stdin=password.encode()
        )

    def load(self, image: BuiltImage, reference: str) -> None:
        """Put ``image`` into the engine as ``reference`` (``docker load`` of skopeo's archive)."""
        archive = self.base / f"{uuid.uuid4().hex[:8]}.tar"
        self.skopeo.skopeo_copy(f"oci:{image.layout}:{image.tag}", f"docker-archive:{archive}:{reference}")
        self.docker(self.config("loader"), "load", "-i", str(archive))
        archive.unlink()

    def inspect(self, reference: str) -> dict[str, Any]:
        """``docker image inspect REFERENCE``, parsed."""
        inspected = json.loads(self.docker(self.config("loader"), "image", "inspect", reference).strip())
        assert isinstance(inspected, list) and len(inspected) == 1, inspected
        found: dict[str, Any] = inspected[0]
        return found

    def close(self) -> None:
        self.engine.stop()
        self.skopeo.close()
        self.server.stop()


@pytest.fixture(scope="module", params=["token", "basic"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    made = Site(request.param, tmp_path_factory.mktemp(f"docker-engine-{request.param}"))
    try:
        yield made
    finally:
        made.close()


def _repo(prefix: str) -> str:
    return f"alice/{prefix}-{uuid.uuid4().hex[:8]}"


def _requests(server: AuthServer) -> set[str]:
    """``METHOD PATH`` of each request in a server's access log."""
    assert server.log_path is not None
    lines = log_lines(server.log_path)
    return {f"{line['method']} {line['path']}" for line in lines if line.get("message") == "request"}


def _pushed_digest(output: str, tag: str) -> str:
    found = re.search(rf"^{re.escape(tag)}: digest: (sha256:[0-9a-f]{{64}}) size: \d+$", output, re.MULTILINE)
    assert found, output
    return found.group(1)


def test_docker_logs_in_pushes_mounts_pulls_and_searches_a_private_image(site: Site) -> None:
    alice = site.config("alice")
    assert "Login Succeeded" in site.login(alice, *ALICE)
    # Layers larger than what the server takes in one go: docker streams each in a PATCH of no stated length.
    image = build_image_layout(site.base / "app", layers=2, layer_size=6 * 1024 * 1024, seed=701, tag="v1")
    first, second = _repo("app"), _repo("copy")
    site.load(image, f"{site.host}/{first}:v1")

    pushed = site.docker(alice, "push", f"{site.host}/{first}:v1")
    digest = _pushed_digest(pushed, "v1")
    stored = site.skopeo.skopeo_inspect_raw(site.skopeo.docker_ref(first, "v1"))
    assert sha256_digest(stored) == digest
    manifest = json.loads(stored)
    assert manifest["mediaType"] == DOCKER_V2S2
    assert manifest["config"]["digest"] == site.inspect(f"{site.host}/{first}:v1")["Id"]

    # The same image in another of her repositories: its layers are mounted, not sent again.
    site.docker(site.config("loader"), "tag", f"{site.host}/{first}:v1", f"{site.host}/{second}:v1")
    copied = site.docker(alice, "push", f"{site.host}/{second}:v1")
    assert copied.count(f"Mounted from {first}") == 2, copied
    assert _pushed_digest(copied, "v1") == digest

    # Gone from the engine, pulled back: the same manifest, config and layers.
    site.docker(site.config("loader"), "rmi", f"{site.host}/{first}:v1", f"{site.host}/{second}:v1")
    pulled = site.docker(alice, "pull", f"{site.host}/{first}:v1")
    assert f"Digest: {digest}" in pulled
    inspected = site.inspect(f"{site.host}/{first}:v1")
    assert inspected["RepoDigests"] == [f"{site.host}/{first}@{digest}"]
    assert inspected["RootFS"] == {"Type": "layers", "Layers": list(image.diff_ids)}

    # docker search finds it for her, and for nobody else.
    assert first in site.docker(alice, "search", f"{site.host}/{first.split('/')[1]}")
    bob = site.config("bob")
    site.login(bob, *BOB)
    assert first not in site.docker(bob, "search", f"{site.host}/{first.split('/')[1]}")
    refused = site.engine.docker("pull", f"{site.host}/{first}:v1", config=bob, check=False)
    assert refused.returncode != 0
    assert "denied" in refused.stderr_text or "unauthorized" in refused.stderr_text, refused.stderr_text

    # Logged out, she is anonymous again.
    site.docker(alice, "logout", site.host)
    assert site.host not in (alice / "config.json").read_text()
    assert site.engine.docker("pull", f"{site.host}/{first}:v1", config=alice, check=False).returncode != 0


def test_a_wrong_password_is_refused_and_a_public_image_pulls_without_her_credentials(site: Site) -> None:
    stranger = site.config("stranger")
    refused = site.engine.docker(
        "login", site.host, "-u", ALICE[0], "--password-stdin", config=stranger, stdin=b"not-her-password", check=False
    )
    assert refused.returncode != 0
    # The token server's message reaches the user; with Basic, docker reports the status only.
    expected = "unauthorized: invalid username or password" if site.mode == "token" else "401 Unauthorized"
    assert expected in refused.stderr_text, refused.stderr_text
    assert not (stranger / "config.json").exists() or site.host not in (stranger / "config.json").read_text()

    image = build_image_layout(site.base / "public", layers=1, layer_size=16 * 1024, seed=702, tag="v1")
    repository = _repo("public")
    site.skopeo.skopeo_copy(f"oci:{image.layout}:v1", site.skopeo.docker_ref(repository, "v1"), format="v2s2")
    site.cli.set_public(repository)
    reference = f"{site.host}/{repository}:v1"
    if site.mode == "basic":
        # docker sends nothing after a Basic challenge without credentials of its own (its
        # client's rule, whatever the registry would allow): any account's login will do.
        anonymous = site.engine.docker("pull", reference, config=stranger, check=False)
        assert "no basic auth credentials" in anonymous.stderr_text, anonymous.stderr_text
        site.login(stranger, *BOB)
    pulled = site.docker(stranger, "pull", reference)
    assert f"Status: Downloaded newer image for {reference}" in pulled
    assert site.inspect(reference)["RootFS"] == {"Type": "layers", "Layers": list(image.diff_ids)}
    # containerd asks without credentials in both modes.
    site.engine.ctr("images", "pull", "--plain-http", "--snapshotter", "native", reference)


def test_docker_manifest_pushes_a_multi_platform_list_and_docker_pulls_its_platform(site: Site) -> None:
    alice = site.config("alice-manifests")
    site.login(alice, *ALICE)
    sources = {}
    for arch, seed in (("amd64", 703), ("arm64", 704)):
        image = build_image_layout(
            site.base / f"multi-{arch}", layers=1, layer_size=8 * 1024, seed=seed, platform=("linux", arch), tag="v1"
        )
        repository = _repo(f"single-{arch}")
        # Pushed by docker: `docker manifest push` rewrites each child manifest in docker's own
        # layout before it pushes it, and only a manifest docker wrote comes out byte for byte.
        site.load(image, f"{site.host}/{repository}:v1")
        site.docker(alice, "push", f"{site.host}/{repository}:v1")
        sources[arch] = (repository, image)
    target = f"{site.host}/{_repo('multi')}:v1"

    refs = [f"{site.host}/{repository}:v1" for repository, _ in sources.values()]
    site.docker(alice, "manifest", "create", "--insecure", target, *refs)
    pushed = site.docker(alice, "manifest", "push", "--insecure", target).strip().splitlines()[-1]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", pushed), pushed

    repository, _, _ = target.removeprefix(f"{site.host}/").partition(":")
    stored = site.skopeo.skopeo_inspect_raw(site.skopeo.docker_ref(repository, "v1"))
    assert sha256_digest(stored) == pushed
    listed = json.loads(stored)
    assert listed["mediaType"] == DOCKER_LIST
    platforms = {entry["platform"]["architecture"]: entry["digest"] for entry in listed["manifests"]}
    assert set(platforms) == {"amd64", "arm64"}

    # The engine is linux/amd64: it pulls that child, whose layers the list's push mounted across.
    assert f"Digest: {pushed}" in site.docker(alice, "pull", target)
    inspected = site.inspect(target)
    assert f"{site.host}/{repository}@{pushed}" in inspected["RepoDigests"]
    assert inspected["RootFS"] == {"Type": "layers", "Layers": list(sources["amd64"][1].diff_ids)}


def test_containerd_pulls_and_pushes_with_credentials_and_is_refused_without(site: Site) -> None:
    image = build_image_layout(site.base / "ctr", layers=2, layer_size=32 * 1024, seed=705, tag="v1")
    source, copy = _repo("ctr"), _repo("ctr-copy")
    digest = site.skopeo.skopeo_copy(f"oci:{image.layout}:v1", site.skopeo.docker_ref(source, "v1"))
    assert digest == image.manifest_digest
    user = f"{ALICE[0]}:{ALICE[1]}"

    anonymous = site.engine.ctr("images", "pull", "--plain-http", f"{site.host}/{source}:v1", check=False)
    assert anonymous.returncode != 0
    assert "pull access denied" in anonymous.stderr_text or "401 Unauthorized" in anonymous.stderr_text, (
        anonymous.stderr_text
    )

    site.engine.ctr(
        "images", "pull", "--plain-http", "--snapshotter", "native", "--user", user, f"{site.host}/{source}:v1"
    )
    listed = site.engine.ctr("images", "ls").text
    assert re.search(rf"^{re.escape(site.host)}/{source}:v1\s+\S+\s+{image.manifest_digest}\s", listed, re.MULTILINE), (
        listed
    )

    site.engine.ctr("images", "tag", f"{site.host}/{source}:v1", f"{site.host}/{copy}:v1")
    site.engine.ctr("images", "push", "--plain-http", "--user", user, f"{site.host}/{copy}:v1")
    assert site.skopeo.skopeo_inspect_raw(site.skopeo.docker_ref(copy, "v1")) == image.manifest_bytes
    with pytest.raises(ClientError):
        site.engine.ctr("images", "push", "--plain-http", f"{site.host}/{copy}:v2-anonymous", f"{site.host}/{copy}:v1")


@pytest.mark.skipif(not DISTRIBUTION_BINARY.exists(), reason="Debian's docker-registry is not installed")
def test_a_docker_engine_pulls_docker_hub_names_through_portside_as_its_registry_mirror(tmp_path: Path) -> None:
    """Portside as the engine's ``registry-mirrors``, a whole-registry mirror of an upstream that
    stands in for Docker Hub (Distribution on loopback): a pull by a short name goes through it, and
    once cached it pulls again with the upstream stopped."""
    (tmp_path / "upstream").mkdir()
    upstream = Distribution(tmp_path / "upstream", free_port()).start()
    mirrors = [{"prefix": "", "upstream": upstream.url, "host": "docker.io", "pull": "public"}]
    mirror = AuthServer(tmp_path / "mirror", env={**auth_env("token"), "PORTSIDE_MIRRORS": json.dumps(mirrors)})
    with contextlib.ExitStack() as stack:
        stack.callback(upstream.stop)
        mirror.start()
        stack.callback(mirror.stop)
        publisher = stack.enter_context(ClientSandbox.create(tmp_path / "skopeo", f"127.0.0.1:{upstream.port}"))
        engine = DockerEngine.start("--registry-mirror", mirror.url)
        stack.callback(engine.stop)
        image = build_image_layout(tmp_path / "image", layers=2, layer_size=256 * 1024, seed=706, tag="v1")
        name = f"mirrored-{uuid.uuid4().hex[:8]}"
        publisher.skopeo_copy(f"oci:{image.layout}:v1", publisher.docker_ref(f"library/{name}", "v1"), format="v2s2")
        config = tmp_path / "docker-config"
        config.mkdir()

        pulled = engine.docker("pull", f"{name}:v1", config=config).text
        assert f"Status: Downloaded newer image for {name}:v1" in pulled
        layers = engine.docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", f"{name}:v1", config=config)
        assert json.loads(layers.text) == list(image.diff_ids)
        # The engine asked the mirror (anonymously: a pull token for a public mirror) by the tag.
        by_tag = {f"{method} /v2/library/{name}/manifests/v1" for method in ("HEAD", "GET")}
        assert by_tag & _requests(mirror)

        upstream.stop()
        engine.docker("rmi", f"{name}:v1", config=config)
        again = engine.docker("pull", f"{name}:v1", config=config).text
        assert f"Status: Downloaded newer image for {name}:v1" in again


def test_docker_push_moving_an_immutable_tag_shows_the_rule(site: Site) -> None:
    alice = site.config("alice-immutable")
    site.login(alice, *ALICE)
    repository = _repo("pinned")
    rule = httpx.post(
        f"{site.server.url}/api/v1/immutable-rules",
        json={"scope_kind": "repository", "scope": repository, "pattern": "v*"},
        headers={"Authorization": basic_header(*ALICE)},
        timeout=30,
    )
    assert rule.status_code == 201, rule.text
    reference = f"{site.host}/{repository}:v1"
    first = build_image_layout(site.base / "pinned-1", layers=1, layer_size=8 * 1024, seed=707, tag="v1")
    second = build_image_layout(site.base / "pinned-2", layers=1, layer_size=8 * 1024, seed=708, tag="v1")
    site.load(first, reference)
    digest = _pushed_digest(site.docker(alice, "push", reference), "v1")

    # Another image onto the protected tag: refused, and docker prints the registry's reason.
    site.load(second, reference)
    refused = site.engine.docker("push", reference, config=alice, check=False)
    assert refused.returncode != 0
    assert f"immutable rule {rule.json()['id']}" in refused.stderr_text, refused.stderr_text
    assert sha256_digest(site.skopeo.skopeo_inspect_raw(site.skopeo.docker_ref(repository, "v1"))) == digest
