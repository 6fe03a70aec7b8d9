"""How fast one large file leaves a server on this machine, by each way of sending it.

    python -m bench.pull_paths [--size-mib 256] [--rounds 6] [--pulls 4] [--quick]

The single-pull scenario of ``bench.run`` compares Portside with Distribution. This asks what the
machine allows, and what each way of sending costs: issue #7 names ``os.sendfile`` and the
server's ``pathsend`` as levers to measure. The same bytes, warm in the page cache, are served by:

- ``sendfile``: a bare Python server, a thread per connection, ``os.sendfile`` in 1 MiB pieces
  (no copy in user space);
- ``copy``: the same server, ``preadv`` into a 1 MiB buffer, then ``sendall``;
- ``granian-read``: a bare ASGI app under Granian (one worker), reading 1 MiB pieces with
  Portside's own :func:`~portside.storage.cached_reads.read_whole_file`;
- ``granian-pathsend``: the same app answering with ASGI ``http.response.pathsend``, so that
  Granian reads the file in its own threads;
- ``portside``: ``portside serve`` with its production worker count, ``GET /v2/<name>/blobs/<digest>``;
- ``distribution``: CNCF Distribution 2.8 (``/usr/bin/docker-registry``), the same request.

Each round pulls from every server in turn (the order rotates), ``--pulls`` times back to back on
one connection, with the bench's client discarding the bytes. Printed, and saved under
``bench/results/``: MiB/s (median, min-max of every pull), the server's CPU-seconds per pull, the
client's, and each median's ratio to Distribution's.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.httpclient import Connection
from bench.monitor import TreeMonitor
from bench.registry import push_blob, sha256_digest
from bench.run import RESULTS_DIR, log
from bench.servers import DISTRIBUTION, PORTSIDE, Server

SENDFILE, COPY, GRANIAN_READ, GRANIAN_PATHSEND = "sendfile", "copy", "granian-read", "granian-pathsend"
BARE_KINDS = (SENDFILE, COPY, GRANIAN_READ, GRANIAN_PATHSEND)
PATHS = (*BARE_KINDS, PORTSIDE, DISTRIBUTION)
PIECE = 1 << 20
REPOSITORY = "bench/pull-paths"
# How the Granian worker learns what to serve (its app is built by a factory in the worker).
FILE_ENV, MODE_ENV = "PULL_PATHS_FILE", "PULL_PATHS_MODE"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# ---- the bare servers (run as `python -m bench.pull_paths --serve KIND --port P --file F`) ----


def _read_request_head(conn: socket.socket, pending: bytearray) -> bytes | None:
    """The next request's head (its body, if any, is not expected), or None when the client closed."""
    while (end := pending.find(b"\r\n\r\n")) < 0:
        data = conn.recv(65536)
        if not data:
            return None
        pending += data
    head = bytes(pending[:end])
    del pending[: end + 4]
    return head


def _serve_connection(conn: socket.socket, path: Path, kind: str) -> None:
    size = path.stat().st_size
    pending = bytearray()
    buffer = bytearray(PIECE)
    with conn, open(path, "rb") as file:
        fd = file.fileno()
        while (head := _read_request_head(conn, pending)) is not None:
            target = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
            if target == b"/v2/":  # the readiness probe of bench.servers
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                continue
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
            offset = 0
            while offset < size:
                if kind == SENDFILE:
                    offset += os.sendfile(conn.fileno(), fd, offset, min(PIECE, size - offset))
                else:
                    got = os.preadv(fd, [buffer], offset)
                    conn.sendall(memoryview(buffer)[:got])
                    offset += got


def serve_threads(path: Path, port: int, kind: str) -> None:
    """Serve ``path`` to every GET on 127.0.0.1:``port``, a thread per connection, until killed."""
    listener = socket.create_server(("127.0.0.1", port), backlog=64)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_serve_connection, args=(conn, path, kind), daemon=True).start()


def bare_app_from_environment() -> ASGIApp:
    """The ASGI app a bare Granian worker runs: the file of ``$PULL_PATHS_FILE`` for every GET."""
    from portside.storage.cached_reads import read_whole_file

    path = Path(os.environ[FILE_ENV])
    pathsend = os.environ[MODE_ENV] == GRANIAN_PATHSEND

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": message["type"] + ".complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["path"] == "/v2/":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        headers = [(b"content-type", b"application/octet-stream"), (b"content-length", b"%d" % path.stat().st_size)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if pathsend:
            await send({"type": "http.response.pathsend", "path": str(path)})
            return
        async for piece in read_whole_file(path):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return app


def serve_granian(path: Path, port: int, kind: str) -> None:
    """Serve ``path`` from a bare ASGI app under Granian, one worker, until stopped."""
    from granian.constants import HTTPModes, Interfaces
    from granian.server import Server as Granian

    os.environ[FILE_ENV], os.environ[MODE_ENV] = str(path), kind
    Granian(
        "bench.pull_paths:bare_app_from_environment",
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        factory=True,
        http=HTTPModes.auto,
        log_level="warning",  # type: ignore[arg-type]
    ).serve()


@dataclass
class BareServer(Server):
    """One of the bare servers, started and stopped like the registries (see :class:`Server`)."""

    kind: str = SENDFILE
    file: Path = Path()

    def _command(self) -> tuple[list[str], dict[str, str]]:
        argv = [sys.executable, "-m", "bench.pull_paths", "--serve", self.kind, "--port", str(self.port)]
        return [*argv, "--file", str(self.file)], dict(os.environ)


# ---- the measurement ----


@dataclass
class PathResult:
    """Every pull's MiB/s from one way of serving, and the CPU that server and client used per pull."""

    speeds: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)


