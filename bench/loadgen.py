"""Fixed-concurrency request loops for a fixed time: ``wrk`` and a multi-process Python client.

``wrk`` is the faster generator, but its HTTP parser waits for a body after a ``HEAD``
response that carries a non-zero ``Content-Length`` (it never learns the request was a
HEAD), so every HEAD stalls until the timeout. ``HEAD`` scenarios therefore use
:class:`ClosedLoop`: a few forked processes, each driving its share of the connections
with ``epoll`` and one prebuilt request, timing every request.
"""

from __future__ import annotations

import json
import re
import select
import shutil
import socket
import subprocess
import tempfile
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.parallel import ParallelJob, ParallelRun

WRK = "wrk"
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)

WRK_SCRIPT = """\
wrk.method = "{method}"
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {{"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


class LoadError(RuntimeError):
    """The load generator failed or saw errors (non-2xx answers, timeouts, resets)."""


@dataclass
class LoadResult:
    """Requests completed in ``seconds`` and latency percentiles in milliseconds."""

    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    tool: str
    raw: str = ""
    worker_cpu: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def check(self) -> None:
        """Raise :class:`LoadError` if any request failed: a fast error page must not count as throughput."""
        if self.errors:
            raise LoadError(f"{self.tool}: {self.requests} good requests but errors {self.errors}")
        if self.requests == 0:
            raise LoadError(f"{self.tool}: no request completed")


def wrk_available() -> bool:
    """Whether ``wrk`` is on PATH."""
    return shutil.which(WRK) is not None


class WrkRun:
    """``wrk -t threads -c connections -d duration --latency`` with a Lua ``done`` that prints JSON."""

    def __init__(
        self, url: str, method: str, headers: dict[str, str], connections: int, duration: float, threads: int = 2
    ) -> None:
        if not wrk_available():
            raise LoadError("wrk is not installed: apt-get install -y wrk")
        header_lines = "\n".join(f'wrk.headers["{name}"] = "{value}"' for name, value in headers.items())
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False, prefix="bench-wrk-") as script:
            script.write(WRK_SCRIPT.format(method=method, headers=header_lines))
        self.script = Path(script.name)
        self.duration = max(1, round(duration))
        self.tool = f"wrk -t{threads} -c{connections} -d{self.duration}s"
        self.argv = [
            WRK,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{self.duration}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(self.script),
            url,
        ]

    def run(self) -> LoadResult:
        """Run wrk to completion and parse its JSON line."""
        try:
            done = subprocess.run(self.argv, capture_output=True, text=True, timeout=self.duration + 60, check=False)
        except subprocess.TimeoutExpired as exc:
            raise LoadError(f"wrk did not finish within {self.duration + 60} s") from exc
        finally:
            self.script.unlink(missing_ok=True)
        line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
        if done.returncode != 0 or line is None:
            raise LoadError(f"wrk failed (status {done.returncode}):\n{done.stdout}\n{done.stderr}")
        data: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
        errors = {key: int(data[key]) for key in ("connect", "read", "write", "status", "timeout") if data[key]}
        return LoadResult(
            requests=int(data["requests"]),
            seconds=data["duration_us"] / 1e6,
            p50_ms=data["p50_us"] / 1000,
            p90_ms=data["p90_us"] / 1000,
            p99_ms=data["p99_us"] / 1000,
            max_ms=data["max_us"] / 1000,
            errors=errors,
            tool=self.tool,
            raw=done.stdout,
        )


@dataclass
class _Conn:
    sock: socket.socket
    buf: bytearray
    sent_at: int


def _closed_loop(request: bytes, head: bool, socks: list[socket.socket], duration: float) -> dict[str, Any]:
    """Keep one request in flight on every socket until ``duration`` passes; time each one."""
    poller = select.epoll()
    conns: dict[int, _Conn] = {}
    latencies = array("q")
    statuses: dict[int, int] = {}
    now = time.perf_counter_ns
    deadline = now() + int(duration * 1e9)
    for sock in socks:
        sock.setblocking(False)
        conns[sock.fileno()] = _Conn(sock, bytearray(), now())
        sock.send(request)
        poller.register(sock.fileno(), select.EPOLLIN)
    active = len(conns)
    while active:
        for fd, _ in poller.poll(1.0):
            conn = conns[fd]
            chunk = conn.sock.recv(262144)
            if not chunk:
                raise ConnectionError("the server closed a connection")
            buf = conn.buf
            buf += chunk
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                continue
            need = end + 4
            if not head:
                found = _CONTENT_LENGTH.search(buf, 0, end + 2)
                need += int(found.group(1)) if found else 0
            if len(buf) < need:
                continue
            stamp = now()
            status = int(buf[9:12])
            if 200 <= status < 300:
                latencies.append(stamp - conn.sent_at)
            else:
                statuses[status] = statuses.get(status, 0) + 1
            del buf[:need]
            if stamp >= deadline:
                poller.unregister(fd)
                active -= 1
                continue
            conn.sent_at = stamp
            conn.sock.send(request)
        if now() > deadline + 15_000_000_000:
            raise TimeoutError("responses still outstanding 15 s after the end")
    poller.close()
    for conn in conns.values():
        conn.sock.close()
    return {"latencies": latencies.tobytes(), "statuses": statuses}


class ClosedLoop:
    """``connections`` keep-alive connections spread over ``processes`` forked workers, for ``duration``.

    Construction forks the workers and opens the connections (outside any timing); :meth:`run`
    starts them all at once and merges their latencies.
    """

    def __init__(
        self,
        host: str,
        port: int,
        method: str,
        target: str,
        headers: dict[str, str],
        connections: int,
        duration: float,
        processes: int = 2,
    ) -> None:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}", *(f"{k}: {v}" for k, v in headers.items())]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        share = [connections // processes + (1 if i < connections % processes else 0) for i in range(processes)]
        head = method == "HEAD"
        self.tool = f"python epoll, {processes} processes, -c{connections}"

        def prepare(index: int) -> list[socket.socket]:
            socks = []
            for _ in range(share[index]):
                sock = socket.create_connection((host, port), timeout=10)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                socks.append(sock)
            return socks

        def work(index: int, socks: list[socket.socket]) -> dict[str, Any]:
            return _closed_loop(request, head, socks, duration)

        self.job = ParallelJob(processes, prepare, work, timeout=duration + 60)

    def run(self) -> LoadResult:
        """Release the workers and wait for them; call :meth:`close` after the measured window."""
        return self._merge(self.job.run())

    def close(self) -> None:
        """Reap the workers (their CPU was already reported by themselves)."""
        self.job.close()

    def _merge(self, run: ParallelRun) -> LoadResult:
        latencies = array("q")
        errors: dict[str, int] = {}
        for result in run.results:
            latencies.frombytes(result.payload["latencies"])
            for status, count in result.payload["statuses"].items():
                errors[f"status {status}"] = errors.get(f"status {status}", 0) + count
        ordered = sorted(latencies)
        if not ordered:
            raise LoadError(f"{self.tool}: no successful request; errors {errors}")

        def pct(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] / 1e6

        return LoadResult(
            requests=len(ordered),
            seconds=run.wall_seconds,
            p50_ms=pct(50),
            p90_ms=pct(90),
            p99_ms=pct(99),
            max_ms=ordered[-1] / 1e6,
            errors=errors,
            tool=self.tool,
            worker_cpu=run.worker_cpu_seconds,
        )
