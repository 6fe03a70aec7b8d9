"""Real registry clients (skopeo, podman, buildah) against the registry under test.

Every test gets its own :class:`ClientSandbox` (storage, configuration, auth
file and blob-info cache private to the test) and its own repository names, so
tests neither share client state nor depend on what else is in the registry.

Images come from ``tests/support/images.py``: OCI layouts built in Python,
nothing is pulled from the internet. The ``registry`` fixture (tests/conftest.py)
provides ``.url`` ("http://127.0.0.1:PORT") and ``.host`` ("127.0.0.1:PORT");
if it also has ``.credentials`` (user, password), they go into the auth file.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from tests.support.clients import BLOB_INFO_CACHE_DIR, ClientError, ClientSandbox
from tests.support.images import (
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_LAYER_GZIP,
    MEDIA_TYPE_OCI_MANIFEST,
    BuiltImage,
    build_image_layout,
    build_multiarch_layout,
    read_blob,
    resolve_tag,
    sha256_digest,
)

DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def _missing(tool: str) -> bool:
    return shutil.which(tool) is None


needs_skopeo = pytest.mark.skipif(_missing("skopeo"), reason="skopeo is not installed (apt-get install skopeo)")
needs_podman = pytest.mark.skipif(_missing("podman"), reason="podman is not installed (apt-get install podman)")
needs_buildah = pytest.mark.skipif(_missing("buildah"), reason="buildah is not installed (apt-get install buildah)")
needs_root = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="podman/buildah with vfs storage are run as root here (rootless needs subuid maps)",
)

pytestmark = [pytest.mark.integration, pytest.mark.clients, pytest.mark.timeout(120)]


class RegistryLike(Protocol):
    url: str
    host: str


# ---------------------------------------------------------------------------
# fixtures


@pytest.fixture
def clients(registry: RegistryLike, tmp_path: Path) -> Iterator[ClientSandbox]:
    """A sandbox for skopeo/podman/buildah talking to ``registry`` over plain HTTP."""
    credentials = getattr(registry, "credentials", None)
    with ClientSandbox.create(tmp_path / "clients", registry.host, credentials=credentials) as sandbox:
        yield sandbox


@pytest.fixture
def repo(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Unique repository names for this test: ``repo("src")`` -> ``it/<test>-<id>/src``."""
    test = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    prefix = f"it/{test}-{uuid.uuid4().hex[:8]}"

    def name(suffix: str) -> str:
        return f"{prefix}/{suffix}"

    return name


# ---------------------------------------------------------------------------
# helpers


def _json(data: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(data)
    return parsed


def _push(clients: ClientSandbox, image: BuiltImage, repository: str, tag: str) -> str:
    """skopeo copy of a built layout into the registry, digests preserved."""
    return clients.skopeo_copy(image.oci_ref, clients.docker_ref(repository, tag), preserve_digests=True)


def _layer_files(layer_blob: bytes) -> dict[str, bytes]:
    """Regular files in a gzip'd tar layer, by path."""
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer_blob)), mode="r:") as tar:
        for member in tar.getmembers():
            if member.isfile():
                extracted = tar.extractfile(member)
                assert extracted is not None
                files[member.name.lstrip("./")] = extracted.read()
    return files


def _assert_layout_has_image(layout: Path, image: BuiltImage) -> None:
    """Every blob of ``image`` is in ``layout`` with identical bytes."""
    assert read_blob(layout, image.manifest_digest) == image.manifest_bytes
    assert read_blob(layout, image.config_digest) == image.config_bytes
    for layer in image.layers:
        assert len(read_blob(layout, layer.digest)) == layer.size


# ---------------------------------------------------------------------------
# skopeo


