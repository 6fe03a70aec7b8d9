"""``portside import`` and ``export`` against a running server's data dir, checked with skopeo."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.accounts import PortsideCli
from tests.support.clients import ClientSandbox
from tests.support.images import BuiltImage, build_image_layout, build_multiarch_layout, read_blob
from tests.support.protocol import unique_repo
from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server; the CLI imports and exports on its data dir while it runs."""
    process = ServerProcess(tmp_path_factory.mktemp("transfer") / "data", workers=1).start()
    yield process
    process.stop()


@pytest.fixture
def clients(server: ServerProcess, tmp_path: Path) -> Iterator[ClientSandbox]:
    """skopeo talking to the server over plain HTTP."""
    with ClientSandbox.create(tmp_path / "clients", server.host) as sandbox:
        yield sandbox


@pytest.fixture
def cli(server: ServerProcess) -> PortsideCli:
    """The ``portside`` command on the server's data dir."""
    return PortsideCli(server)


def sha256(data: bytes) -> str:
    """``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layout_blob(layout: Path, digest: str) -> bytes:
    """A blob of an OCI layout."""
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def uncompressed(data: bytes) -> bytes:
    """A layer's tar bytes, gunzipped if needed."""
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def assert_layers_match_config(layout: Path, manifest: dict[str, Any], config: BuiltImage) -> None:
    """The image in ``layout`` has the config's bytes and layers whose content hashes to its diff_ids."""
    assert layout_blob(layout, manifest["config"]["digest"]) == config.config_bytes
    contents = [uncompressed(layout_blob(layout, layer["digest"])) for layer in manifest["layers"]]
    assert [sha256(content) for content in contents] == list(config.diff_ids)


def repository_absent(server: ServerProcess, repository: str) -> bool:
    """The registry does not know the repository at all."""
    return httpx.get(f"{server.url}/v2/{repository}/tags/list").status_code == 404


def test_import_oci_layout_then_pull_with_skopeo(
    server: ServerProcess, cli: PortsideCli, clients: ClientSandbox, tmp_path: Path
) -> None:
    layout = tmp_path / "layout"
    first = build_image_layout(layout, layers=2, layer_size=200_000, seed=11, tag="v1")
    second = build_image_layout(layout, layers=1, layer_size=1000, seed=12, tag="v2")
    repo = unique_repo("imported")

    refused = cli.run("import", str(layout), repo, check=False)
    assert "holds 2 images" in refused and "v1" in refused and "v2" in refused
    assert repository_absent(server, repo)

    output = cli.run("import", str(layout), f"{repo}:stable", "--ref", "v1")
    assert f"imported {repo}:stable ({first.manifest_digest}" in output
    assert "3 blob(s) stored" in output
    again = cli.run("import", str(layout), repo, "--ref", "v2")  # tag defaults to the ref name
    assert f"{repo}:v2 ({second.manifest_digest}" in again

    pulled = clients.skopeo_copy(clients.docker_ref(repo, "stable"), f"oci:{tmp_path / 'out'}:x", preserve_digests=True)
    assert pulled == first.manifest_digest
    assert clients.skopeo_inspect_raw(clients.docker_ref(repo, "stable")) == first.manifest_bytes
    for digest in first.blob_digests:
        assert layout_blob(tmp_path / "out", digest) == read_blob(layout, digest)
    assert clients.skopeo_inspect_raw(clients.docker_ref(repo, "v2")) == second.manifest_bytes


