"""The pull-through cache against real upstreams on loopback: another Portside (token auth with
credentials) behind a counting relay, and Debian's docker-registry (CNCF Distribution)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.accounts import Caller, PortsideCli, auth_env, basic_header, manifest_variant, push_small_image
from tests.support.clients import ClientSandbox, tool_available
from tests.support.distribution import DISTRIBUTION_BINARY, Distribution
from tests.support.protocol import (
    OCI_INDEX,
    OCI_MANIFEST,
    Image,
    error_codes,
    image_manifest,
    push_image,
    push_manifest,
    sha256,
)
from tests.support.relay import Relay
from tests.support.server import ServerProcess, free_port

pytestmark = pytest.mark.integration

UPSTREAM_USER, UPSTREAM_PASSWORD = "puller", "puller-password-1"
LOCAL_USER, LOCAL_PASSWORD = "alice", "alice-password-1"


@dataclass
class Setup:
    """The upstreams, the relay and the mirror of this module."""

    upstream: ServerProcess
    relay: Relay
    distribution: Distribution
    mirror: ServerProcess

    def publisher(self) -> Caller:
        """Pushes to the Portside upstream as its user."""
        return Caller(self.upstream.url, "token", (UPSTREAM_USER, UPSTREAM_PASSWORD))

    def puller(self) -> httpx.Client:
        """Reads from the mirror as a signed-in user."""
        return httpx.Client(
            base_url=self.mirror.url, timeout=60.0, headers={"Authorization": basic_header(LOCAL_USER, LOCAL_PASSWORD)}
        )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    if not DISTRIBUTION_BINARY.exists():
        pytest.skip(reason="Debian's docker-registry is not installed (apt-get install docker-registry)")
    base = tmp_path_factory.mktemp("proxy")
    upstream = ServerProcess(base / "upstream" / "data", env=auth_env("token")).start()
    PortsideCli(upstream).create_user(UPSTREAM_USER, UPSTREAM_PASSWORD)
    relay = Relay(upstream.url).start()
    (base / "distribution").mkdir()
    distribution = Distribution(base / "distribution", free_port()).start()
    credentials = {"username": UPSTREAM_USER, "password": UPSTREAM_PASSWORD}
    mirrors = [
        {"prefix": "hub", "upstream": relay.url, "host": "hub.example", "manifest_ttl_seconds": 3600, **credentials},
        {"prefix": "fresh", "upstream": relay.url, "manifest_ttl_seconds": 0, **credentials},
        {"prefix": "", "upstream": distribution.url, "host": "docker.io", "manifest_ttl_seconds": 0, "pull": "public"},
    ]
    mirror = ServerProcess(
        base / "mirror" / "data", env={**auth_env("basic"), "PORTSIDE_MIRRORS": json.dumps(mirrors)}
    ).start()
    PortsideCli(mirror).create_user(LOCAL_USER, LOCAL_PASSWORD)
    try:
        yield Setup(upstream, relay, distribution, mirror)
    finally:
        mirror.stop()
        relay.stop()
        distribution.stop()
        upstream.stop()


def push_to_distribution(client: httpx.Client, repo: str, tag: str, layers: int, layer_size: int) -> Image:
    """Push an image the way Distribution takes blobs: ``POST`` a session, then ``PUT ?digest=`` the bytes."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "nonce": os.urandom(8).hex()}).encode()
    blobs = [os.urandom(layer_size) for _ in range(layers)]
    for data in [config, *blobs]:
        session = client.post(f"/v2/{repo}/blobs/uploads/")
        assert session.status_code == 202, session.text
        # Distribution's Location carries its upload state in the query: keep it.
        location = httpx.URL(session.headers["location"]).copy_add_param("digest", sha256(data))
        done = client.put(location, content=data)
        assert done.status_code == 201, done.text
    manifest = image_manifest(config, blobs)
    response = push_manifest(client, repo, tag, manifest, OCI_MANIFEST)
    assert response.status_code == 201, response.text
    return Image(manifest, sha256(manifest), OCI_MANIFEST, config, blobs)


def unique(name: str) -> str:
    return f"{UPSTREAM_USER}/{name}-{os.urandom(4).hex()}"


def _manifest(client: httpx.Client, path: str, method: str = "GET") -> httpx.Response:
    return client.request(method, path, headers={"Accept": OCI_MANIFEST})