@needs_skopeo
def test_skopeo_round_trips_multi_layer_oci_image_with_identical_digests(
    clients: ClientSandbox, repo: Callable[[str], str]
) -> None:
    image = build_image_layout(
        clients.work / "src",
        layers=4,
        layer_size=512 * 1024,
        seed=101,
        labels={"org.example.test": "round-trip"},
        annotations={"org.opencontainers.image.title": "round trip"},
        tag="v1",
    )

    pushed = _push(clients, image, repo("app"), "v1")
    assert pushed == image.manifest_digest

    out = clients.work / "out"
    pulled = clients.skopeo_copy(clients.docker_ref(repo("app"), "v1"), f"oci:{out}:copy", preserve_digests=True)

    assert pulled == image.manifest_digest
    descriptor = resolve_tag(out, "copy")
    assert descriptor.digest == image.manifest_digest
    assert descriptor.media_type == MEDIA_TYPE_OCI_MANIFEST
    manifest = _json(read_blob(out, descriptor.digest))
    assert [layer["digest"] for layer in manifest["layers"]] == list(image.layer_digests)
    assert manifest["config"]["digest"] == image.config_digest
    _assert_layout_has_image(out, image)


@needs_skopeo
def test_skopeo_round_trips_layers_large_enough_to_be_written_around_the_page_cache(
    clients: ClientSandbox, repo: Callable[[str], str]
) -> None:
    # Over one 4 MiB write batch and not a multiple of the 4 KiB alignment: the registry writes
    # most of each layer with O_DIRECT and its unaligned tail through the page cache.
    image = build_image_layout(clients.work / "src", layers=2, layer_size=9 * 1024 * 1024 + 1234, seed=113, tag="big")

    assert _push(clients, image, repo("big"), "big") == image.manifest_digest

    out = clients.work / "out"
    pulled = clients.skopeo_copy(clients.docker_ref(repo("big"), "big"), f"oci:{out}:copy", preserve_digests=True)
    assert pulled == image.manifest_digest
    _assert_layout_has_image(out, image)
    for layer in image.layers:
        assert hashlib.sha256(read_blob(out, layer.digest)).hexdigest() == layer.digest.removeprefix("sha256:")


@needs_skopeo
def test_skopeo_pushes_small_blobs_into_the_database_without_a_file(
    clients: ClientSandbox, registry: RegistryLike, repo: Callable[[str], str]
) -> None:
    # skopeo sends each blob in one PATCH and closes with an empty PUT: blobs of up to 64 KiB are
    # kept in the session's row, then in the database, and never become files.
    data_dir: Path | None = getattr(registry, "data_dir", None)
    if data_dir is None:
        pytest.skip(reason="blobs are in S3 here; the file checks need the filesystem driver")
    image = build_image_layout(clients.work / "src", layers=3, layer_size=16 * 1024, seed=114, tag="small")
    assert max(layer.size for layer in image.layers) < 64 * 1024

    assert _push(clients, image, repo("small"), "small") == image.manifest_digest

    for digest in (image.config_digest, *image.layer_digests):
        assert list((data_dir / "storage" / "blobs").rglob(digest.removeprefix("sha256:"))) == []
    out = clients.work / "out"
    pulled = clients.skopeo_copy(clients.docker_ref(repo("small"), "small"), f"oci:{out}:copy", preserve_digests=True)
    assert pulled == image.manifest_digest
    _assert_layout_has_image(out, image)
    for layer in image.layers:
        assert hashlib.sha256(read_blob(out, layer.digest)).hexdigest() == layer.digest.removeprefix("sha256:")


@needs_skopeo
def test_skopeo_inspect_raw_bytes_hash_to_the_pushed_digest(clients: ClientSandbox, repo: Callable[[str], str]) -> None:
    image = build_image_layout(
        clients.work / "src", layers=3, layer_size=64 * 1024, seed=102, labels={"purpose": "inspect"}
    )
    digest = _push(clients, image, repo("app"), "latest")

    by_tag = clients.skopeo_inspect_raw(clients.docker_ref(repo("app"), "latest"))
    by_digest = clients.skopeo_inspect_raw(clients.docker_ref(repo("app"), digest))

    assert sha256_digest(by_tag) == digest == image.manifest_digest
    assert by_tag == by_digest == image.manifest_bytes
    assert clients.skopeo_inspect_config(clients.docker_ref(repo("app"), "latest")) == image.config_bytes
    summary = clients.skopeo_inspect(clients.docker_ref(repo("app"), "latest"))
    assert summary["Digest"] == digest
    assert summary["Layers"] == list(image.layer_digests)
    assert summary["Labels"] == {"purpose": "inspect"}


