"""The scenarios of issue #7, their untimed setup, and the measured window around each run.

Every scenario runs the same client code against both servers. Data is built before the
timing starts (random bytes from ``os.urandom`` once, reused with a fresh prefix per run so
each push is a new blob), connections are opened and worker processes forked before it too,
and pulled bytes are verified after it.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bench.httpclient import Connection, Response, request_target
from bench.loadgen import ClosedLoop, LoadResult, WrkRun
from bench.monitor import CpuSnapshot, TreeMonitor, TreeUsage, machine_busy_seconds
from bench.parallel import ParallelJob
from bench.registry import (
    MANIFEST_ACCEPT,
    Blob,
    BlobPush,
    Image,
    ProtocolError,
    blob_exists,
    expect,
    get_json,
    make_image,
    mount_blob,
    next_link,
    push_blob,
    push_blob_chunked,
    push_blob_patched,
    push_image,
    put_manifest,
    sha256_digest,
)
from bench.servers import Server

MIB = 1 << 20
T = TypeVar("T")

# Repositories the scenarios use; setup creates every one of them so the catalog size is exact.
REPO_SEED = "bench/seed"
REPO_MONO = "bench/push-monolithic"
REPO_CHUNKED = "bench/push-chunked"
REPO_PULL = "bench/pull"
REPO_MANIFEST = "bench/manifest"
REPO_TAGS = "bench/tags"
SMALL_REPO = "bench/small-{}"
CATALOG_REPO = "catalog/repo-{:05d}"

#: ``Scenario.auth`` values: open servers, or servers that require a bearer token on every request.
AUTH_NONE = "none"
AUTH_TOKEN = "token"


@dataclass(frozen=True)
class Sizes:
    """Every size and count; ``quick()`` gives the smoke-test values."""

    big_blob: int = 256 * MIB
    chunk: int = 8 * MIB
    parallel_pulls: int = 16
    parallel_blob: int = 16 * MIB
    pull_repeats: int = 3
    concurrency: int = 64
    duration: float = 10.0
    closed_loop_processes: int = 2
    small_images: int = 200
    small_workers: int = 8
    small_layer: int = 32 * 1024
    tags: int = 5000
    repositories: int = 1000
    page: int = 100
    list_repeats: int = 10
    walk_repeats: int = 3
    setup_threads: int = 8

    @staticmethod
    def quick() -> Sizes:
        """Tiny sizes: the whole suite in well under a minute."""
        return Sizes(
            big_blob=8 * MIB,
            chunk=1 * MIB,
            parallel_blob=1 * MIB,
            pull_repeats=1,
            duration=1.0,
            small_images=24,
            tags=250,
            repositories=150,
            list_repeats=3,
            walk_repeats=1,
        )


@dataclass(frozen=True)
class MetricSpec:
    """One reported number of a scenario."""

    key: str
    label: str
    unit: str
    higher_is_better: bool


@dataclass
class Measurement:
    """One scenario run against one server."""

    metrics: dict[str, float]
    wall_seconds: float
    server: TreeUsage
    loadgen_cpu: float
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    #: CPU-seconds used meanwhile by every other process on the machine (other people's work, the kernel).
    other_cpu: float = 0.0


def bench_repositories(sizes: Sizes) -> tuple[str, ...]:
    """Every repository setup and the scenarios use, bar the catalog's many: what a setup token lists."""
    return (
        REPO_SEED,
        REPO_MONO,
        REPO_CHUNKED,
        REPO_PULL,
        REPO_MANIFEST,
        REPO_TAGS,
        *(SMALL_REPO.format(i) for i in range(sizes.small_workers)),
    )