def test_pulls_through_a_token_upstream_with_credentials(setup: Setup) -> None:
    repo = unique("app")
    image = push_small_image(setup.publisher(), repo, "v1", layer_size=4096)
    with setup.puller() as mirror:
        first = _manifest(mirror, f"/v2/hub/{repo}/manifests/v1")
        assert first.status_code == 200, first.text
        assert first.content == image.manifest
        assert first.headers["docker-content-digest"] == image.digest
        for digest in (image.config, image.layer):
            blob = mirror.get(f"/v2/hub/{repo}/blobs/{digest}")
            assert blob.status_code == 200, blob.text
            assert sha256(blob.content) == digest
        # The upstream's token endpoint was asked, with the mirror's credentials.
        assert setup.relay.count("GET", "/token") >= 1
        gets = setup.relay.count("GET", f"/{repo}/manifests/v1")
        again = _manifest(mirror, f"/v2/hub/{repo}/manifests/v1")
        assert again.content == image.manifest
        by_digest = _manifest(mirror, f"/v2/hub/{repo}/manifests/{image.digest}")
        assert by_digest.content == image.manifest
        blob = mirror.get(f"/v2/hub/{repo}/blobs/{image.layer}")
        assert sha256(blob.content) == image.layer
    # Fresh tag, cached digest and cached blob: the upstream heard nothing more about them.
    assert setup.relay.count("GET", f"/{repo}/manifests/v1") == gets
    assert setup.relay.count("HEAD", f"/{repo}/manifests/v1") == 0
    assert setup.relay.count("GET", f"/{repo}/blobs/{image.layer}") == 1