@needs_skopeo
def test_skopeo_copy_all_keeps_index_and_child_digests(clients: ClientSandbox, repo: Callable[[str], str]) -> None:
    index = build_multiarch_layout(
        clients.work / "src",
        [("linux", "amd64"), ("linux", "arm64"), ("linux", "arm", "v7")],
        layers=3,
        layer_size=32 * 1024,
        seed=103,
        index_annotations={"org.opencontainers.image.description": "multi-arch"},
        tag="multi",
    )

    pushed = clients.skopeo_copy(
        index.oci_ref, clients.docker_ref(repo("multi"), "v1"), all_images=True, preserve_digests=True
    )

    assert pushed == index.index_digest
    raw_index = clients.skopeo_inspect_raw(clients.docker_ref(repo("multi"), "v1"))
    assert raw_index == index.index_bytes
    assert _json(raw_index)["mediaType"] == MEDIA_TYPE_OCI_INDEX
    for child in index.images:
        raw_child = clients.skopeo_inspect_raw(clients.docker_ref(repo("multi"), child.manifest_digest))
        assert raw_child == child.manifest_bytes

    out = clients.work / "out"
    pulled = clients.skopeo_copy(
        clients.docker_ref(repo("multi"), "v1"), f"oci:{out}:back", all_images=True, preserve_digests=True
    )

    assert pulled == index.index_digest
    assert resolve_tag(out, "back").digest == index.index_digest
    assert read_blob(out, index.index_digest) == index.index_bytes
    for child in index.images:
        _assert_layout_has_image(out, child)


@needs_skopeo
def test_skopeo_copy_of_an_index_without_all_picks_the_platform_child(
    clients: ClientSandbox, repo: Callable[[str], str]
) -> None:
    index = build_multiarch_layout(clients.work / "src", layers=2, layer_size=16 * 1024, seed=104)
    clients.skopeo_copy(index.oci_ref, clients.docker_ref(repo("multi"), "v1"), all_images=True)
    arm64 = index.image_for(("linux", "arm64"))

    out = clients.work / "out"
    clients.skopeo(
        "--override-os",
        "linux",
        "--override-arch",
        "arm64",
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        clients.docker_ref(repo("multi"), "v1"),
        f"oci:{out}:arm64",
    )

    assert resolve_tag(out, "arm64").digest == arm64.manifest_digest
    _assert_layout_has_image(out, arm64)


@needs_skopeo
def test_skopeo_delete_removes_the_tag(clients: ClientSandbox, repo: Callable[[str], str]) -> None:
    doomed = build_image_layout(clients.work / "a", layers=3, layer_size=8 * 1024, seed=105, tag="doomed")
    kept = build_image_layout(clients.work / "b", layers=3, layer_size=8 * 1024, seed=106, tag="kept")
    _push(clients, doomed, repo("app"), "doomed")
    _push(clients, kept, repo("app"), "kept")
    repository = clients.docker_ref(repo("app"), "latest").rsplit(":", 1)[0]
    assert sorted(clients.skopeo_list_tags(repository)) == ["doomed", "kept"]

    clients.skopeo_delete(clients.docker_ref(repo("app"), "doomed"))

    assert clients.skopeo_list_tags(repository) == ["kept"]
    with pytest.raises(ClientError):
        clients.skopeo_inspect_raw(clients.docker_ref(repo("app"), "doomed"))
    with pytest.raises(ClientError):
        clients.skopeo_inspect_raw(clients.docker_ref(repo("app"), doomed.manifest_digest))
    kept_raw = clients.skopeo_inspect_raw(clients.docker_ref(repo("app"), "kept"))
    assert kept_raw == kept.manifest_bytes


@needs_skopeo
def test_skopeo_copy_between_repositories_keeps_the_digest(clients: ClientSandbox, repo: Callable[[str], str]) -> None:
    # The second copy reuses blobs from the first repository (skopeo asks for a
    # cross-repository mount when its blob-info cache knows where they are).
    image = build_image_layout(clients.work / "src", layers=3, layer_size=128 * 1024, seed=107)
    _push(clients, image, repo("first"), "v1")

    copied = clients.skopeo_copy(
        clients.docker_ref(repo("first"), "v1"), clients.docker_ref(repo("second"), "v1"), preserve_digests=True
    )

    assert copied == image.manifest_digest
    assert clients.skopeo_inspect_raw(clients.docker_ref(repo("second"), "v1")) == image.manifest_bytes
    out = clients.work / "out"
    clients.skopeo_copy(clients.docker_ref(repo("second"), "v1"), f"oci:{out}:v1")
    _assert_layout_has_image(out, image)


