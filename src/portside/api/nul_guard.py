"""Refuses a request whose URL holds a NUL character, before any handler sees it.

No name, tag, cursor or filter can hold one, and PostgreSQL refuses it in any text it is given,
so a NUL that reached a query would end in a ``500``. One check here answers ``400
REQUEST_INVALID`` for every route instead (registry API, management API, web UI).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from portside.api.responses import error_response
from portside.oci.errors import ErrorKind, RegistryError

# As the query string arrives: percent-encoded (the path arrives decoded).
_ENCODED_NUL = b"%00"


class NulGuard:
    """ASGI middleware: ``400`` for a NUL in the path or the query string."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, unless its URL holds a NUL."""
        if scope["type"] == "http" and ("\x00" in scope["path"] or _ENCODED_NUL in scope["query_string"]):
            error = RegistryError(ErrorKind.REQUEST_INVALID, "the URL holds a NUL character")
            await error_response(error, scope["method"])(scope, receive, send)
            return
        await self.app(scope, receive, send)
