"""A loopback HTTP relay put between a registry and its upstream, to watch and disturb their talk.

It forwards every request to the target and records ``(method, path)``. A test can make it
answer a fixed status (``429`` say) instead of forwarding, or hold the body of one response
after its first chunk until the test releases it (a slow upstream, for streaming tests).
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
CHUNK = 64 * 1024


@dataclass
class Relay:
    """A relay to ``target`` (``http://host:port``) listening on an ephemeral loopback port."""

    target: str
    # (method, path, status) of every request, in order.
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    # When set, every request is answered with this status and a JSON error, never forwarded.
    fail_status: int | None = None
    # A path suffix whose response body stops after the first chunk until ``release`` is set.
    hold_suffix: str | None = None
    # A path suffix whose GET response body is delivered with its last byte changed.
    tamper_suffix: str | None = None
    release: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        """The relay's base URL."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def count(self, method: str, path_suffix: str = "") -> int:
        """How many ``method`` requests whose path ends with ``path_suffix`` were answered, ``401``
        challenges (the first half of the token dance) aside."""
        with self._lock:
            return sum(1 for m, p, s in self.requests if m == method and p.endswith(path_suffix) and s != 401)

    def _record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.requests.append((method, path.split("?", 1)[0], status))

    def start(self) -> Relay:
        """Listen and serve in a background thread."""
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if relay.fail_status is not None:
                    relay._record(self.command, self.path, relay.fail_status)
                    payload = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}'
                    self.send_response(relay.fail_status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.send_header("Retry-After", "60")
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
                target = urlsplit(relay.target)
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                relay._record(self.command, self.path, response.status)
                data_length = response.getheader("Content-Length")
                hold = relay.hold_suffix is not None and self.path.split("?", 1)[0].endswith(relay.hold_suffix)
                tamper = (
                    relay.tamper_suffix is not None
                    and self.command == "GET"
                    and self.path.split("?", 1)[0].endswith(relay.tamper_suffix)
                )
                if (data_length is None or tamper) and self.command != "HEAD":
                    content = response.read()
                    if tamper and content:
                        content = content[:-1] + bytes([content[-1] ^ 0x01])
                    data_length = str(len(content))
                    chunks = [content]
                else:
                    chunks = None
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                if data_length is not None:
                    self.send_header("Content-Length", data_length)
                self.end_headers()
                if self.command != "HEAD":
                    first = True
                    source = iter(chunks) if chunks is not None else iter(lambda: response.read(CHUNK), b"")
                    for chunk in source:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        if hold and first:
                            relay.held.set()
                            relay.release.wait(120)
                        first = False
                upstream.close()

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
