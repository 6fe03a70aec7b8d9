"""How fast one large blob moves on this machine, whatever the server: bare servers beside both registries.

    python -m bench.paths pull|push [--size-mib 256] [--rounds 6] [--repeats 4] [--quick]

The large-blob scenarios of ``bench.run`` compare Portside with Distribution. This asks what the
machine allows and what each way of moving the bytes costs, so that a ratio can be read against
a bound (issue #7 names ``os.sendfile``, the server's ``pathsend`` and hashing off the event loop
as levers to measure).

``pull``: the same bytes, warm in the page cache, sent by

- ``sendfile``: a bare Python server, a thread per connection, ``os.sendfile`` in 1 MiB pieces
  (no copy in user space);
- ``copy``: the same server, ``preadv`` into a 1 MiB buffer, then ``sendall``;
- ``granian-read``: a bare ASGI app under Granian (one worker), reading 1 MiB pieces with
  Portside's own :func:`~portside.storage.cached_reads.read_whole_file`;
- ``granian-pathsend``: the same app answering with ASGI ``http.response.pathsend``;
- ``portside`` and ``distribution``: ``GET /v2/<name>/blobs/<digest>``.

``push``: a body of fresh bytes each time (new first 16 bytes, digest computed untimed), taken by

- ``socket-hash``: a bare Python server receiving into a 1 MiB buffer and hashing (sha256) in
  the same thread;
- ``granian-receive``: a bare ASGI app under Granian that receives the body and drops it;
- ``granian-hash``: the same app handing each chunk to a thread that hashes it, as Portside does,
  answering once the hash is done (the digest is checked);
- ``portside`` and ``distribution``: a monolithic push (``POST``, then ``PUT ?digest=`` with the
  body), which also writes the bytes durably.

Each round moves the blob through every server in turn (the order rotates), ``--repeats`` times
back to back on one connection. Printed, and saved under ``bench/results/``: MiB/s (median,
min-max of every transfer), the server's and the client's CPU-seconds per transfer, and each
median's ratio to Distribution's.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import queue
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
from bench.monitor import CpuSnapshot, TreeMonitor
from bench.registry import push_blob, sha256_digest
from bench.report import save_table, speed_cells
from bench.run import RESULTS_DIR, log, rotated
from bench.servers import DISTRIBUTION, PORTSIDE, Server

PULL, PUSH = "pull", "push"
SENDFILE, COPY, GRANIAN_READ, GRANIAN_PATHSEND = "sendfile", "copy", "granian-read", "granian-pathsend"
SOCKET_HASH, GRANIAN_RECEIVE, GRANIAN_HASH = "socket-hash", "granian-receive", "granian-hash"
BARE_WAYS = {PULL: (SENDFILE, COPY, GRANIAN_READ, GRANIAN_PATHSEND), PUSH: (SOCKET_HASH, GRANIAN_RECEIVE, GRANIAN_HASH)}
GRANIAN_WAYS = (GRANIAN_READ, GRANIAN_PATHSEND, GRANIAN_RECEIVE, GRANIAN_HASH)
PIECE = 1 << 20
REPOSITORY = "bench/paths"
UPLOAD_TARGET = "/upload"
OCTET = {"Content-Type": "application/octet-stream"}
# How the Granian worker learns what to do (its app is built by a factory in the worker).
FILE_ENV, WAY_ENV = "BENCH_PATHS_FILE", "BENCH_PATHS_WAY"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# ---- the bare servers (run as `python -m bench.paths --serve WAY --port P --file F`) ----


def _read_request_head(conn: socket.socket, pending: bytearray) -> bytes | None:
    """The next request's head, or None when the client closed; what follows it stays in ``pending``."""
    while (end := pending.find(b"\r\n\r\n")) < 0:
        data = conn.recv(65536)
        if not data:
            return None
        pending += data
    head = bytes(pending[:end])
    del pending[: end + 4]
    return head


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def _receive_and_hash(conn: socket.socket, pending: bytearray, length: int, buffer: bytearray) -> str:
    """Take a body of ``length`` bytes (``pending`` holds its start) and return its sha256 digest."""
    hasher = hashlib.sha256(pending[:length])
    remaining = length - min(length, len(pending))
    del pending[:length]
    view = memoryview(buffer)
    while remaining:
        got = conn.recv_into(view, min(remaining, len(buffer)))
        if not got:
            raise ConnectionError("client closed inside the body")
        hasher.update(view[:got])
        remaining -= got
    return "sha256:" + hasher.hexdigest()


def _send_file(conn: socket.socket, fd: int, size: int, way: str, buffer: bytearray) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
    offset = 0
    while offset < size:
        if way == SENDFILE:
            offset += os.sendfile(conn.fileno(), fd, offset, min(PIECE, size - offset))
        else:
            got = os.preadv(fd, [buffer], offset)
            conn.sendall(memoryview(buffer)[:got])
            offset += got