def test_anonymous_callers_may_not_pull_an_authenticated_mirror(setup: Setup) -> None:
    repo = unique("private")
    push_small_image(setup.publisher(), repo, "v1")
    response = httpx.get(f"{setup.mirror.url}/v2/hub/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert response.status_code == 401
    assert "www-authenticate" in response.headers
    # Nothing was fetched for a caller who may not pull.
    assert setup.relay.count("GET", f"/{repo}/manifests/v1") == 0


def test_tag_is_revalidated_with_head_after_the_ttl(setup: Setup) -> None:
    repo = unique("moving")
    publisher = setup.publisher()
    image = push_small_image(publisher, repo, "v1")
    path = f"/v2/fresh/{repo}/manifests/v1"
    with setup.puller() as mirror:
        assert _manifest(mirror, path).content == image.manifest
        assert setup.relay.count("GET", f"/{repo}/manifests/v1") == 1
        # The TTL (0 s) is over: one HEAD, no GET, since the digest has not changed.
        assert _manifest(mirror, path).content == image.manifest
        assert setup.relay.count("HEAD", f"/{repo}/manifests/v1") == 1
        assert setup.relay.count("GET", f"/{repo}/manifests/v1") == 1
        # The tag moves upstream: the HEAD sees a new digest and only then a GET fetches it.
        moved = manifest_variant(image)
        response = publisher.put(f"/v2/{repo}/manifests/v1", content=moved, headers={"Content-Type": OCI_MANIFEST})
        assert response.status_code == 201, response.text
        after = _manifest(mirror, path)
        assert after.content == moved
        assert after.headers["docker-content-digest"] == sha256(moved)
    assert setup.relay.count("HEAD", f"/{repo}/manifests/v1") == 2
    assert setup.relay.count("GET", f"/{repo}/manifests/v1") == 2


def test_tag_moved_upstream_is_not_seen_before_the_ttl(setup: Setup) -> None:
    repo = unique("steady")
    publisher = setup.publisher()
    image = push_small_image(publisher, repo, "v1")
    path = f"/v2/hub/{repo}/manifests/v1"
    with setup.puller() as mirror:
        assert _manifest(mirror, path).content == image.manifest
        moved = manifest_variant(image)
        response = publisher.put(f"/v2/{repo}/manifests/v1", content=moved, headers={"Content-Type": OCI_MANIFEST})
        assert response.status_code == 201
        # Within the TTL (an hour) the cached tag is served without asking the upstream.
        assert _manifest(mirror, path).content == image.manifest
    assert setup.relay.count("HEAD", f"/{repo}/manifests/v1") == 0
    assert setup.relay.count("GET", f"/{repo}/manifests/v1") == 1


def test_cached_content_is_served_while_the_upstream_answers_429(setup: Setup) -> None:
    repo = unique("limited")
    image = push_small_image(setup.publisher(), repo, "v1")
    push_small_image(setup.publisher(), repo, "v2")
    path = f"/v2/fresh/{repo}/manifests"
    with setup.puller() as mirror:
        assert _manifest(mirror, f"{path}/v1").status_code == 200
        assert mirror.get(f"/v2/fresh/{repo}/blobs/{image.layer}").status_code == 200
        setup.relay.fail_status = 429
        try:
            stale = _manifest(mirror, f"{path}/v1")
            assert stale.status_code == 200
            assert stale.content == image.manifest
            assert sha256(mirror.get(f"/v2/fresh/{repo}/blobs/{image.layer}").content) == image.layer
            missing = _manifest(mirror, f"{path}/v2")
            assert missing.status_code == 503
            assert error_codes(missing) == ["UNAVAILABLE"]
            assert "not cached" in missing.json()["errors"][0]["message"]
        finally:
            setup.relay.fail_status = None
    # The revalidation was tried (and refused with 429), by HEAD.
    assert setup.relay.count("HEAD", f"/{repo}/manifests/v1") >= 1


def test_first_client_gets_blob_bytes_while_it_is_being_cached(setup: Setup) -> None:
    repo = unique("large")
    publisher = setup.publisher()
    image = push_small_image(publisher, repo, "v1", layer_size=2 * 1024 * 1024)
    relay = setup.relay
    relay.hold_suffix = f"/blobs/{image.layer}"
    relay.release.clear()
    relay.held.clear()
    try:
        with setup.puller() as mirror:
            assert _manifest(mirror, f"/v2/hub/{repo}/manifests/v1").status_code == 200
            with mirror.stream("GET", f"/v2/hub/{repo}/blobs/{image.layer}") as response:
                assert response.status_code == 200, response.read()
                assert response.headers["content-length"] == str(2 * 1024 * 1024)
                chunks = response.iter_bytes()
                first = next(chunks)
                # The upstream has sent only its first chunk and is waiting for us.
                assert first
                assert relay.held.is_set()
                assert not relay.release.is_set()
                relay.release.set()
                body = first + b"".join(chunks)
            assert sha256(body) == image.layer
            relay.hold_suffix = None
            cached = mirror.get(f"/v2/hub/{repo}/blobs/{image.layer}")
            assert sha256(cached.content) == image.layer
            ranged = mirror.get(f"/v2/hub/{repo}/blobs/{image.layer}", headers={"Range": "bytes=10-19"})
            assert ranged.status_code == 206
            assert ranged.content == body[10:20]
    finally:
        relay.hold_suffix = None
        relay.release.set()
    assert relay.count("GET", f"/blobs/{image.layer}") == 1


def test_concurrent_first_requests_for_one_blob_both_succeed(setup: Setup) -> None:
    repo = unique("race")
    image = push_small_image(setup.publisher(), repo, "v1", layer_size=512 * 1024)
    with setup.puller() as first, setup.puller() as second:
        url = f"/v2/hub/{repo}/blobs/{image.layer}"
        with first.stream("GET", url) as one, second.stream("GET", url) as two:
            bodies = [b"".join(one.iter_bytes()), b"".join(two.iter_bytes())]
        assert [sha256(body) for body in bodies] == [image.layer, image.layer]
        assert sha256(first.get(url).content) == image.layer


def test_containerd_ns_parameter_routes_to_the_mirror_of_that_host(setup: Setup) -> None:
    repo = unique("ns")
    image = push_small_image(setup.publisher(), repo, "v1")
    with setup.puller() as mirror:
        head = mirror.head(f"/v2/{repo}/manifests/v1", params={"ns": "hub.example"}, headers={"Accept": OCI_MANIFEST})
        assert head.status_code == 200
        assert head.headers["docker-content-digest"] == image.digest
        by_digest = mirror.get(f"/v2/{repo}/manifests/{image.digest}", params={"ns": "hub.example"})
        assert by_digest.content == image.manifest
        blob = mirror.get(f"/v2/{repo}/blobs/{image.layer}", params={"ns": "hub.example"})
        assert sha256(blob.content) == image.layer
        # Stored under the mirror's prefix.
        assert _manifest(mirror, f"/v2/hub/{repo}/manifests/v1").content == image.manifest


def test_pushes_and_deletes_are_refused_in_mirrors(setup: Setup) -> None:
    with setup.puller() as mirror:
        for path in ("/v2/hub/puller/app/blobs/uploads/", "/v2/library/local/blobs/uploads/"):
            response = mirror.post(path)
            assert response.status_code == 405
            assert error_codes(response) == ["UNSUPPORTED"]
            assert "read-only mirror" in response.json()["errors"][0]["message"]
        manifest = push_manifest(mirror, "hub/puller/app", "v1", b"{}", OCI_MANIFEST)
        assert manifest.status_code == 405
        assert mirror.delete(f"/v2/hub/puller/app/manifests/{sha256(b'x')}").status_code == 405


def test_whole_registry_mirror_of_distribution_serves_cache_when_upstream_stops(setup: Setup) -> None:
    repo = f"library/alpine-{os.urandom(4).hex()}"
    with httpx.Client(base_url=setup.distribution.url, timeout=60.0) as upstream:
        image = push_to_distribution(upstream, repo, "latest", layers=2, layer_size=8192)
        other = push_to_distribution(upstream, repo, "other", layers=1, layer_size=1024)
    with httpx.Client(base_url=setup.mirror.url, timeout=60.0) as anonymous:
        # This mirror allows anonymous pulls (pull = "public"); a Docker daemon's registry-mirrors asks this way.
        tagged = _manifest(anonymous, f"/v2/{repo}/manifests/latest")
        assert tagged.status_code == 200, tagged.text
        assert tagged.content == image.manifest
        for layer in image.layers:
            assert anonymous.get(f"/v2/{repo}/blobs/{sha256(layer)}").content == layer
        assert anonymous.get(f"/v2/{repo}/blobs/{sha256(image.config)}").content == image.config
        setup.distribution.stop()
        try:
            stale = _manifest(anonymous, f"/v2/{repo}/manifests/latest")
            assert stale.status_code == 200
            assert stale.content == image.manifest
            assert _manifest(anonymous, f"/v2/{repo}/manifests/{image.digest}").content == image.manifest
            for layer in image.layers:
                assert anonymous.get(f"/v2/{repo}/blobs/{sha256(layer)}").content == layer
            missing_tag = _manifest(anonymous, f"/v2/{repo}/manifests/other")
            assert missing_tag.status_code == 503
            assert error_codes(missing_tag) == ["UNAVAILABLE"]
            missing_blob = anonymous.get(f"/v2/{repo}/blobs/{sha256(other.layers[0])}")
            assert missing_blob.status_code == 503
            assert error_codes(missing_blob) == ["UNAVAILABLE"]
        finally:
            setup.distribution.start()


@pytest.mark.clients
@pytest.mark.skipif(not tool_available("skopeo"), reason="skopeo is not installed")
def test_skopeo_pulls_through_the_mirror_named_in_registries_conf(setup: Setup, tmp_path: Path) -> None:
    repo = f"library/busybox-{os.urandom(4).hex()}"
    with httpx.Client(base_url=setup.distribution.url, timeout=60.0) as upstream:
        image = push_to_distribution(upstream, repo, "latest", layers=2, layer_size=4096)
    mirror_host = setup.mirror.url.removeprefix("http://")
    # The "real" registry does not answer at all: whatever skopeo gets comes through the mirror.
    dead_host = f"127.0.0.1:{free_port()}"
    with ClientSandbox.create(tmp_path / "sandbox", mirror_host) as sandbox:
        sandbox.registries_conf.write_text(
            "unqualified-search-registries = []\n"
            "[[registry]]\n"
            f'location = "{dead_host}"\n'
            "insecure = true\n"
            f'mirror = [{{ location = "{mirror_host}", insecure = true }}]\n'
        )
        layout = tmp_path / "layout"
        digest_file = tmp_path / "digest"
        # No --src-tls-verify: registries.conf says which hosts are plain HTTP, mirror included.
        sandbox.skopeo(
            "--registries-conf",
            str(sandbox.registries_conf),
            "copy",
            "--quiet",
            "--preserve-digests",
            "--retry-times=0",
            "--digestfile",
            str(digest_file),
            f"docker://{dead_host}/{repo}:latest",
            f"oci:{layout}:latest",
        )
        assert digest_file.read_text().strip() == image.digest
        index = json.loads((layout / "index.json").read_text())
        assert index["manifests"][0]["digest"] == image.digest
        for layer in image.layers:
            hex_digest = hashlib.sha256(layer).hexdigest()
            assert (layout / "blobs" / "sha256" / hex_digest).read_bytes() == layer


def test_index_children_are_fetched_when_asked_for(setup: Setup) -> None:
    repo = unique("multi")
    publisher = setup.publisher()
    amd = push_small_image(publisher, repo, "amd64")
    arm = push_small_image(publisher, repo, "arm64")
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": image.digest, "size": len(image.manifest), "platform": platform}
                for image, platform in (
                    (amd, {"os": "linux", "architecture": "amd64"}),
                    (arm, {"os": "linux", "architecture": "arm64"}),
                )
            ],
        }
    ).encode()
    response = publisher.put(f"/v2/{repo}/manifests/multi", content=index, headers={"Content-Type": OCI_INDEX})
    assert response.status_code == 201, response.text
    with setup.puller() as mirror:
        got = mirror.get(f"/v2/hub/{repo}/manifests/multi", headers={"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"})
        assert got.status_code == 200, got.text
        assert got.content == index
        assert got.headers["content-type"] == OCI_INDEX
        # The children are not fetched with the index ...
        assert setup.relay.count("GET", f"/manifests/{arm.digest}") == 0
        child = mirror.get(f"/v2/hub/{repo}/manifests/{arm.digest}", headers={"Accept": OCI_MANIFEST})
        # ... but when a client picks one.
        assert child.status_code == 200
        assert child.content == arm.manifest
        assert setup.relay.count("GET", f"/manifests/{arm.digest}") == 1
        assert setup.relay.count("GET", f"/manifests/{amd.digest}") == 0
        # A HEAD of a blob not cached yet is answered from the upstream's HEAD, without fetching it.
        head = mirror.head(f"/v2/hub/{repo}/blobs/{arm.layer}")
        assert head.status_code == 200
        assert head.headers["content-length"] == "512"
        assert head.headers["docker-content-digest"] == arm.layer
    assert setup.relay.count("GET", f"/blobs/{arm.layer}") == 0


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_token_mode_mirror_issues_pull_tokens_to_signed_in_users_only(
    setup: Setup, start_server: Callable[..., ServerProcess], request: pytest.FixtureRequest, database: str
) -> None:
    repo = f"library/tokened-{os.urandom(4).hex()}"
    with httpx.Client(base_url=setup.distribution.url, timeout=60.0) as upstream:
        image = push_to_distribution(upstream, repo, "latest", layers=1, layer_size=2048)
    mirrors = [{"prefix": "dist", "upstream": setup.distribution.url, "manifest_ttl_seconds": 0}]
    env = {**auth_env("token"), "PORTSIDE_MIRRORS": json.dumps(mirrors)}
    if database == "postgresql":
        env["PORTSIDE_DATABASE_URL"] = request.getfixturevalue("postgres").create_database()
    mirror = start_server(env=env)
    PortsideCli(mirror).create_user(LOCAL_USER, LOCAL_PASSWORD)
    path = f"/v2/dist/{repo}/manifests/latest"
    anonymous = Caller(mirror.url, "token")
    refused = anonymous.get(path, headers={"Accept": OCI_MANIFEST})
    assert refused.status_code == 401
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    signed_in = Caller(mirror.url, "token", (LOCAL_USER, LOCAL_PASSWORD))
    pulled = signed_in.get(path, headers={"Accept": OCI_MANIFEST})
    assert pulled.status_code == 200, pulled.text
    assert pulled.content == image.manifest
    # Revalidated (TTL 0) and confirmed: the same bytes again.
    assert signed_in.get(path, headers={"Accept": OCI_MANIFEST}).content == image.manifest
    layer = signed_in.get(f"/v2/dist/{repo}/blobs/{sha256(image.layers[0])}")
    assert layer.content == image.layers[0]
    # A signed-in user may not push into the mirror either.
    push = signed_in.post(f"/v2/dist/{repo}/blobs/uploads/")
    assert push.status_code == 405
    assert error_codes(push) == ["UNSUPPORTED"]


