"""How long the web UI takes to answer its pages, with a repository of a few hundred tags.

    python -m bench.web_pages [--tags 300] [--requests 50]

Starts one Portside server (one worker, SQLite, Basic auth) on loopback, pushes ``--tags``
tags (distinct manifests over shared layers, plus a tenth as two-platform indexes) and
Portside's own README, then times sequential GETs of each page as an anonymous visitor: median and 95th
percentile at the client on loopback (an upper bound on the server's own time), and the median
CPU and wall time of the same page rendered by an app in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from deploy.processes import ServerProcess
from portside.app import build_app
from portside.config import Settings
from tests.support.protocol import OCI_INDEX, OCI_MANIFEST, image_manifest, push_blob, push_manifest, sha256

ADMIN = ("admin", "admin-password-1")
REPOSITORY = "admin/many-tags"


def _config(os_name: str, architecture: str, n: int) -> bytes:
    return json.dumps(
        {
            "os": os_name,
            "architecture": architecture,
            "config": {"Labels": {"build": str(n)}, "Env": ["PATH=/bin"]},
            "history": [{"created_by": f"step {n}"}],
        }
    ).encode()


def seed(client: httpx.Client, tags: int) -> None:
    """Push ``tags`` tags to REPOSITORY: images, and every tenth an index over two images."""
    layers = [bytes([i]) * (4096 * (i + 1)) for i in range(3)]
    for layer in layers:
        push_blob(client, REPOSITORY, layer)
    for n in range(tags):
        if n % 10 == 9:
            children = []
            for architecture in ("amd64", "arm64"):
                config = _config("linux", architecture, n)
                push_blob(client, REPOSITORY, config)
                manifest = image_manifest(config, layers)
                assert push_manifest(client, REPOSITORY, sha256(manifest), manifest, OCI_MANIFEST).status_code == 201
                children.append(
                    {
                        "mediaType": OCI_MANIFEST,
                        "digest": sha256(manifest),
                        "size": len(manifest),
                        "platform": {"os": "linux", "architecture": architecture},
                    }
                )
            index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}).encode()
            assert push_manifest(client, REPOSITORY, f"v{n}", index, OCI_INDEX).status_code == 201
            continue
        config = _config("linux", "amd64", n)
        push_blob(client, REPOSITORY, config)
        manifest = image_manifest(config, layers)
        assert push_manifest(client, REPOSITORY, f"v{n}", manifest, OCI_MANIFEST).status_code == 201
    client.patch(f"/api/v1/repositories/{REPOSITORY}", json={"visibility": "public"}).raise_for_status()
    # A README of typical size and shape: Portside's own (about 6 KB of Markdown).
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    client.patch(f"/api/v1/repository-metadata/{REPOSITORY}", json={"readme": readme}).raise_for_status()


def time_page(url: str, requests: int) -> tuple[float, float, int]:
    """Median and 95th percentile in milliseconds, and the body size, of ``requests`` sequential GETs."""
    timings: list[float] = []
    with httpx.Client(timeout=30) as client:
        for _ in range(5):
            client.get(url).raise_for_status()
        size = 0
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            size = len(response.content)
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.95) - 1], size


def time_in_process(data_dir: Path, paths: list[str], requests: int) -> list[tuple[float, float]]:
    """Median CPU and wall milliseconds per page, rendered by an app in this process (no HTTP server).

    CPU time is what rendering costs; on a busy machine wall time also counts waiting for a core.
    """
    app = build_app(Settings(data_dir=data_dir, auth="basic"))
    found: list[tuple[float, float]] = []

    async def run() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://registry.example") as client:
                for path in paths:
                    for _ in range(5):
                        (await client.get(path)).raise_for_status()
                    cpu: list[float] = []
                    wall: list[float] = []
                    for _ in range(requests):
                        started, started_cpu = time.perf_counter(), time.process_time()
                        (await client.get(path)).raise_for_status()
                        wall.append((time.perf_counter() - started) * 1000)
                        cpu.append((time.process_time() - started_cpu) * 1000)
                    found.append((statistics.median(cpu), statistics.median(wall)))

    asyncio.run(run())
    return found


def main() -> None:
    """Seed a server, time the pages, print a table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tags", type=int, default=300)
    parser.add_argument("--requests", type=int, default=50)
    options = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="portside-web-bench-"))
    env = {"PORTSIDE_AUTH": "basic", "PORTSIDE_ADMIN_USERNAME": ADMIN[0], "PORTSIDE_ADMIN_PASSWORD": ADMIN[1]}
    server = ServerProcess(root / "data", workers=1, env=env).start()
    try:
        with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as client:
            seed(client, options.tags)
        pages = {
            f"repository page ({options.tags} tags)": f"/r/{REPOSITORY}",
            "tag page (image)": f"/r/{REPOSITORY}/-/tag/v0",
            "tag page (index)": f"/r/{REPOSITORY}/-/tag/v9",
            "explore": "/",
            "search": "/search?q=many",
        }
        in_process = time_in_process(server.data_dir, list(pages.values()), options.requests)
        print("| page | HTTP median ms | HTTP p95 ms | in-process CPU median ms | in-process wall median ms | bytes |")
        print("|---|---|---|---|---|---|")
        for (name, path), (cpu, wall) in zip(pages.items(), in_process, strict=True):
            median, p95, size = time_page(server.url + path, options.requests)
            print(f"| {name} | {median:.1f} | {p95:.1f} | {cpu:.1f} | {wall:.1f} | {size} |")
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