@dataclass
class Target:
    """A running server and what setup left for the scenarios (digests, images).

    ``repositories`` is what a connection's token covers when the caller names none (token auth only).
    """

    server: Server
    state: dict[str, Any] = field(default_factory=dict)
    repositories: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """``portside`` or ``distribution``."""
        return self.server.name

    def auth_headers(self, repositories: Iterable[str]) -> dict[str, str]:
        """The ``Authorization`` header for ``repositories`` if the server wants a token, else nothing."""
        return self.server.auth_headers(repositories)

    def connect(self, timeout: float = 120.0, repositories: Iterable[str] | None = None) -> Connection:
        """A new keep-alive connection, already open (``GET /v2/``), so timing never includes the handshake.

        On a token-auth server every request carries a token for ``repositories`` (default: all
        of :attr:`repositories` and the catalog), as a client holds one token per repository it works on.
        """
        if repositories is None:
            headers = self.server.auth_headers(self.repositories, catalog=True)
        else:
            headers = self.server.auth_headers(repositories)
        conn = Connection("127.0.0.1", self.server.port, timeout=timeout, headers=headers)
        expect(conn.request("GET", "/v2/"), 200, "GET /v2/")
        return conn


class Window:
    """The measured part of a run: server tree CPU and RSS, the load generator's CPU, the wall time.

    The load generator's CPU is this process's (minus the sampling thread's) plus that of
    children reaped inside the window (``wrk``) plus ``extra_cpu`` that worker processes
    reported about themselves (they are reaped only after the window closes).
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self.monitor = TreeMonitor(target.server.pid)
        self.wall = 0.0
        self.usage: TreeUsage | None = None
        self._cpu0 = CpuSnapshot(0.0, 0.0)
        self._cpu1 = CpuSnapshot(0.0, 0.0)
        self._t0 = 0.0
        self._busy0 = 0.0
        self._busy1 = 0.0

    def __enter__(self) -> Window:
        self.target.server.check_alive()
        self.monitor.start()
        self._cpu0 = CpuSnapshot.now()
        self._busy0 = machine_busy_seconds()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._t0
        self._busy1 = machine_busy_seconds()
        self._cpu1 = CpuSnapshot.now()
        self.usage = self.monitor.stop()

    def measure(
        self,
        metrics: dict[str, float],
        *,
        wall: float | None = None,
        extra_cpu: float = 0.0,
        notes: Iterable[str] = (),
        details: dict[str, Any] | None = None,
    ) -> Measurement:
        """Package the window's accounting with the scenario's numbers."""
        assert self.usage is not None, "measure() after the with block"
        own = self._cpu1.self_cpu - self._cpu0.self_cpu - self.monitor.thread_cpu
        kids = self._cpu1.children_cpu - self._cpu0.children_cpu
        loadgen = max(0.0, own) + kids + extra_cpu
        machine = self._busy1 - self._busy0
        return Measurement(
            metrics=metrics,
            wall_seconds=self.wall if wall is None else wall,
            server=self.usage,
            loadgen_cpu=loadgen,
            notes=list(notes),
            details={**(details or {}), "machine_busy_cpu": machine},
            other_cpu=max(0.0, machine - self.usage.cpu_seconds - loadgen) * (1 if wall is None else wall / self.wall),
        )


def combine(parts: list[Measurement]) -> Measurement:
    """Several back-to-back measurements of one run as one: median metrics, summed time and CPU, peak memory."""
    metrics = {key: statistics.median(p.metrics[key] for p in parts) for key in parts[0].metrics}
    usage = TreeUsage(
        cpu_seconds=sum(p.server.cpu_seconds for p in parts),
        peak_rss_tree=max(p.server.peak_rss_tree for p in parts),
        peak_rss_process=max(p.server.peak_rss_process for p in parts),
        processes=max(p.server.processes for p in parts),
        samples=sum(p.server.samples for p in parts),
    )
    return Measurement(
        metrics=metrics,
        wall_seconds=sum(p.wall_seconds for p in parts),
        server=usage,
        loadgen_cpu=sum(p.loadgen_cpu for p in parts),
        notes=[note for p in parts for note in p.notes],
        details={"repeats": len(parts), "each": [p.metrics for p in parts], **parts[0].details},
        other_cpu=sum(p.other_cpu for p in parts),
    )


@dataclass
class Bench:
    """What all scenarios share: sizes and the preallocated random buffer."""

    sizes: Sizes
    _big: bytearray | None = None

    @property
    def big(self) -> bytearray:
        """``big_blob`` random bytes, made once; pushes change the first 16 bytes to get a new blob."""
        if self._big is None:
            self._big = bytearray(os.urandom(self.sizes.big_blob))
        return self._big

    def fresh_big_blob(self) -> str:
        """Give the big buffer a new random prefix; its digest (hashing happens here, untimed)."""
        self.big[:16] = os.urandom(16)
        return sha256_digest(self.big)


class Scenario:
    """One benchmark scenario; subclasses define ``run``."""

    key = ""
    title = ""
    description = ""
    needs: tuple[str, ...] = ()
    metrics: tuple[MetricSpec, ...] = ()
    #: Which servers it runs against: ``AUTH_NONE`` (open) or ``AUTH_TOKEN``.
    auth = AUTH_NONE
    uses_wrk = False

    def run(self, bench: Bench, target: Target, round_no: int) -> Measurement:
        """Run once against ``target``."""
        raise NotImplementedError

    def label(self, sizes: Sizes) -> str:
        """The title with this run's sizes filled in."""
        return self.title.format(
            big=_size(sizes.big_blob),
            chunk=_size(sizes.chunk),
            pulls=sizes.parallel_pulls,
            pblob=_size(sizes.parallel_blob),
            conc=sizes.concurrency,
            images=sizes.small_images,
            workers=sizes.small_workers,
            tags=f"{sizes.tags:,}",
            repos=f"{sizes.repositories:,}",
            page=sizes.page,
        )