def _serve_connection(conn: socket.socket, path: Path, way: str) -> None:
    pending = bytearray()
    buffer = bytearray(PIECE)
    with conn, open(path, "rb") as file:
        while (head := _read_request_head(conn, pending)) is not None:
            target = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
            if target == b"/v2/":  # the readiness probe of bench.servers
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            elif way == SOCKET_HASH:
                digest = _receive_and_hash(conn, pending, _content_length(head), buffer).encode()
                conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n%s" % (len(digest), digest))
            else:
                _send_file(conn, file.fileno(), os.fstat(file.fileno()).st_size, way, buffer)


def serve_threads(path: Path, port: int, way: str) -> None:
    """Serve on 127.0.0.1:``port``, a thread per connection, until killed."""
    listener = socket.create_server(("127.0.0.1", port), backlog=64)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_serve_connection, args=(conn, path, way), daemon=True).start()


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = headers or [(b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _take_body(receive: Receive, way: str) -> bytes:
    """Receive the whole body; with ``granian-hash`` hash it in a thread, chunk by chunk, as it comes."""
    chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    hasher = hashlib.sha256()

    def hash_chunks() -> None:
        while (chunk := chunks.get()) is not None:
            hasher.update(chunk)

    hashing = threading.Thread(target=hash_chunks, daemon=True) if way == GRANIAN_HASH else None
    if hashing is not None:
        hashing.start()
    length = 0
    more = True
    while more:
        message = await receive()
        body: bytes = message.get("body", b"")
        length += len(body)
        if hashing is not None and body:
            chunks.put(body)
        more = message.get("more_body", False)
    if hashing is None:
        return b"%d bytes" % length
    chunks.put(None)
    await asyncio.to_thread(hashing.join)
    return b"sha256:" + hasher.hexdigest().encode()


def bare_app_from_environment() -> ASGIApp:
    """The ASGI app a bare Granian worker runs, doing what ``$BENCH_PATHS_WAY`` says."""
    from portside.storage.cached_reads import read_whole_file

    path = Path(os.environ[FILE_ENV])
    way = os.environ[WAY_ENV]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": message["type"] + ".complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["path"] == "/v2/":
            await _answer(send, 200, b"")
        elif way in BARE_WAYS[PUSH]:
            await _answer(send, 201, await _take_body(receive, way))
        else:
            headers = [(b"content-type", b"application/octet-stream"), (b"content-length", b"%d" % path.stat().st_size)]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            if way == GRANIAN_PATHSEND:
                await send({"type": "http.response.pathsend", "path": str(path)})
                return
            async for piece in read_whole_file(path):
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

    return app


def serve_granian(path: Path, port: int, way: str) -> None:
    """Serve from a bare ASGI app under Granian, one worker, with Portside's HTTP/1 settings, until stopped."""
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.server import Server as Granian

    from portside.serving import HTTP1_BUFFER_BYTES

    os.environ[FILE_ENV], os.environ[WAY_ENV] = str(path), way
    Granian(
        "bench.paths:bare_app_from_environment",
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        factory=True,
        http=HTTPModes.auto,
        http1_settings=HTTP1Settings(max_buffer_size=HTTP1_BUFFER_BYTES),  # as Portside's
        log_level="warning",  # type: ignore[arg-type]
    ).serve()


@dataclass
class BareServer(Server):
    """One of the bare servers, started and stopped like the registries (see :class:`Server`)."""

    way: str = SENDFILE
    file: Path = Path()

    def _command(self) -> tuple[list[str], dict[str, str]]:
        argv = [sys.executable, "-m", "bench.paths", "--serve", self.way, "--port", str(self.port)]
        return [*argv, "--file", str(self.file)], dict(os.environ)


# ---- the measurement ----


@dataclass
class WayResult:
    """Every transfer's MiB/s one way, and the CPU that server and client used per transfer."""

    speeds: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)


class Blob:
    """The bytes to move: for pushes, fresh ones each time (a new prefix), hashed untimed."""

    def __init__(self, size: int) -> None:
        self.data = bytearray(os.urandom(size))
        self.digest = sha256_digest(self.data)

    def renew(self) -> None:
        """Give the bytes a new random prefix and recompute the digest."""
        self.data[:16] = os.urandom(16)
        self.digest = sha256_digest(self.data)


def _transfer(conn: Connection, name: str, direction: str, blob: Blob) -> None:
    """One pull or push of ``blob`` through ``conn``, checked."""
    size = len(blob.data)
    if direction == PULL:
        response = conn.request("GET", f"/v2/{REPOSITORY}/blobs/{blob.digest}", discard=True)
        if response.status != 200 or response.length != size:
            raise RuntimeError(f"{name}: pull gave {response.status}, {response.length} bytes of {size}")
    elif name in (PORTSIDE, DISTRIBUTION):
        push_blob(conn, REPOSITORY, blob.data, blob.digest)
    else:
        response = conn.request("POST", UPLOAD_TARGET, OCTET, memoryview(blob.data))
        expected = (b"%d bytes" % size) if name == GRANIAN_RECEIVE else blob.digest.encode()
        if response.status != 201 or response.body != expected:
            raise RuntimeError(f"{name}: push gave {response.status} {response.body[:80]!r}, not {expected!r}")


def transfer_batch(server: Server, direction: str, blob: Blob, repeats: int, result: WayResult) -> None:
    """``repeats`` timed transfers on one connection, added to ``result``."""
    size = len(blob.data)
    with Connection("127.0.0.1", server.port) as conn:
        monitor = TreeMonitor(server.pid)
        monitor.start()
        client_cpu = 0.0
        for _ in range(repeats):
            if direction == PUSH:
                blob.renew()  # untimed, and outside the client's CPU
            client_before = CpuSnapshot.now().self_cpu
            started = time.perf_counter()
            _transfer(conn, server.name, direction, blob)
            result.speeds.append(size / (time.perf_counter() - started) / 2**20)
            client_cpu += CpuSnapshot.now().self_cpu - client_before
        result.client_cpu.append(client_cpu / repeats)
        result.server_cpu.append(monitor.stop().cpu_seconds / repeats)


def measure(direction: str, size: int, rounds: int, repeats: int, workdir: Path) -> dict[str, WayResult]:
    """Start every server of ``direction``, and move the blob through each in rotating order."""
    blob = Blob(size)
    blob_file = workdir / "blob"
    blob_file.write_bytes(blob.data)
    ways = (*BARE_WAYS[direction], PORTSIDE, DISTRIBUTION)
    servers: dict[str, Server] = {}
    try:
        for way in BARE_WAYS[direction]:
            servers[way] = BareServer(way, workdir / way, way=way, file=blob_file).start()
        for name in (PORTSIDE, DISTRIBUTION):
            servers[name] = Server(name, workdir / name).start()
            if direction == PULL:
                with Connection("127.0.0.1", servers[name].port) as conn:
                    push_blob(conn, REPOSITORY, blob.data, blob.digest)
        for server in servers.values():  # untimed: warm the page cache, the connections' paths
            transfer_batch(server, direction, blob, 1, WayResult())
        results = {name: WayResult() for name in ways}
        for round_no in range(rounds):
            for name in rotated(ways, round_no):
                transfer_batch(servers[name], direction, blob, repeats, results[name])
            log(f"{direction}: round {round_no + 1}/{rounds} done")
        return results
    finally:
        for server in servers.values():
            server.stop()


def render(direction: str, results: dict[str, WayResult], size: int, rounds: int, repeats: int) -> str:
    """A Markdown table of the results, with what was measured above it."""
    reference = statistics.median(results[DISTRIBUTION].speeds)
    what = "pulled from the page cache" if direction == PULL else "pushed, fresh bytes each time"
    lines = [
        f"One {size >> 20} MiB blob {what}, by one client: {rounds} rounds of {repeats} per server, "
        f"servers in rotating order ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC).",
        "",
        f"| {direction.capitalize()} by | MiB/s median | min\u2013max | server CPU-s each | client CPU-s each "
        "| vs Distribution |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, result in results.items():
        median = statistics.median(result.speeds)
        lines.append(
            f"| {name} | {speed_cells(result.speeds)} "
            f"| {statistics.median(result.server_cpu):.3f} | {statistics.median(result.client_cpu):.3f} "
            f"| {median / reference:.2f}\u00d7 |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Entry point: measure and print, or (``--serve``) be one of the bare servers."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("direction", nargs="?", choices=(PULL, PUSH))
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=4, help="timed transfers per server per round")
    parser.add_argument("--quick", action="store_true", help="a 4 MiB blob, 1 round of 2: checks that it works")
    parser.add_argument("--serve", choices=(*BARE_WAYS[PULL], *BARE_WAYS[PUSH]), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve = serve_granian if args.serve in GRANIAN_WAYS else serve_threads
        serve(args.file, args.port, args.serve)
        return
    if args.direction is None:
        parser.error("say pull or push")
    size, rounds, repeats = (4 << 20, 1, 2) if args.quick else (args.size_mib << 20, args.rounds, args.repeats)
    with tempfile.TemporaryDirectory(prefix="portside-paths-", dir="/var/tmp") as workdir:
        results = measure(args.direction, size, rounds, repeats, Path(workdir))
    table = render(args.direction, results, size, rounds, repeats)
    print(table)
    if not args.quick:
        log(f"saved {save_table(RESULTS_DIR, f'paths-{args.direction}', table)}")


if __name__ == "__main__":
    main()
