"""A small, fast HTTP/1.1 client over one keep-alive socket, for load generation.

Bodies are sent straight from the caller's buffer (``sendall`` on a memoryview: no copy) and
large response bodies are received with ``recv_into`` into one preallocated scratch buffer,
so the client spends its time in the kernel, not in Python. Every socket operation has a
timeout; any protocol surprise raises :class:`HttpError`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

#: A callback that sees each received piece of a streamed body (valid only during the call).
BodySink = Callable[[memoryview], None]

SCRATCH_BYTES = 4 << 20
RECV_BYTES = 256 << 10
# Bodies up to this size are glued to the request head and sent in one syscall.
INLINE_BODY = 64 << 10


class HttpError(RuntimeError):
    """The server closed, timed out or answered something that is not HTTP/1.1."""


@dataclass
class Response:
    """Status, headers (lower-case names; a repeated header keeps its last value), body and its length."""

    status: int
    headers: dict[str, str]
    body: bytes = b""
    length: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """One header's value, or ``None``."""
        return self.headers.get(name.lower())

    def location(self) -> str:
        """The ``Location`` header as a request target (path and query), whether absolute or not."""
        value = self.headers.get("location")
        if not value:
            raise HttpError(f"status {self.status} without a Location header")
        return request_target(value)


def request_target(url: str) -> str:
    """``/path?query`` of an absolute or relative URL."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class Connection:
    """One persistent HTTP/1.1 connection to ``host:port``; not thread-safe (one per thread or process).

    ``headers`` go with every request (an ``Authorization`` header, for token-auth runs).
    """

    def __init__(self, host: str, port: int, timeout: float = 120.0, headers: Mapping[str, str] | None = None) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        # Encoded once here, not per request.
        self._fixed_lines = [f"{name}: {value}".encode("latin-1") for name, value in (headers or {}).items()]
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._scratch = bytearray(SCRATCH_BYTES)
        self._scratch_view = memoryview(self._scratch)
        self._host_header = f"{host}:{port}".encode()
        self.requests = 0

    # connection management

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._buf.clear()
        return sock

    def close(self) -> None:
        """Close the socket (a later request reconnects)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buf.clear()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # requests

    def request(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | bytearray | memoryview | None = None,
        *,
        sink: BodySink | None = None,
        discard: bool = False,
    ) -> Response:
        """Send one request and read the whole response.

        The response body is kept in ``Response.body`` unless ``sink`` is given (each piece is
        passed to it) or ``discard`` is true (only counted). A reused connection that turns out
        to be closed before any response byte arrives is reopened and the request sent once more.
        """
        reused = self._sock is not None
        try:
            return self._exchange(method, target, headers, body, sink, discard)
        except (ConnectionResetError, BrokenPipeError, _ClosedBeforeResponse) as exc:
            self.close()
            if not reused:
                raise HttpError(f"{method} {target}: connection failed: {exc}") from exc
            return self._exchange(method, target, headers, body, sink, discard)
        except TimeoutError as exc:
            self.close()
            raise HttpError(f"{method} {target}: timed out after {self.timeout} s") from exc
        except OSError as exc:
            self.close()
            raise HttpError(f"{method} {target}: {exc}") from exc

    def _exchange(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str] | None,
        body: bytes | bytearray | memoryview | None,
        sink: BodySink | None,
        discard: bool,
    ) -> Response:
        sock = self._sock or self._connect()
        size = 0 if body is None else len(body)
        lines = [f"{method} {target} HTTP/1.1".encode(), b"Host: " + self._host_header, *self._fixed_lines]
        has_length = False
        for name, value in (headers or {}).items():
            has_length = has_length or name.lower() == "content-length"
            lines.append(f"{name}: {value}".encode("latin-1"))
        if not has_length and (body is not None or method in ("POST", "PUT", "PATCH")):
            lines.append(b"Content-Length: %d" % size)
        head = b"\r\n".join(lines) + b"\r\n\r\n"
        if body is None or size == 0:
            sock.sendall(head)
        elif size <= INLINE_BODY:
            sock.sendall(head + bytes(body))
        else:
            sock.sendall(head)
            sock.sendall(body if isinstance(body, memoryview) else memoryview(body))
        self.requests += 1
        return self._read_response(method, sink, discard)

    def _fill(self) -> int:
        assert self._sock is not None
        chunk = self._sock.recv(RECV_BYTES)
        self._buf += chunk
        return len(chunk)

    def _read_head(self) -> tuple[int, dict[str, str]]:
        while True:
            end = self._buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self._buf) > 1 << 20:
                raise HttpError("response head larger than 1 MiB")
            if not self._fill():
                if not self._buf:
                    raise _ClosedBeforeResponse("connection closed before the response")
                raise HttpError("connection closed inside the response head")
        block = bytes(self._buf[:end]).decode("latin-1")
        del self._buf[: end + 4]
        status_line, *header_lines = block.split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise HttpError(f"not an HTTP/1.x status line: {status_line!r}")
        headers: dict[str, str] = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        return int(parts[1]), headers

    def _read_response(self, method: str, sink: BodySink | None, discard: bool) -> Response:
        status, headers = self._read_head()
        while 100 <= status < 200:  # 100 Continue and friends: the real answer follows
            status, headers = self._read_head()
        response = Response(status, headers)
        collected: list[bytes] = []

        def keep(piece: memoryview) -> None:
            collected.append(bytes(piece))

        consumer: BodySink | None = sink if sink is not None else (None if discard else keep)
        if method == "HEAD" or status in (204, 304):
            pass
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            response.length = self._read_chunked(consumer)
        elif "content-length" in headers:
            response.length = self._read_exact(int(headers["content-length"]), consumer)
        else:
            response.length = self._read_to_close(consumer)
            self.close()
        if collected:
            response.body = b"".join(collected)
        if headers.get("connection", "").lower() == "close":
            self.close()
        return response

    def _read_exact(self, length: int, consumer: BodySink | None) -> int:
        remaining = length
        if self._buf:
            take = min(remaining, len(self._buf))
            if consumer is not None:
                consumer(memoryview(self._buf)[:take])
            del self._buf[:take]
            remaining -= take
        assert self._sock is not None
        recv_into, scratch = self._sock.recv_into, self._scratch_view
        while remaining:
            received = recv_into(scratch, min(remaining, SCRATCH_BYTES))
            if not received:
                raise HttpError(f"connection closed with {remaining} of {length} body bytes missing")
            if consumer is not None:
                consumer(scratch[:received])
            remaining -= received
        return length

    def _read_line(self) -> bytes:
        while True:
            end = self._buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[: end + 2]
                return line
            if not self._fill():
                raise HttpError("connection closed inside a chunked body")

    def _read_chunked(self, consumer: BodySink | None) -> int:
        total = 0
        while True:
            size = int(self._read_line().split(b";", 1)[0], 16)
            if size == 0:
                while self._read_line():  # trailers, then the blank line
                    pass
                return total
            total += self._read_exact(size, consumer)
            if self._read_line():
                raise HttpError("chunk not followed by CRLF")

    def _read_to_close(self, consumer: BodySink | None) -> int:
        total = 0
        while True:
            if self._buf:
                if consumer is not None:
                    consumer(memoryview(self._buf))
                total += len(self._buf)
                self._buf.clear()
            if not self._fill():
                return total


class _ClosedBeforeResponse(ConnectionError):
    """The peer closed an idle keep-alive connection; safe to retry on a new one."""