def _size(size: int) -> str:
    return f"{size // MIB} MiB" if size % MIB == 0 else f"{size // 1024} KiB"


def _mib_per_s(size: int, seconds: float) -> float:
    return size / MIB / seconds if seconds > 0 else 0.0


THROUGHPUT = MetricSpec("throughput", "throughput", "MiB/s", True)
RPS = MetricSpec("rps", "requests/s", "req/s", True)
P50 = MetricSpec("p50", "latency p50", "ms", False)
P99 = MetricSpec("p99", "latency p99", "ms", False)


# Blob pushes and pulls


class PushMonolithic(Scenario):
    key = "push_monolithic"
    title = "Push {big} blob, monolithic"
    description = "POST /blobs/uploads/, then one PUT ?digest= carrying the whole blob; a new blob every run."
    needs = ("precreate",)
    metrics = (THROUGHPUT,)

    def run(self, bench: Bench, target: Target, round_no: int) -> Measurement:
        digest = bench.fresh_big_blob()
        size = len(bench.big)
        conn = target.connect(repositories=[REPO_MONO])
        with Window(target) as window:
            push_blob(conn, REPO_MONO, bench.big, digest)
        head = conn.request("HEAD", f"/v2/{REPO_MONO}/blobs/{digest}")
        conn.close()
        if head.status != 200 or head.header("content-length") != str(size):
            raise ProtocolError(f"pushed blob not found whole: HEAD {head.status} {head.header('content-length')}")
        return window.measure({"throughput": _mib_per_s(size, window.wall)}, details={"bytes": size})


class PushChunked(Scenario):
    key = "push_chunked"
    title = "Push {big} blob in {chunk} chunks"
    description = "POST, then PATCH with Content-Range for each chunk (following Location), then PUT ?digest=."
    needs = ("precreate",)
    metrics = (THROUGHPUT,)

    def run(self, bench: Bench, target: Target, round_no: int) -> Measurement:
        digest = bench.fresh_big_blob()
        size = len(bench.big)
        conn = target.connect(repositories=[REPO_CHUNKED])
        with Window(target) as window:
            patches = push_blob_chunked(conn, REPO_CHUNKED, bench.big, digest, bench.sizes.chunk)
        head = conn.request("HEAD", f"/v2/{REPO_CHUNKED}/blobs/{digest}")
        conn.close()
        if head.status != 200 or head.header("content-length") != str(size):
            raise ProtocolError(f"chunked blob not found whole: HEAD {head.status} {head.header('content-length')}")
        return window.measure(
            {"throughput": _mib_per_s(size, window.wall)}, details={"bytes": size, "patches": patches}
        )


