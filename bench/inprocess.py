"""CPU per request of Portside's hot paths, measured in this process without a server or a network.

    python -m bench.inprocess [--requests 3000] [--images 40] [--profile manifest_get|blob_head|small_images|tags_full]

Builds the app on a fresh SQLite data dir, runs its lifespan, and calls it as an ASGI app with
prebuilt scopes: a manifest GET by tag, a blob HEAD, a full tags list of 5,000 tags, and small-image
pushes (per blob HEAD, POST, PUT, then the manifest PUT, as `bench.scenarios` does over HTTP). It
prints the process CPU time per request (or per image). What the server (Granian) itself costs is
not in these numbers. ``--profile`` runs one of them under cProfile and prints the top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import hashlib
import json
import os
import pstats
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from portside.app import build_app
from portside.config import Settings
from portside.metadata import migrate

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = (
    "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, */*"
)

Send = Callable[[dict[str, Any]], Awaitable[None]]


class Answer:
    """What the app sent for one request."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.body = bytearray()

    async def send(self, message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = dict(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]], query: bytes = b"") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:5000"), *headers],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 5000),
        "state": {},
    }


async def call(app: Starlette, scope: dict[str, Any], body: bytes = b"") -> Answer:
    """Run one request through ``app``."""
    answer = Answer()
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    await app(scope, receive, answer.send)
    return answer


@contextlib.asynccontextmanager
async def running(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    """The app with its lifespan started; yields the lifespan state."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    replies: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
    state: dict[str, Any] = {}
    await queue.put({"type": "lifespan.startup"})

    async def send(message: MutableMapping[str, Any]) -> None:
        await replies.put(message)

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}, queue.get, send))
    started = await replies.get()
    assert started["type"] == "lifespan.startup.complete", started
    try:
        yield state
    finally:
        await queue.put({"type": "lifespan.shutdown"})
        await replies.get()
        await task


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def push_blob(app: Starlette, state: dict[str, Any], repo: str, data: bytes) -> str:
    """HEAD, POST, PUT as docker does; the digest."""
    digest = _digest(data)
    head = await call(app, {**_scope("HEAD", f"/v2/{repo}/blobs/{digest}", []), "state": state})
    if head.status == 200:
        return digest
    started = await call(app, {**_scope("POST", f"/v2/{repo}/blobs/uploads/", []), "state": state})
    assert started.status == 202, (started.status, bytes(started.body))
    location = started.headers[b"location"].decode()
    path = location.split("?")[0]
    if path.startswith("http"):
        path = "/" + path.split("/", 3)[3]
    put = await call(
        app,
        {
            **_scope("PUT", path, [(b"content-length", str(len(data)).encode())], f"digest={digest}".encode()),
            "state": state,
        },
        data,
    )
    assert put.status == 201, (put.status, bytes(put.body))
    return digest


def _manifest(config: bytes, layers: list[bytes]) -> bytes:
    def descriptor(media_type: str, data: bytes) -> dict[str, Any]:
        return {"mediaType": media_type, "digest": _digest(data), "size": len(data)}

    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.oci.image.config.v1+json", config),
            "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer) for layer in layers],
        }
    ).encode()


async def push_image(app: Starlette, state: dict[str, Any], repo: str, tag: str, n: int) -> None:
    """One small image: a config and two 32 KiB layers, then the manifest."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": n}).encode()
    layers = [os.urandom(32 * 1024), os.urandom(32 * 1024)]
    for blob in (*layers, config):
        await push_blob(app, state, repo, blob)
    manifest = _manifest(config, layers)
    put = await call(
        app,
        {**_scope("PUT", f"/v2/{repo}/manifests/{tag}", [(b"content-type", OCI_MANIFEST.encode())]), "state": state},
        manifest,
    )
    assert put.status == 201, (put.status, bytes(put.body))


async def measure(args: argparse.Namespace) -> None:
    """Set up, then time each scenario."""
    with tempfile.TemporaryDirectory() as workdir:
        settings = Settings(data_dir=Path(workdir), log_level="warning", access_log=True)
        await migrate.upgrade(settings.resolved_database_url)
        app = build_app(settings)
        async with running(app) as state:
            await push_image(app, state, "bench/seed", "latest", 0)
            layer = os.urandom(32 * 1024)
            layer_digest = await push_blob(app, state, "bench/seed", layer)
            manifest_get = {
                **_scope("GET", "/v2/bench/seed/manifests/latest", [(b"accept", ACCEPT.encode())]),
                "state": state,
            }
            blob_head = {**_scope("HEAD", f"/v2/bench/seed/blobs/{layer_digest}", []), "state": state}
            manifest = (await call(app, manifest_get)).body
            for n in range(args.tags):
                put = await call(
                    app,
                    {
                        **_scope("PUT", f"/v2/bench/seed/manifests/t{n}", [(b"content-type", OCI_MANIFEST.encode())]),
                        "state": state,
                    },
                    bytes(manifest),
                )
                assert put.status == 201, (put.status, bytes(put.body))
            tags_full = {**_scope("GET", "/v2/bench/seed/tags/list", []), "state": state}

            slowest: list[float] = []

            async def many(scope: dict[str, Any], count: int, status: int) -> None:
                for _ in range(count):
                    started = time.perf_counter()
                    answer = await call(app, scope)
                    slowest.append(time.perf_counter() - started)
                    assert answer.status == status, (answer.status, bytes(answer.body))

            image_counter = [0]

            async def images(count: int) -> None:
                for _ in range(count):
                    image_counter[0] += 1
                    await push_image(
                        app, state, f"bench/small{image_counter[0] % 8}", f"v{image_counter[0]}", image_counter[0]
                    )

            scenarios: dict[str, tuple[Callable[[int], Awaitable[None]], int, str]] = {
                "manifest_get": (lambda count: many(manifest_get, count, 200), args.requests, "request"),
                "blob_head": (lambda count: many(blob_head, count, 200), args.requests, "request"),
                "tags_full": (lambda count: many(tags_full, count, 200), max(args.requests // 100, 5), "request"),
                "small_images": (images, args.images, "image"),
            }
            for name, (run, count, unit) in scenarios.items():
                if args.profile and name != args.profile:
                    continue
                await run(max(count // 10, 1))  # warm up
                slowest.clear()
                profiler = cProfile.Profile() if args.profile else None
                started_cpu, started_wall = time.process_time(), time.perf_counter()
                if profiler:
                    profiler.enable()
                await run(count)
                if profiler:
                    profiler.disable()
                cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started_wall
                per_cpu, per_wall = cpu / count * 1e6, wall / count * 1e6
                tail = ""
                if slowest:
                    ordered = sorted(slowest)
                    p99, worst = ordered[int(len(ordered) * 0.99)] * 1e6, ordered[-1] * 1e6
                    tail = f"  p99 {p99:7.0f} us  max {worst:7.0f} us"
                print(f"{name:14} {count:6} x  {per_cpu:9.0f} us CPU/{unit}  {per_wall:9.0f} us wall/{unit}{tail}")
                if profiler:
                    stats = pstats.Stats(profiler)
                    stats.sort_stats(args.sort).print_stats(args.top)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--tags", type=int, default=200)
    parser.add_argument("--profile", choices=["manifest_get", "blob_head", "tags_full", "small_images"])
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--top", type=int, default=60)
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
