"""What survives a SIGKILL, and memory that stays flat whatever the blob size."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.protocol import (
    OCI_MANIFEST,
    error_codes,
    image_manifest,
    push_blob,
    push_image,
    push_manifest,
    random_bytes,
    sha256,
    unique_repo,
)
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.crash]

MIB = 1024 * 1024


def _slow_body(data: bytes, chunk: int, started: threading.Event) -> Iterator[bytes]:
    for offset in range(0, len(data), chunk):
        yield data[offset : offset + chunk]
        started.set()
        time.sleep(0.01)


def test_kill_during_a_chunk_upload_keeps_acknowledged_data_and_the_upload_resumes(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = start_server(tmp_path / "data")
    repo = unique_repo()
    data = random_bytes(24 * MIB)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        acknowledged = push_image(http, repo, "before", layers=3, layer_size=256 * 1024)
        location = http.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
        assert (
            http.patch(location, content=data[: 4 * MIB], headers={"Content-Range": f"0-{4 * MIB - 1}"}).status_code
            == 202
        )

    started = threading.Event()
    outcome: list[object] = []

    def send_rest() -> None:
        try:
            with httpx.Client(base_url=server.url, timeout=60) as http:
                outcome.append(http.patch(location, content=_slow_body(data[4 * MIB :], 256 * 1024, started)))
        except httpx.HTTPError as exc:
            outcome.append(exc)

    sender = threading.Thread(target=send_rest)
    sender.start()
    assert started.wait(10)
    time.sleep(0.3)
    server.kill()
    sender.join(30)
    assert outcome and isinstance(outcome[0], httpx.HTTPError), "the interrupted PATCH must not have been acknowledged"

    server.start()
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.get(f"/v2/{repo}/manifests/before").content == acknowledged.manifest
        for blob in [acknowledged.config, *acknowledged.layers]:
            assert http.get(f"/v2/{repo}/blobs/{sha256(blob)}").content == blob
        assert http.head(f"/v2/{repo}/blobs/{sha256(data)}").status_code == 404
        status = http.get(location)
        assert status.status_code == 204
        held = int(status.headers["Range"].split("-")[1]) + 1
        assert 4 * MIB <= held < len(data)
        response = http.patch(location, content=data[held:], headers={"Content-Range": f"{held}-{len(data) - 1}"})
        assert response.status_code == 202
        assert http.put(location, params={"digest": sha256(data)}).status_code == 201
        assert http.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_kill_during_manifest_pushes_keeps_every_acknowledged_manifest(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = start_server(tmp_path / "data", workers=2)
    repo = unique_repo()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        config, layer = random_bytes(64), random_bytes(64)
        push_blob(http, repo, config)
        push_blob(http, repo, layer)

    acknowledged: dict[str, bytes] = {}
    stop = threading.Event()

    def pusher() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for i in range(100_000):
                if stop.is_set():
                    return
                manifest = image_manifest(config, [layer], annotations={"n": str(i)})
                try:
                    response = push_manifest(http, repo, f"t{i}", manifest, OCI_MANIFEST)
                except httpx.HTTPError:
                    return
                if response.status_code == 201:
                    acknowledged[f"t{i}"] = manifest

    threads = [threading.Thread(target=pusher) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(30)
    assert len(acknowledged) > 10

    server.start()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        tags = set(http.get(f"/v2/{repo}/tags/list").json()["tags"])
        assert set(acknowledged) <= tags
        for tag, manifest in acknowledged.items():
            response = http.get(f"/v2/{repo}/manifests/{tag}")
            assert response.content == manifest
            assert http.get(f"/v2/{repo}/manifests/{sha256(manifest)}").status_code == 200


def test_kill_during_a_monolithic_push_exposes_nothing_partial(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = start_server(tmp_path / "data")
    repo, data = unique_repo(), random_bytes(16 * MIB)
    started = threading.Event()

    def send() -> None:
        try:
            with httpx.Client(base_url=server.url, timeout=60) as http:
                http.post(
                    f"/v2/{repo}/blobs/uploads/",
                    params={"digest": sha256(data)},
                    content=_slow_body(data, 256 * 1024, started),
                )
        except httpx.HTTPError:
            pass

    sender = threading.Thread(target=send)
    sender.start()
    assert started.wait(10)
    time.sleep(0.2)
    server.kill()
    sender.join(30)
    server.start()
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.head(f"/v2/{repo}/blobs/{sha256(data)}").status_code == 404
        blob_file = server.data_dir / "storage" / "blobs" / "sha256" / sha256(data)[7:9] / sha256(data)[7:]
        assert not blob_file.exists()
        assert push_blob(http, repo, data) == sha256(data)
        assert http.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def _tree_rss(pid: int) -> int:
    parent = psutil.Process(pid)
    total = 0
    for process in [parent, *parent.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += process.memory_info().rss
    return total


class _PeakSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, _tree_rss(self.pid))
            time.sleep(0.05)


def test_pushing_and_pulling_2_gib_keeps_server_memory_flat(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = start_server(tmp_path / "data")
    repo = unique_repo()
    chunk = random_bytes(4 * MIB)
    count = 512  # 2 GiB
    hasher = hashlib.sha256()
    for _ in range(count):
        hasher.update(chunk)
    digest = "sha256:" + hasher.hexdigest()
    assert server.process is not None
    with httpx.Client(base_url=server.url, timeout=300) as http:
        push_image(http, repo, "warm-up")
        baseline = _tree_rss(server.process.pid)
        sampler = _PeakSampler(server.process.pid)
        sampler.start()
        location = http.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
        response = http.patch(location, content=(chunk for _ in range(count)))
        assert response.status_code == 202
        assert http.put(response.headers["Location"], params={"digest": digest}).status_code == 201
        received = 0
        with http.stream("GET", f"/v2/{repo}/blobs/{digest}") as pull:
            for part in pull.iter_bytes(4 * MIB):
                received += len(part)
        sampler.done.set()
        sampler.join()
    assert received == count * len(chunk)
    growth = sampler.peak - baseline
    print(f"2 GiB push+pull: server RSS {baseline / MIB:.0f} MiB before, peak growth {growth / MIB:.1f} MiB")
    assert growth < 100 * MIB, f"server RSS grew by {growth / MIB:.0f} MiB"


def test_upload_of_a_blob_whose_body_is_cut_short_fails_cleanly(client: httpx.Client) -> None:
    repo, data = unique_repo(), random_bytes(1000)
    location = client.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
    response = client.put(location, params={"digest": sha256(data)}, content=data[:500])
    assert response.status_code == 400
    assert error_codes(response) == ["DIGEST_INVALID"]
    assert client.head(f"/v2/{repo}/blobs/{sha256(data)}").status_code == 404