def _verify_pull(conn: Connection, repo: str, digest: str, size: int) -> None:
    hasher = hashlib.sha256()
    response = conn.request("GET", f"/v2/{repo}/blobs/{digest}", sink=hasher.update)
    expect(response, 200, f"GET blob {digest[:19]}")
    if response.length != size or "sha256:" + hasher.hexdigest() != digest:
        raise ProtocolError(f"pulled blob {digest[:19]} is wrong: {response.length} bytes, sha256 {hasher.hexdigest()}")


class PullBlob(Scenario):
    key = "pull_blob"
    title = "Pull one {big} blob"
    description = (
        "GET /blobs/<digest> of the big blob, 3 times back to back (median reported); bytes counted, not kept; "
        "an untimed GET first checks the sha256 and warms the page cache."
    )
    needs = ("pull",)
    metrics = (THROUGHPUT,)

    def run(self, bench: Bench, target: Target, round_no: int) -> Measurement:
        digest: str = target.state["big_digest"]
        size: int = target.state["big_size"]
        conn = target.connect(repositories=[REPO_PULL])
        # Untimed first: check the bytes, and bring the blob into the page cache (the VM's proactive
        # reclaim evicts idle pages, and a cold read measures the virtual disk, not the server).
        _verify_pull(conn, REPO_PULL, digest, size)
        parts = []
        for _ in range(bench.sizes.pull_repeats):
            with Window(target) as window:
                response = conn.request("GET", f"/v2/{REPO_PULL}/blobs/{digest}", discard=True)
            expect(response, 200, "GET big blob")
            if response.length != size:
                raise ProtocolError(f"pulled {response.length} bytes of {size}")
            parts.append(window.measure({"throughput": _mib_per_s(size, window.wall)}, details={"bytes": size}))
        conn.close()
        return combine(parts)


class PullParallel(Scenario):
    key = "pull_parallel"
    title = "{pulls} parallel pulls of {pblob} blobs"
    description = (
        "N processes each GET a different blob at the same instant; aggregate bytes / wall time; "
        "3 times back to back (median reported); untimed GETs first check every sha256 and warm the page cache."
    )
    needs = ("pull",)
    metrics = (THROUGHPUT,)

    def run(self, bench: Bench, target: Target, round_no: int) -> Measurement:
        with target.connect(repositories=[REPO_PULL]) as conn:  # untimed: check every blob, warm the page cache
            for digest in target.state["parallel_digests"]:
                _verify_pull(conn, REPO_PULL, digest, bench.sizes.parallel_blob)
        return combine([self._once(bench, target) for _ in range(bench.sizes.pull_repeats)])

    @staticmethod
    def _once(bench: Bench, target: Target) -> Measurement:
        digests: list[str] = target.state["parallel_digests"]
        size = bench.sizes.parallel_blob

        def prepare(index: int) -> Connection:
            return target.connect(repositories=[REPO_PULL])

        def work(index: int, conn: Connection) -> dict[str, Any]:
            response = conn.request("GET", f"/v2/{REPO_PULL}/blobs/{digests[index]}", discard=True)
            return {"status": response.status, "length": response.length}

        job = ParallelJob(len(digests), prepare, work, timeout=300)
        try:
            with Window(target) as window:
                run = job.run()
        finally:
            job.close()
        bad = [r.payload for r in run.results if r.payload["status"] != 200 or r.payload["length"] != size]
        if bad:
            raise ProtocolError(f"parallel pulls failed: {bad[:3]}")
        total = size * len(digests)
        return window.measure(
            {"throughput": _mib_per_s(total, run.wall_seconds)},
            wall=run.wall_seconds,
            extra_cpu=run.worker_cpu_seconds,
            details={"bytes": total, "pulls": len(digests)},
        )


# Request-rate scenarios