def test_multiarch_index_imports_and_exports_with_all(
    server: ServerProcess, cli: PortsideCli, clients: ClientSandbox, tmp_path: Path
) -> None:
    index = build_multiarch_layout(tmp_path / "multi", tag="v1", layer_size=2000)
    repo = unique_repo("multi")
    assert index.index_digest in cli.run("import", str(tmp_path / "multi"), repo, "--all")
    assert clients.skopeo_inspect_raw(clients.docker_ref(repo, "v1")) == index.index_bytes
    for image in index.images:
        assert clients.skopeo_inspect_raw(clients.docker_ref(repo, image.manifest_digest)) == image.manifest_bytes

    # Without --all, one platform's image (here chosen explicitly).
    arm = index.image_for(("linux", "arm64"))
    single = cli.run("import", str(tmp_path / "multi"), f"{repo}:arm", "--platform", "linux/arm64")
    assert arm.manifest_digest in single

    exported = tmp_path / "exported"
    cli.run("export", f"{repo}:v1", str(exported), "--all")
    assert clients.skopeo_inspect_raw(f"oci:{exported}:v1") == index.index_bytes
    copied = clients.skopeo_copy(f"oci:{exported}:v1", f"oci:{tmp_path / 'copy'}:v1", all_images=True)
    assert copied == index.index_digest
    refused = cli.run(
        "export", f"{repo}:v1", str(tmp_path / "x.tar"), "--format", "docker-archive", "--all", check=False
    )
    assert "one image" in refused and not (tmp_path / "x.tar").exists()


def test_docker_archive_from_skopeo_imports_with_its_content(
    server: ServerProcess, cli: PortsideCli, clients: ClientSandbox, tmp_path: Path
) -> None:
    image = build_image_layout(tmp_path / "layout", layers=2, layer_size=50_000, seed=21, tag="v1")
    archive = tmp_path / "saved.tar"
    clients.skopeo_copy(image.oci_ref, f"docker-archive:{archive}:example/app:v1")
    repo = unique_repo("archived")

    output = cli.run("import", str(archive), repo)
    assert f"imported {repo}:v1 (" in output and "application/vnd.oci.image.manifest.v1+json" in output

    with httpx.Client(base_url=server.url) as http:
        response = http.get(
            f"/v2/{repo}/manifests/v1", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}
        )
        assert response.status_code == 200
        manifest = response.json()
        assert http.get(f"/v2/{repo}/blobs/{manifest['config']['digest']}").content == image.config_bytes
        layers = [http.get(f"/v2/{repo}/blobs/{layer['digest']}").content for layer in manifest["layers"]]
    # Uncompressed layers: their digests are the config's diff_ids, their bytes the layout's tars.
    assert [layer["mediaType"] for layer in manifest["layers"]] == ["application/vnd.oci.image.layer.v1.tar"] * 2
    assert [layer["digest"] for layer in manifest["layers"]] == list(image.diff_ids)
    assert layers == [gzip.decompress(read_blob(image.layout, d)) for d in image.layer_digests]
    pulled = tmp_path / "pulled"
    clients.skopeo_copy(clients.docker_ref(repo, "v1"), f"oci:{pulled}:v1")
    assert_layers_match_config(pulled, json.loads(clients.skopeo_inspect_raw(f"oci:{pulled}:v1")), image)


def test_export_to_oci_and_docker_archive_reads_back_with_skopeo(
    server: ServerProcess, cli: PortsideCli, clients: ClientSandbox, tmp_path: Path
) -> None:
    image = build_image_layout(tmp_path / "layout", layers=2, layer_size=30_000, seed=31, tag="v1")
    repo = unique_repo("exported")
    cli.run("import", str(tmp_path / "layout"), repo)

    oci = tmp_path / "oci"
    assert image.manifest_digest in cli.run("export", f"{repo}:v1", str(oci))
    assert clients.skopeo_inspect_raw(f"oci:{oci}:v1") == image.manifest_bytes
    assert json.loads(clients.skopeo("inspect", "--config", f"oci:{oci}:v1").stdout) == image.config

    archive = tmp_path / "image.tar"
    cli.run("export", f"{repo}:v1", str(archive), "--format", "docker-archive")
    with tarfile.open(archive) as tar:
        saved = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert saved[0]["RepoTags"] == [f"{repo}:v1"]
    assert saved[0]["Layers"] == [f"{d.removeprefix('sha256:')}.tar" for d in image.diff_ids]
    read_back = tmp_path / "read-back"
    clients.skopeo_copy(f"docker-archive:{archive}", f"oci:{read_back}:v1")
    assert_layers_match_config(read_back, json.loads(clients.skopeo_inspect_raw(f"oci:{read_back}:v1")), image)

    # The archive imports again to the same content.
    other = unique_repo("reimported")
    cli.run("import", str(archive), f"{other}:v1")
    assert cli.run("export", f"{other}:v1", str(tmp_path / "again.tar"), "--format", "docker-archive")
    first, again = members(archive), members(tmp_path / "again.tar")
    assert json.loads(again.pop("manifest.json"))[0]["RepoTags"] == [f"{other}:v1"]
    first.pop("manifest.json")
    assert again == first

    missing = cli.run("export", f"{repo}:nope", str(tmp_path / "none"), check=False)
    assert "MANIFEST_UNKNOWN" in missing and not (tmp_path / "none").exists()