def test_a_layer_cached_for_one_repository_is_not_downloaded_again_for_another(setup: Setup) -> None:
    first, second = unique("base"), unique("derived")
    publisher = setup.publisher()
    image = push_small_image(publisher, first, "v1", layer_size=4096)
    # The same config and layer under another repository upstream (a shared base layer).
    for digest in (image.config, image.layer):
        mount = publisher.post(
            f"/v2/{second}/blobs/uploads/",
            params={"mount": digest, "from": first},
            extra_scopes=[f"repository:{first}:pull"],
        )
        assert mount.status_code == 201, mount.text
    response = publisher.put(
        f"/v2/{second}/manifests/v1", content=image.manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status_code == 201
    with setup.puller() as mirror:
        assert mirror.get(f"/v2/hub/{first}/blobs/{image.layer}").status_code == 200
        assert _manifest(mirror, f"/v2/hub/{second}/manifests/v1").content == image.manifest
        again = mirror.get(f"/v2/hub/{second}/blobs/{image.layer}")
        assert sha256(again.content) == image.layer
        # A digest the second repository's manifest does not list is not opened from the first's cache.
        stranger = mirror.get(f"/v2/hub/{second}/blobs/{sha256(b'not in any manifest')}")
        assert stranger.status_code == 404
    assert setup.relay.count("GET", f"/{first}/blobs/{image.layer}") == 1
    assert setup.relay.count("GET", f"/{second}/blobs/{image.layer}") == 0


def test_read_only_maintenance_serves_the_cache_and_fills_nothing(
    setup: Setup, start_server: Callable[..., ServerProcess]
) -> None:
    repo = f"library/maint-{os.urandom(4).hex()}"
    with httpx.Client(base_url=setup.distribution.url, timeout=60.0) as upstream:
        image = push_to_distribution(upstream, repo, "latest", layers=1, layer_size=1024)
        other = push_to_distribution(upstream, repo, "other", layers=1, layer_size=1024)
    mirrors = [{"prefix": "dist", "upstream": setup.distribution.url, "manifest_ttl_seconds": 0}]
    mirror = start_server(env={"PORTSIDE_MIRRORS": json.dumps(mirrors), "PORTSIDE_MAINTENANCE_CACHE_SECONDS": "0"})
    with httpx.Client(base_url=mirror.url, timeout=60.0) as client:
        assert _manifest(client, f"/v2/dist/{repo}/manifests/latest").content == image.manifest
        PortsideCli(mirror).run("maintenance", "on")
        assert _manifest(client, f"/v2/dist/{repo}/manifests/latest").content == image.manifest
        refused = _manifest(client, f"/v2/dist/{repo}/manifests/other")
        assert refused.status_code == 503
        assert "read-only mode" in refused.json()["errors"][0]["message"]
        blob = client.get(f"/v2/dist/{repo}/blobs/{sha256(other.layers[0])}")
        assert blob.status_code == 503


def test_a_caller_over_the_pull_limit_causes_no_upstream_request(
    setup: Setup, start_server: Callable[..., ServerProcess]
) -> None:
    repo = unique("limited-caller")
    push_small_image(setup.publisher(), repo, "v1")
    push_small_image(setup.publisher(), repo, "v2")
    credentials = {"username": UPSTREAM_USER, "password": UPSTREAM_PASSWORD}
    mirrors = [{"prefix": "hub", "upstream": setup.relay.url, **credentials}]
    env = {
        "PORTSIDE_MIRRORS": json.dumps(mirrors),
        "PORTSIDE_PULL_RATE_LIMIT": "true",
        "PORTSIDE_PULL_LIMIT_ANONYMOUS": "1",
    }
    mirror = start_server(env=env)
    with httpx.Client(base_url=mirror.url, timeout=60.0) as client:
        assert _manifest(client, f"/v2/hub/{repo}/manifests/v1").status_code == 200
        over = _manifest(client, f"/v2/hub/{repo}/manifests/v2")
        assert over.status_code == 429
        assert error_codes(over) == ["TOOMANYREQUESTS"]
        assert "retry-after" in over.headers
    assert setup.relay.count("GET", f"/{repo}/manifests/v1") == 1
    assert setup.relay.count("GET", f"/{repo}/manifests/v2") == 0


def test_content_that_does_not_match_its_digest_is_never_cached(setup: Setup) -> None:
    repo = unique("tampered")
    image = push_small_image(setup.publisher(), repo, "v1", layer_size=256 * 1024)
    relay = setup.relay
    with setup.puller() as mirror:
        relay.tamper_suffix = f"/manifests/{image.digest}"
        try:
            refused = _manifest(mirror, f"/v2/hub/{repo}/manifests/{image.digest}")
            assert refused.status_code == 503
            assert "digest does not match" in refused.json()["errors"][0]["message"]
            relay.tamper_suffix = f"/blobs/{image.layer}"
            # The first client never receives a complete body that fails verification.
            with pytest.raises(httpx.HTTPError):
                mirror.get(f"/v2/hub/{repo}/blobs/{image.layer}")
        finally:
            relay.tamper_suffix = None
        # Once the upstream behaves, the right bytes are fetched again and cached.
        manifest = _manifest(mirror, f"/v2/hub/{repo}/manifests/{image.digest}")
        assert manifest.content == image.manifest
        blob = mirror.get(f"/v2/hub/{repo}/blobs/{image.layer}")
        assert sha256(blob.content) == image.layer
    assert relay.count("GET", f"/manifests/{image.digest}") == 2
    assert relay.count("GET", f"/blobs/{image.layer}") == 2


def test_basic_auth_upstream_with_right_and_wrong_credentials(
    setup: Setup, start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    upstream = start_server(data_dir=tmp_path / "basic-upstream", env=auth_env("basic"))
    PortsideCli(upstream).create_user(UPSTREAM_USER, UPSTREAM_PASSWORD)
    repo = unique("basic")
    image = push_small_image(Caller(upstream.url, "basic", (UPSTREAM_USER, UPSTREAM_PASSWORD)), repo, "v1")
    mirrors = [
        {"prefix": "good", "upstream": upstream.url, "username": UPSTREAM_USER, "password": UPSTREAM_PASSWORD},
        {"prefix": "bad", "upstream": upstream.url, "username": UPSTREAM_USER, "password": "wrong-password"},
        {"prefix": "none", "upstream": upstream.url},
    ]
    mirror = start_server(data_dir=tmp_path / "basic-mirror", env={"PORTSIDE_MIRRORS": json.dumps(mirrors)})
    with httpx.Client(base_url=mirror.url, timeout=60.0) as client:
        good = _manifest(client, f"/v2/good/{repo}/manifests/v1")
        assert good.status_code == 200, good.text
        assert good.content == image.manifest
        assert sha256(client.get(f"/v2/good/{repo}/blobs/{image.layer}").content) == image.layer
        for prefix in ("bad", "none"):
            refused = _manifest(client, f"/v2/{prefix}/{repo}/manifests/v1")
            assert refused.status_code == 503
            assert error_codes(refused) == ["UNAVAILABLE"]


def test_repositories_pushed_before_a_whole_registry_mirror_stay_local(
    setup: Setup, start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    data_dir = tmp_path / "was-local"
    plain = start_server(data_dir=data_dir)
    with httpx.Client(base_url=plain.url, timeout=60.0) as client:
        local = push_image(client, "team/app", "v1", layers=1, layer_size=1024)
    plain.stop()
    credentials = {"username": UPSTREAM_USER, "password": UPSTREAM_PASSWORD}
    mirrors = [{"upstream": setup.relay.url, "manifest_ttl_seconds": 0, **credentials}]
    mirror = start_server(data_dir=data_dir, env={"PORTSIDE_MIRRORS": json.dumps(mirrors)})
    with httpx.Client(base_url=mirror.url, timeout=60.0) as client:
        served = _manifest(client, "/v2/team/app/manifests/v1")
        assert served.status_code == 200
        assert served.content == local.manifest
        assert client.get(f"/v2/team/app/blobs/{sha256(local.layers[0])}").content == local.layers[0]
        # The registry as a whole is a read-only mirror now, local repositories included.
        refused = client.post("/v2/team/app/blobs/uploads/")
        assert refused.status_code == 405
    # Never looked up upstream.
    assert setup.relay.count("HEAD", "/team/app/manifests/v1") == 0
    assert setup.relay.count("GET", "/team/app/manifests/v1") == 0