def _load_measurement(window: Window, result: LoadResult) -> Measurement:
    result.check()
    return window.measure(
        {"rps": result.rps, "p50": result.p50_ms, "p99": result.p99_ms},
        wall=result.seconds,
        extra_cpu=result.worker_cpu,
        details={
            "tool": result.tool,
            "requests": result.requests,
            "p90_ms": result.p90_ms,
            "max_ms": result.max_ms,
            "wrk_output": result.raw,
        },
    )


class ManifestGet(Scenario):
    key = "manifest_get"
    title = "Manifest GET by tag, c={conc}, wrk"
    description = "wrk, 2 threads, 64 connections, GET /manifests/<tag> with the Accept header containerd sends."
    needs = ("image",)
    metrics = (RPS, P50, P99)
    uses_wrk = True

    def run(self, bench: Bench, target: Target, round_no: int) -> Measurement:
        url = f"http://127.0.0.1:{target.server.port}/v2/{REPO_MANIFEST}/manifests/latest"
        headers = {"Accept": MANIFEST_ACCEPT, **target.auth_headers([REPO_MANIFEST])}
        wrk = WrkRun(url, "GET", headers, bench.sizes.concurrency, bench.sizes.duration)
        with Window(target) as window:
            result = wrk.run()
        return _load_measurement(window, result)


class _ClosedLoopScenario(Scenario):
    method = "GET"

    def target_path(self, target: Target) -> tuple[str, dict[str, str]]:
        raise NotImplementedError

    def run(self, bench: Bench, target: Target, round_no: int) -> Measurement:
        path, headers = self.target_path(target)
        sizes = bench.sizes
        loop = ClosedLoop(
            "127.0.0.1",
            target.server.port,
            self.method,
            path,
            headers,
            sizes.concurrency,
            sizes.duration,
            sizes.closed_loop_processes,
        )
        try:
            with Window(target) as window:
                result = loop.run()
        finally:
            loop.close()
        return _load_measurement(window, result)


class BlobHead(_ClosedLoopScenario):
    key = "blob_head"
    title = "Blob HEAD, c={conc}, Python client"
    description = "64 connections over 2 processes (epoll), HEAD /blobs/<digest> of a small layer, for the duration."
    needs = ("image",)
    metrics = (RPS, P50, P99)
    method = "HEAD"

    def target_path(self, target: Target) -> tuple[str, dict[str, str]]:
        image: Image = target.state["image"]
        return f"/v2/{REPO_MANIFEST}/blobs/{image.layers[0].digest}", target.auth_headers([REPO_MANIFEST])


class ManifestGetPython(_ClosedLoopScenario):
    key = "manifest_get_py"
    title = "Manifest GET by tag, c={conc}, Python client (calibration)"
    description = "The manifest GET again, driven by the Python client of the HEAD scenario, to compare with wrk."
    needs = ("image",)
    metrics = (RPS, P50, P99)

    def target_path(self, target: Target) -> tuple[str, dict[str, str]]:
        return f"/v2/{REPO_MANIFEST}/manifests/latest", {
            "Accept": MANIFEST_ACCEPT,
            **target.auth_headers([REPO_MANIFEST]),
        }


# Many small images


