"""One ASGI middleware around the whole app: proxy headers, request id, metrics and the request log.

It is the outermost layer, so everything inside (handlers, the token realm, the management
API) sees the scheme, host and client address a trusted proxy reported, and every log line
written while the request runs carries its id.
"""

from __future__ import annotations

import os
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portside.api.routes import match_v2_path
from portside.observability.forwarded import TrustedProxies, forwarded_view
from portside.observability.logs import REQUEST_ID, AccessLog, request_id_from
from portside.observability.metrics import Metrics

_REQUEST_ID_BYTES = b"x-request-id"
_FORWARDING_HEADER_BYTES = frozenset({b"forwarded", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"})


def route_template(scope: Scope) -> str:
    """A bounded label for the request's route: the route table's template, never the raw path."""
    path: str = scope.get("path", "")
    if path == "/v2" or path.startswith("/v2/"):
        match = match_v2_path(path)
        return match.route.template if match else "/v2/<unknown>"
    route = scope.get("route")
    template = getattr(route, "path", None)
    if isinstance(template, str):
        # A mount (the management API) is one label for everything under it.
        return template + "/*" if getattr(route, "routes", None) is not None else template
    return "<unmatched>"


def _caller(scope: Scope) -> str | None:
    access = scope.get("state", {}).get("access")
    actor = getattr(access, "actor", None)
    return actor if isinstance(actor, str) else None


class ObservabilityMiddleware:
    """Applies trusted proxy headers, sets the request id, counts and logs each HTTP request."""

    def __init__(self, app: ASGIApp, metrics: Metrics, trusted: TrustedProxies) -> None:
        self.app = app
        self.metrics = metrics
        self.trusted = trusted
        self.access_log = AccessLog()
        # Which worker answered: the app is built in the worker process.
        self.pid = os.getpid()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one connection event."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming_id: str | None = None
        forwarded = False
        # Only two kinds of header matter here; most requests carry neither.
        for key, value in scope["headers"]:
            if key == _REQUEST_ID_BYTES:
                incoming_id = value.decode("latin-1")
            elif key in _FORWARDING_HEADER_BYTES:
                forwarded = True
        client = scope.get("client")
        if forwarded and client and self.trusted.trusts(client[0]):
            headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
            scope = self._apply_forwarded(scope, headers, client[0])
        request_id = request_id_from(incoming_id)
        token = REQUEST_ID.set(request_id)
        header_value = request_id.encode("latin-1")
        state: dict[str, int] = {"status": 500, "received": 0, "sent": 0, "announced": 0}

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
            return message

        async def tagging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                headers = message.get("headers", [])
                message["headers"] = [*headers, (_REQUEST_ID_BYTES, header_value)]
                announced = next((value for key, value in headers if key == b"content-length"), b"")
                state["announced"] = int(announced) if announced.isdigit() else 0
            elif message["type"] == "http.response.body":
                state["sent"] += len(message.get("body", b""))
            elif message["type"] == "http.response.pathsend":
                # The server sends the file itself: count what the headers announced.
                state["sent"] += state["announced"]
            await send(message)

        self.metrics.in_progress.inc()
        try:
            await self.app(scope, counting_receive, tagging_send)
        finally:
            self.metrics.in_progress.dec()
            duration = time.perf_counter() - started
            route = route_template(scope)
            method = scope["method"]
            self.metrics.observe_request(method, route, state["status"], duration, state["received"], state["sent"])
            if self.access_log.enabled():
                self.access_log.write(
                    {
                        "method": method,
                        "route": route,
                        "path": scope["path"],
                        "status": state["status"],
                        "bytes_in": state["received"],
                        "bytes_out": state["sent"],
                        "duration_ms": round(duration * 1000, 3),
                        "client": scope["client"][0] if scope.get("client") else None,
                        "user": _caller(scope),
                        "pid": self.pid,
                    }
                )
            REQUEST_ID.reset(token)

    def _apply_forwarded(self, scope: Scope, headers: dict[str, str], peer: str) -> Scope:
        """A copy of ``scope`` with the scheme, Host and client the trusted proxy reported."""
        view = forwarded_view(headers, peer, self.trusted)
        if view.scheme is None and view.host is None and view.client is None:
            return scope
        scope = dict(scope)
        if view.scheme is not None:
            scope["scheme"] = view.scheme
        if view.host is not None:
            raw: list[Any] = [(k, v) for k, v in scope["headers"] if k != b"host"]
            raw.append((b"host", view.host.encode("latin-1")))
            scope["headers"] = raw
        if view.client is not None:
            scope["client"] = (view.client, 0)
        return scope