def _client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pull_batch(server: Server, target: str, size: int, pulls: int, result: PathResult) -> None:
    """``pulls`` timed GETs of ``target`` on one connection, added to ``result``."""
    with Connection("127.0.0.1", server.port) as conn:
        monitor = TreeMonitor(server.pid)
        monitor.start()
        client_before = _client_cpu()
        for _ in range(pulls):
            started = time.perf_counter()
            response = conn.request("GET", target, discard=True)
            elapsed = time.perf_counter() - started
            if response.status != 200 or response.length != size:
                raise RuntimeError(f"{server.name}: GET {target} gave {response.status}, {response.length} bytes")
            result.speeds.append(size / elapsed / 2**20)
        result.client_cpu.append((_client_cpu() - client_before) / pulls)
        result.server_cpu.append(monitor.stop().cpu_seconds / pulls)


def measure(size: int, rounds: int, pulls: int, workdir: Path) -> dict[str, PathResult]:
    """Start every server, load the same random bytes into each, and pull in rotating order."""
    data = os.urandom(size)
    digest = sha256_digest(data)
    blob_file = workdir / "blob"
    blob_file.write_bytes(data)
    servers: dict[str, Server] = {}
    try:
        for kind in BARE_KINDS:
            servers[kind] = BareServer(kind, workdir / kind, kind=kind, file=blob_file).start()
        for name in (PORTSIDE, DISTRIBUTION):
            servers[name] = Server(name, workdir / name).start()
            with Connection("127.0.0.1", servers[name].port) as conn:
                push_blob(conn, REPOSITORY, data, digest)
        del data
        target = f"/v2/{REPOSITORY}/blobs/{digest}"
        results = {name: PathResult() for name in servers}
        for server in servers.values():  # untimed: warm each server's copy in the page cache
            pull_batch(server, target, size, 1, PathResult())
        for round_no in range(rounds):
            order = PATHS[round_no % len(PATHS) :] + PATHS[: round_no % len(PATHS)]
            for name in order:
                pull_batch(servers[name], target, size, pulls, results[name])
            log(f"round {round_no + 1}/{rounds} done")
        return results
    finally:
        for server in servers.values():
            server.stop()


def render(results: dict[str, PathResult], size: int, rounds: int, pulls: int) -> str:
    """A Markdown table of the results, with what was measured above it."""
    reference = statistics.median(results[DISTRIBUTION].speeds)
    lines = [
        f"One {size >> 20} MiB file served warm from the page cache, pulled by one client: {rounds} rounds of "
        f"{pulls} pulls per server, servers in rotating order ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC).",
        "",
        "| Served by | MiB/s median | min\u2013max | server CPU-s per pull | client CPU-s per pull | vs Distribution |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in PATHS:
        result = results[name]
        median = statistics.median(result.speeds)
        lines.append(
            f"| {name} | {median:,.0f} | {min(result.speeds):,.0f}\u2013{max(result.speeds):,.0f} "
            f"| {statistics.median(result.server_cpu):.3f} | {statistics.median(result.client_cpu):.3f} "
            f"| {median / reference:.2f}\u00d7 |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Entry point: measure and print, or (``--serve``) be one of the bare servers."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--pulls", type=int, default=4, help="timed pulls per server per round")
    parser.add_argument("--quick", action="store_true", help="a 4 MiB file, 1 round of 2 pulls: checks it works")
    parser.add_argument("--serve", choices=BARE_KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve = serve_granian if args.serve in (GRANIAN_READ, GRANIAN_PATHSEND) else serve_threads
        serve(args.file, args.port, args.serve)
        return
    size, rounds, pulls = (4 << 20, 1, 2) if args.quick else (args.size_mib << 20, args.rounds, args.pulls)
    with tempfile.TemporaryDirectory(prefix="portside-pull-paths-", dir="/var/tmp") as workdir:
        results = measure(size, rounds, pulls, Path(workdir))
    table = render(results, size, rounds, pulls)
    print(table)
    if not args.quick:
        RESULTS_DIR.mkdir(exist_ok=True)
        saved = RESULTS_DIR / f"pull-paths-{datetime.now(UTC):%Y%m%d-%H%M%S}.md"
        saved.write_text(table)
        log(f"saved {saved}")


if __name__ == "__main__":
    main()