@needs_skopeo
def test_skopeo_copy_format_v2s2_pushes_docker_schema2(clients: ClientSandbox, repo: Callable[[str], str]) -> None:
    image = build_image_layout(clients.work / "src", layers=3, layer_size=64 * 1024, seed=108)

    digest = clients.skopeo_copy(image.oci_ref, clients.docker_ref(repo("docker"), "v1"), format="v2s2")

    raw = clients.skopeo_inspect_raw(clients.docker_ref(repo("docker"), "v1"))
    assert sha256_digest(raw) == digest != image.manifest_digest
    manifest = _json(raw)
    assert manifest["mediaType"] == DOCKER_MANIFEST_V2
    assert manifest["config"]["mediaType"] == DOCKER_CONFIG
    assert manifest["config"]["digest"] == image.config_digest
    assert [layer["mediaType"] for layer in manifest["layers"]] == [DOCKER_LAYER_GZIP] * 3
    assert [layer["digest"] for layer in manifest["layers"]] == list(image.layer_digests)

    # Docker schema 2 copied between repositories and back out keeps its digest.
    again = clients.skopeo_copy(
        clients.docker_ref(repo("docker"), "v1"), clients.docker_ref(repo("docker-copy"), "v1"), preserve_digests=True
    )
    assert again == digest
    archive = clients.work / "docker.tar"
    clients.skopeo_copy(clients.docker_ref(repo("docker-copy"), "v1"), f"docker-archive:{archive}:example/app:v1")
    assert archive.stat().st_size > 3 * 64 * 1024


@needs_skopeo
def test_skopeo_copy_all_format_v2s2_pushes_a_docker_manifest_list(
    clients: ClientSandbox, repo: Callable[[str], str]
) -> None:
    index = build_multiarch_layout(clients.work / "src", layers=2, layer_size=16 * 1024, seed=109)

    digest = clients.skopeo_copy(index.oci_ref, clients.docker_ref(repo("list"), "v1"), all_images=True, format="v2s2")

    raw = clients.skopeo_inspect_raw(clients.docker_ref(repo("list"), "v1"))
    assert sha256_digest(raw) == digest
    manifest_list = _json(raw)
    assert manifest_list["mediaType"] == DOCKER_MANIFEST_LIST
    platforms = [(entry["platform"]["os"], entry["platform"]["architecture"]) for entry in manifest_list["manifests"]]
    assert platforms == [("linux", "amd64"), ("linux", "arm64")]
    for entry, child in zip(manifest_list["manifests"], index.images, strict=True):
        assert entry["mediaType"] == DOCKER_MANIFEST_V2
        raw_child = clients.skopeo_inspect_raw(clients.docker_ref(repo("list"), entry["digest"]))
        assert sha256_digest(raw_child) == entry["digest"]
        assert [layer["digest"] for layer in _json(raw_child)["layers"]] == list(child.layer_digests)

    # An OCI layout cannot hold a Docker list unconverted: copy it to another repository.
    copied = clients.skopeo_copy(
        clients.docker_ref(repo("list"), "v1"),
        clients.docker_ref(repo("list-copy"), "v1"),
        all_images=True,
        preserve_digests=True,
    )
    assert copied == digest
    assert clients.skopeo_inspect_raw(clients.docker_ref(repo("list-copy"), "v1")) == raw