class SmallImages(Scenario):
    key = "small_images"
    title = "{images} small images pushed by {workers} workers"
    description = (
        "Images of a config + 2 random layers pushed as clients do (HEAD, POST, PUT per blob, then PUT manifest), "
        "spread over 8 processes, one repository each."
    )
    needs = ("precreate",)
    metrics = (MetricSpec("images_per_s", "images/s", "images/s", True),)
    push: BlobPush = staticmethod(push_blob)
    tag_prefix = "r"

    def tag(self, round_no: int, number: int) -> str:
        """The tag of this scenario's ``number``-th image of a round (each scenario its own)."""
        return f"{self.tag_prefix}{round_no}-{number}"

    def run(self, bench: Bench, target: Target, round_no: int) -> Measurement:
        sizes = bench.sizes
        layer = sizes.small_layer
        images = [
            make_image(f"{target.name}-{round_no}-{i}-{os.urandom(8).hex()}", (layer, layer))
            for i in range(sizes.small_images)
        ]
        shares = [images[w :: sizes.small_workers] for w in range(sizes.small_workers)]

        def prepare(index: int) -> Connection:
            # One token per worker, for its own repository, as each pushing client would hold.
            return target.connect(repositories=[SMALL_REPO.format(index)])

        def work(index: int, conn: Connection) -> dict[str, Any]:
            for number, image in enumerate(shares[index]):
                push_image(conn, SMALL_REPO.format(index), self.tag(round_no, number), image, self.push)
            return {"images": len(shares[index]), "requests": conn.requests}

        job = ParallelJob(sizes.small_workers, prepare, work, timeout=600)
        try:
            with Window(target) as window:
                run = job.run()
        finally:
            job.close()
        pushed = sum(r.payload["images"] for r in run.results)
        # Spot check: the last image of worker 0 resolves to its digest.
        with target.connect(repositories=[SMALL_REPO.format(0)]) as conn:
            last = len(shares[0]) - 1
            response = conn.request(
                "HEAD", f"/v2/{SMALL_REPO.format(0)}/manifests/{self.tag(round_no, last)}", {"Accept": MANIFEST_ACCEPT}
            )
            expect(response, 200, "HEAD pushed manifest")
            if response.header("docker-content-digest") != shares[0][last].digest:
                raise ProtocolError("pushed manifest digest differs")
        return window.measure(
            {"images_per_s": pushed / run.wall_seconds},
            wall=run.wall_seconds,
            extra_cpu=run.worker_cpu_seconds,
            details={"images": pushed, "requests": sum(r.payload["requests"] for r in run.results)},
        )


class SmallImagesPatched(SmallImages):
    key = "small_images_patch"
    title = "{images} small images pushed by {workers} workers, each blob in a PATCH"
    description = (
        "The same images, each blob pushed the way docker, podman and skopeo push it: POST, one PATCH "
        "with the whole blob, then an empty PUT ?digest=."
    )
    push: BlobPush = staticmethod(push_blob_patched)
    tag_prefix = "p"


# Listings


def _walk(conn: Connection, first: str) -> tuple[list[Response], int]:
    """GET ``first`` and every ``Link: rel=next`` after it; the responses and the request count."""
    responses = []
    target: str | None = first
    while target is not None:
        response = conn.request("GET", target)
        expect(response, 200, f"GET {target}")
        responses.append(response)
        link = next_link(response)
        target = request_target(link) if link else None
        if len(responses) > 100_000:
            raise ProtocolError("listing does not end")
    return responses, len(responses)


def _names(responses: list[Response], key: str) -> list[str]:
    names: list[str] = []
    for response in responses:
        names.extend(json.loads(response.body)[key] or [])
    return names


