"""A webhook receiver on loopback: a real HTTP server in a thread that records what it is sent.

It can answer ``500`` to the first N requests (or to all of them until told otherwise), so
tests see retries, backoff and the delivery log, and it checks each request's HMAC signature.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from portside.notifications.events import SIGNATURE_HEADER, verify_signature


@dataclass
class Received:
    """One request the receiver got."""

    at: float
    headers: dict[str, str]
    body: bytes
    answered: int
    signature_ok: bool

    @property
    def events(self) -> list[dict[str, Any]]:
        """The envelope's events."""
        events: list[dict[str, Any]] = json.loads(self.body)["events"]
        return events


@dataclass
class Receiver:
    """Records POSTs; answers 500 to the first ``fail_first`` (and to all while ``failing``)."""

    secret: str = ""
    fail_first: int = 0
    failing: bool = False
    port: int = 0
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """Where to send events."""
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        """Listen on 127.0.0.1 (on ``port``, or a free one)."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    fail = receiver.failing or receiver.fail_first > 0
                    if receiver.fail_first > 0:
                        receiver.fail_first -= 1
                    status = 500 if fail else 200
                    receiver.received.append(
                        Received(
                            at=time.monotonic(),
                            headers={k.lower(): v for k, v in self.headers.items()},
                            body=body,
                            answered=status,
                            signature_ok=verify_signature(receiver.secret, body, self.headers.get(SIGNATURE_HEADER)),
                        )
                    )
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"no")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def snapshot(self) -> list[Received]:
        """What was received so far."""
        with self._lock:
            return list(self.received)

    def accepted_events(self) -> list[dict[str, Any]]:
        """Events of the requests answered 200."""
        return [event for r in self.snapshot() if r.answered == 200 for event in r.events]


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll until ``condition()`` holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