@needs_skopeo
def test_skopeo_pushes_a_docker_archive(clients: ClientSandbox, repo: Callable[[str], str]) -> None:
    # docker-archive holds uncompressed layers: skopeo compresses them on push,
    # so only the uncompressed content (diff_ids) is compared with the source.
    image = build_image_layout(clients.work / "src", layers=3, layer_size=64 * 1024, seed=110)
    archive = clients.work / "image.tar"
    clients.skopeo_copy(image.oci_ref, f"docker-archive:{archive}:example/app:v1")

    digest = clients.skopeo_copy(f"docker-archive:{archive}", clients.docker_ref(repo("archive"), "v1"))

    raw = clients.skopeo_inspect_raw(clients.docker_ref(repo("archive"), "v1"))
    assert sha256_digest(raw) == digest
    manifest = _json(raw)
    assert manifest["mediaType"] == DOCKER_MANIFEST_V2
    config = _json(clients.skopeo_inspect_config(clients.docker_ref(repo("archive"), "v1")))
    assert config["rootfs"]["diff_ids"] == list(image.diff_ids)

    out = clients.work / "out"
    clients.skopeo_copy(clients.docker_ref(repo("archive"), "v1"), f"oci:{out}:v1")
    pulled = _json(read_blob(out, resolve_tag(out, "v1").digest))
    assert [layer["digest"] for layer in pulled["layers"]] == [layer["digest"] for layer in manifest["layers"]]


@needs_skopeo
def test_blob_info_cache_is_private_to_the_sandbox(clients: ClientSandbox, repo: Callable[[str], str]) -> None:
    if not clients.cache_isolated:
        pytest.skip(reason="no mount namespace here: containers/image shares its blob-info cache")
    host_cache = BLOB_INFO_CACHE_DIR / "blob-info-cache-v1.boltdb"
    before = host_cache.stat().st_mtime_ns if host_cache.exists() else None
    image = build_image_layout(clients.work / "src", layers=1, layer_size=1024, seed=111)

    _push(clients, image, repo("cache"), "v1")

    assert clients.blob_info_cache_file.exists()
    after = host_cache.stat().st_mtime_ns if host_cache.exists() else None
    assert after == before


@needs_skopeo
@needs_podman
@needs_root
def test_clients_log_in_and_push_with_credentials(
    registry: RegistryLike, tmp_path: Path, repo: Callable[[str], str]
) -> None:
    credentials: tuple[str, str] | None = getattr(registry, "credentials", None)
    if credentials is None:
        pytest.skip(reason="the registry fixture runs without authentication")
    user, password = credentials
    with ClientSandbox.create(tmp_path / "anonymous", registry.host) as anonymous:
        image = build_image_layout(anonymous.work / "src", layers=3, layer_size=16 * 1024, seed=112)
        target = anonymous.docker_ref(repo("private"), "v1")
        with pytest.raises(ClientError):
            anonymous.skopeo_copy(image.oci_ref, target)
        assert anonymous.skopeo_login(user, password + "-wrong", check=False).returncode != 0

        anonymous.podman_login(user, password)

        assert anonymous.skopeo_copy(image.oci_ref, target, preserve_digests=True) == image.manifest_digest
        assert anonymous.skopeo_inspect_raw(target) == image.manifest_bytes


# ---------------------------------------------------------------------------
# podman


@needs_skopeo
@needs_podman
@needs_root
def test_podman_pulls_and_pushes_an_image(clients: ClientSandbox, repo: Callable[[str], str]) -> None:
    image = build_image_layout(clients.work / "src", layers=3, layer_size=256 * 1024, seed=201)
    _push(clients, image, repo("source"), "v1")

    image_id = clients.podman_pull(clients.image_ref(repo("source"), "v1"))

    assert f"sha256:{image_id}" == image.config_digest
    local = clients.podman_image_inspect(image_id)
    assert local["Digest"] == image.manifest_digest
    assert local["RootFS"]["Layers"] == list(image.diff_ids)

    # With its blob-info cache emptied podman cannot mount the layers from the
    # source repository: it recompresses them and uploads each with a chunked
    # PATCH, so trust its digest file, not the source image's digests.
    clients.forget_blob_locations()
    pushed = clients.podman_push(image_id, clients.docker_ref(repo("pushed"), "v2"))

    raw = clients.skopeo_inspect_raw(clients.docker_ref(repo("pushed"), "v2"))
    assert sha256_digest(raw) == pushed
    out = clients.work / "out"
    pulled = clients.skopeo_copy(clients.docker_ref(repo("pushed"), "v2"), f"oci:{out}:v2", preserve_digests=True)
    assert pulled == pushed
    assert resolve_tag(out, "v2").digest == pushed
    manifest = _json(read_blob(out, pushed))
    config = _json(read_blob(out, manifest["config"]["digest"]))
    assert config["rootfs"]["diff_ids"] == list(image.diff_ids)
    for layer in manifest["layers"]:
        read_blob(out, layer["digest"])  # present and matching its digest
    by_digest = clients.podman_pull(clients.image_ref(repo("pushed"), pushed))
    assert f"sha256:{by_digest}" == manifest["config"]["digest"]