def members(path: Path) -> dict[str, bytes]:
    """Every file of a tar archive by name."""
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def _archive(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("case", ["not-a-tar", "missing-blob", "wrong-digest", "wrong-layer", "no-manifest"])
def test_bad_sources_give_a_clear_error_and_store_nothing(
    server: ServerProcess, cli: PortsideCli, tmp_path: Path, case: str
) -> None:
    image = build_image_layout(tmp_path / "layout", layers=2, layer_size=5000, seed=41, tag="v1")
    source: Path = tmp_path / "layout"
    expected = ""
    if case == "not-a-tar":
        source = tmp_path / "junk.bin"
        source.write_bytes(b"this is not an archive" * 100)
        expected = "neither an OCI image layout directory nor a docker-archive"
    elif case == "missing-blob":
        (source / "blobs" / "sha256" / image.layer_digests[1].removeprefix("sha256:")).unlink()
        expected = f"blob {image.layer_digests[1]} is missing"
    elif case == "wrong-digest":
        path = source / "blobs" / "sha256" / image.layer_digests[0].removeprefix("sha256:")
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        expected = f"blob {image.layer_digests[0]} in the layout is corrupt"
    elif case == "wrong-layer":
        config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [sha256(b"expected")]}}).encode()
        manifest = json.dumps([{"Config": "c.json", "RepoTags": ["x:v1"], "Layers": ["l.tar"]}]).encode()
        source = _archive(tmp_path / "bad.tar", {"manifest.json": manifest, "c.json": config, "l.tar": b"other"})
        expected = "does not match the config's diff_id"
    else:
        source = _archive(tmp_path / "plain.tar", {"hello.txt": b"hi"})
        expected = "not a docker-archive: it has no manifest.json"
    repo = unique_repo("bad")
    output = cli.run("import", str(source), f"{repo}:v1", check=False)
    assert output.startswith("portside: ") and expected in output, output
    assert repository_absent(server, repo)


def test_legacy_docker_save_layout_with_a_linked_layer_imports(
    server: ServerProcess, cli: PortsideCli, tmp_path: Path
) -> None:
    """`docker save` (before 25) writes `<id>/layer.tar` and links a layer that appears twice."""
    layer_tar = io.BytesIO()
    with tarfile.open(fileobj=layer_tar, mode="w") as tar:
        info = tarfile.TarInfo("etc/motd")
        info.size = 9
        tar.addfile(info, io.BytesIO(b"welcome\n\n"))
    layer = layer_tar.getvalue()
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha256(layer)] * 2}}
    ).encode()
    manifest = json.dumps([{"Config": "cfg.json", "RepoTags": ["legacy:v7"], "Layers": ["a/layer.tar", "b/layer.tar"]}])
    path = tmp_path / "legacy.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in (("manifest.json", manifest.encode()), ("cfg.json", config), ("a/layer.tar", layer)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("b/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, "../a/layer.tar"
        tar.addfile(link)
    repo = unique_repo("legacy")
    assert f"imported {repo}:v7" in cli.run("import", str(path), repo)
    with httpx.Client(base_url=server.url) as http:
        stored = http.get(f"/v2/{repo}/manifests/v7", headers={"Accept": "*/*"}).json()
        assert [entry["digest"] for entry in stored["layers"]] == [sha256(layer)] * 2
        assert http.get(f"/v2/{repo}/blobs/{sha256(layer)}").content == layer