class _ListingScenario(Scenario):
    list_key = "tags"
    expected_attr = "tags"
    paginated = False

    def first_target(self, bench: Bench) -> str:
        raise NotImplementedError

    def run(self, bench: Bench, target: Target, round_no: int) -> Measurement:
        sizes = bench.sizes
        repeats = sizes.walk_repeats if self.paginated else sizes.list_repeats
        conn = target.connect()
        times: list[float] = []
        walks: list[tuple[list[Response], int]] = []
        first = self.first_target(bench)
        with Window(target) as window:
            for _ in range(repeats):
                started = time.perf_counter()
                walks.append(_walk(conn, first))
                times.append(time.perf_counter() - started)
        conn.close()
        expected = getattr(sizes, self.expected_attr)
        notes = []
        for responses, _ in walks:
            names = _names(responses, self.list_key)
            if len(names) != expected or len(set(names)) != expected:
                raise ProtocolError(f"listing returned {len(names)} names ({len(set(names))} distinct), not {expected}")
        requests = walks[0][1]
        want_pages = -(-expected // sizes.page) if self.paginated else 1
        if requests != want_pages:
            asked = f"{want_pages} pages of n={sizes.page} were" if self.paginated else "one response was"
            notes.append(
                f"{target.name} needed {requests} request(s) for the whole list where {asked} expected: "
                "not like for like"
            )
        return window.measure(
            {"ms": statistics.median(times) * 1000},
            notes=notes,
            details={"requests_per_listing": requests, "repeats": repeats, "names": expected},
        )


LISTING_MS = MetricSpec("ms", "time for the complete list", "ms", False)


class TagsFull(_ListingScenario):
    key = "tags_full"
    title = "Tags list of {tags} tags, full"
    description = "GET /tags/list without n (following Link if the server pages anyway); median of the repeats."
    needs = ("tags",)
    metrics = (LISTING_MS,)

    def first_target(self, bench: Bench) -> str:
        return f"/v2/{REPO_TAGS}/tags/list"


class TagsPaginated(_ListingScenario):
    key = "tags_paginated"
    title = "Tags list of {tags} tags, n={page} walk"
    description = "GET /tags/list?n=100 and every Link: rel=next after it; median walk time."
    needs = ("tags",)
    metrics = (LISTING_MS,)
    paginated = True

    def first_target(self, bench: Bench) -> str:
        return f"/v2/{REPO_TAGS}/tags/list?n={bench.sizes.page}"


class CatalogPaginated(_ListingScenario):
    key = "catalog_paginated"
    title = "Catalog of {repos} repositories, n={page} walk"
    description = "GET /v2/_catalog?n=100 and every Link: rel=next after it; median walk time."
    needs = ("catalog",)
    metrics = (LISTING_MS,)
    list_key = "repositories"
    expected_attr = "repositories"
    paginated = True

    def first_target(self, bench: Bench) -> str:
        return f"/v2/_catalog?n={bench.sizes.page}"


class CatalogFull(_ListingScenario):
    key = "catalog_full"
    title = "Catalog of {repos} repositories, full"
    description = "GET /v2/_catalog without n (following Link if the server pages anyway); median of the repeats."
    needs = ("catalog",)
    metrics = (LISTING_MS,)
    list_key = "repositories"
    expected_attr = "repositories"

    def first_target(self, bench: Bench) -> str:
        return "/v2/_catalog"


class WithToken(Scenario):
    """Another scenario, run against the second pair of servers, which require a bearer token.

    The scenario's code is the same; its connections, ``wrk`` script and load workers carry an
    ``Authorization: Bearer`` header because the target's server has a token key.
    """

    auth = AUTH_TOKEN

    def __init__(self, base: Scenario) -> None:
        self.base = base
        self.key = f"{base.key}_token"
        self.title = f"{base.title} (token auth)"
        self.description = (
            f"{base.description} Token auth: every request carries a bearer token (ES256) for the repositories "
            "it works on."
        )
        self.needs = base.needs
        self.metrics = base.metrics
        self.uses_wrk = base.uses_wrk

    def run(self, bench: Bench, target: Target, round_no: int) -> Measurement:
        """The base scenario's run, against a token-auth target."""
        if not target.server.token_key:
            raise ValueError(f"{self.key} needs a server with token auth")
        return self.base.run(bench, target, round_no)


SCENARIOS: tuple[Scenario, ...] = (
    PushMonolithic(),
    PushChunked(),
    PullBlob(),
    PullParallel(),
    ManifestGet(),
    ManifestGetPython(),
    BlobHead(),
    SmallImages(),
    SmallImagesPatched(),
    TagsFull(),
    TagsPaginated(),
    CatalogPaginated(),
    CatalogFull(),
    # Issue #7: the hot paths again with token auth, on servers of their own.
    WithToken(ManifestGet()),
    WithToken(BlobHead()),
    WithToken(SmallImages()),
    WithToken(PullBlob()),
)


# Setup (untimed, through the API)


def _threaded(target: Target, threads: int, items: list[T], action: Callable[[Connection, T], None]) -> None:
    """Run ``action(conn, item)`` for every item on ``threads`` threads, each with its own connection."""
    local = threading.local()
    opened: list[Connection] = []
    lock = threading.Lock()

    def one(item: T) -> None:
        conn: Connection | None = getattr(local, "conn", None)
        if conn is None:
            conn = target.connect()
            local.conn = conn
            with lock:
                opened.append(conn)
        action(conn, item)

    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for future in [pool.submit(one, item) for item in items]:
                future.result(timeout=600)
    finally:
        for conn in opened:
            conn.close()


def _catalog_count(conn: Connection) -> int:
    responses, _ = _walk(conn, "/v2/_catalog?n=1000")
    return len(_names(responses, "repositories"))


def setup(bench: Bench, target: Target, needs: set[str], log: Callable[[str], None]) -> None:
    """Create what the selected scenarios need on ``target``; nothing here is timed."""
    sizes = bench.sizes
    seed = make_image("seed", (1024,))
    with target.connect() as conn:
        push_image(conn, REPO_SEED, "seed", seed)
        target.state["seed"] = seed
        if "precreate" in needs or "catalog" in needs:
            repos = [REPO_MONO, REPO_CHUNKED, *(SMALL_REPO.format(i) for i in range(sizes.small_workers))]
            for repo in repos:
                _clone_seed(conn, repo, seed, "seed")
        if "pull" in needs:
            started = time.perf_counter()
            digest = bench.fresh_big_blob()
            push_blob(conn, REPO_PULL, bench.big, digest)
            target.state["big_digest"], target.state["big_size"] = digest, len(bench.big)
            digests = []
            for _ in range(sizes.parallel_pulls):
                blob = Blob.of(os.urandom(sizes.parallel_blob))
                push_blob(conn, REPO_PULL, blob.data, blob.digest)
                digests.append(blob.digest)
            target.state["parallel_digests"] = digests
            log(f"pull blobs pushed in {time.perf_counter() - started:.1f} s")
        if "image" in needs:
            image = make_image("manifest-get", (4096, 8192))
            push_image(conn, REPO_MANIFEST, "latest", image)
            target.state["image"] = image
            response, _ = get_json(conn, f"/v2/{REPO_MANIFEST}/manifests/latest", MANIFEST_ACCEPT)
            if response.body != image.manifest:
                raise ProtocolError("manifest read back differs from the one pushed")
    if "tags" in needs:
        started = time.perf_counter()
        with target.connect() as conn:
            push_image(conn, REPO_TAGS, "seed", seed)
        # The seed tag is one of the `tags` tags: it sorts after the numbered ones.
        names = [f"t{i:05d}" for i in range(sizes.tags - 1)]
        _threaded(target, sizes.setup_threads, names, lambda c, tag: _tag(c, seed, tag))
        log(f"{sizes.tags} tags created in {time.perf_counter() - started:.1f} s")
    if "catalog" in needs:
        started = time.perf_counter()
        with target.connect() as conn:
            existing = _catalog_count(conn)
        missing = sizes.repositories - existing
        if missing < 0:
            raise ProtocolError(
                f"{existing} repositories exist before the catalog setup, more than {sizes.repositories}"
            )
        repos = [CATALOG_REPO.format(i) for i in range(missing)]
        _threaded(target, sizes.setup_threads, repos, lambda c, repo: _clone_seed(c, repo, seed, "v1"))
        with target.connect() as conn:
            total = _catalog_count(conn)
        if total != sizes.repositories:
            raise ProtocolError(f"catalog lists {total} repositories after setup, expected {sizes.repositories}")
        log(f"{missing} repositories created in {time.perf_counter() - started:.1f} s ({total} in the catalog)")


def _tag(conn: Connection, image: Image, tag: str) -> None:
    put_manifest(conn, REPO_TAGS, tag, image.manifest)


def _clone_seed(conn: Connection, repo: str, seed: Image, tag: str) -> None:
    """Mount the seed image's blobs into ``repo`` and tag its manifest there."""
    for blob in seed.blobs:
        try:
            mount_blob(conn, repo, blob.digest, REPO_SEED)
        except ProtocolError:
            if not blob_exists(conn, repo, blob.digest):
                push_blob(conn, repo, blob.data, blob.digest)
    put_manifest(conn, repo, tag, seed.manifest)


def scenario_by_key() -> dict[str, Scenario]:
    """The registry of scenarios."""
    return {scenario.key: scenario for scenario in SCENARIOS}