@needs_skopeo
@needs_podman
@needs_root
def test_podman_push_docker_format_and_pull_back(clients: ClientSandbox, repo: Callable[[str], str]) -> None:
    image = build_image_layout(clients.work / "src", layers=3, layer_size=64 * 1024, seed=202)
    _push(clients, image, repo("source"), "v1")
    image_id = clients.podman_pull(clients.image_ref(repo("source"), "v1"))

    # The blob-info cache knows the layers are in "source": podman mounts them.
    pushed = clients.podman_push(image_id, clients.image_ref(repo("docker"), "v1"), format="v2s2")

    raw = clients.skopeo_inspect_raw(clients.docker_ref(repo("docker"), "v1"))
    assert sha256_digest(raw) == pushed
    assert _json(raw)["mediaType"] == DOCKER_MANIFEST_V2
    clients.podman_rmi(image_id)
    again = clients.podman_pull(clients.image_ref(repo("docker"), "v1"))
    assert clients.podman_image_inspect(again)["RootFS"]["Layers"] == list(image.diff_ids)


# ---------------------------------------------------------------------------
# buildah


@needs_skopeo
@needs_buildah
@needs_root
def test_buildah_push_of_a_committed_image(clients: ClientSandbox, repo: Callable[[str], str]) -> None:
    # A new layer: buildah compresses it while uploading, so its PATCH is sent
    # with Transfer-Encoding: chunked and no Content-Length.
    payload = hashlib.sha256(b"portside").digest() * 8192  # 256 KiB
    source = clients.work / "payload.bin"
    source.write_bytes(payload)
    container = clients.buildah_from_scratch()
    clients.buildah_copy(container, source, "/data/payload.bin")
    clients.buildah_config(container, "--label", "org.example.built-by=buildah")
    clients.buildah_commit(container, "localhost/built:v1")
    clients.buildah_rm(container)

    pushed = clients.buildah_push("localhost/built:v1", clients.docker_ref(repo("built"), "v1"))

    raw = clients.skopeo_inspect_raw(clients.docker_ref(repo("built"), "v1"))
    assert sha256_digest(raw) == pushed
    manifest = _json(raw)
    assert manifest["mediaType"] == MEDIA_TYPE_OCI_MANIFEST
    config = _json(clients.skopeo_inspect_config(clients.docker_ref(repo("built"), "v1")))
    assert config["config"]["Labels"]["org.example.built-by"] == "buildah"
    out = clients.work / "out"
    clients.skopeo_copy(clients.docker_ref(repo("built"), "v1"), f"oci:{out}:v1", preserve_digests=True)
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == MEDIA_TYPE_OCI_LAYER_GZIP
    assert _layer_files(read_blob(out, layer["digest"]))["data/payload.bin"] == payload


@needs_skopeo
@needs_buildah
@needs_root
def test_buildah_pulls_and_pushes_a_multi_layer_image(clients: ClientSandbox, repo: Callable[[str], str]) -> None:
    image = build_image_layout(clients.work / "src", layers=3, layer_size=128 * 1024, seed=301)
    _push(clients, image, repo("source"), "v1")

    image_id = clients.buildah_pull(clients.image_ref(repo("source"), "v1"))
    clients.forget_blob_locations()  # no mounts: recompress and upload (chunked PATCH)
    pushed = clients.buildah_push(image_id, clients.docker_ref(repo("copy"), "v1"))

    raw = clients.skopeo_inspect_raw(clients.docker_ref(repo("copy"), "v1"))
    assert sha256_digest(raw) == pushed
    config = _json(clients.skopeo_inspect_config(clients.docker_ref(repo("copy"), "v1")))
    assert config["rootfs"]["diff_ids"] == list(image.diff_ids)
