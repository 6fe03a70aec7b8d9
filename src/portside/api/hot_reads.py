"""The hottest reads answered straight from the read cache: manifest GET/HEAD and blob HEAD.

Clients ask for the same manifests and blobs over and over (every ``docker pull`` of a tag, every
layer check before a push). When the answer is a 200 built from records the store already holds
in memory (see :mod:`portside.metadata.read_cache`), this module sends it without building a
framework request and response. It answers only that case, with the same status, headers, body
and side effects (audit, pull counts, pull events) as the full handler in :mod:`portside.api.v2`;
anything else (a cache miss, an error, a ``Range``, Basic auth, a token that does not grant the
pull, rate limits) returns ``False`` and the full handler answers.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Scope, Send

from portside.api.access import Access, OpenAccess, TokenAccess
from portside.api.events import pull_event
from portside.api.routes import Endpoint, match_v2_path
from portside.auth.tokens import InvalidToken
from portside.notifications.events import EventAction
from portside.oci import media_types as mt
from portside.registry.services import Registry

_API_VERSION = (b"docker-distribution-api-version", b"registry/2.0")
_BLOB_HEADERS = ((b"accept-ranges", b"bytes"), (b"cache-control", b"max-age=31536000"))
_OCTET_STREAM = b"application/octet-stream"


class HotReads:
    """Answers cache hits of manifest GET/HEAD and blob HEAD; ``answer`` says whether it did."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def _access(self, authorization: bytes | None, repository: str) -> Access | None:
        """Who may pull ``repository`` without any I/O, or None to leave the request to the full handler."""
        gate = self.registry.gate
        if gate.mode == "none":
            return OpenAccess()
        if gate.mode != "token" or authorization is None or authorization[:7].lower() != b"bearer ":
            return None
        try:
            access = TokenAccess(gate.issuer.verify(authorization[7:].decode("latin-1").strip()), gate.accounts)
        except InvalidToken:
            return None
        return access if access.grants(repository, "pull") else None

    async def answer(self, scope: Scope, send: Send) -> bool:
        """Send the answer if it is a cached 200; False (nothing sent) otherwise."""
        method = scope["method"]
        if method not in ("GET", "HEAD") or self.registry.pull_limits is not None:
            return False
        match = match_v2_path(scope["path"])
        if match is None:
            return False
        endpoint = match.route.endpoint
        if endpoint is not Endpoint.MANIFEST and not (endpoint is Endpoint.BLOB and method == "HEAD"):
            return False
        authorization: bytes | None = None
        accept: list[str] = []
        for key, value in scope["headers"]:
            if key == b"authorization":
                authorization = value
            elif key == b"accept":
                accept.append(value.decode("latin-1"))
            elif key == b"range":
                return False
        access = self._access(authorization, match.name)
        if access is None:
            return False
        if endpoint is Endpoint.BLOB:
            return await self._blob_head(scope, send, access, match.name, match.reference)
        return await self._manifest(scope, send, access, match.name, match.reference, accept)

    async def _blob_head(self, scope: Scope, send: Send, access: Access, repository: str, digest: str) -> bool:
        cache = self.registry.store.read_cache
        record = None if cache is None else cache.blob(repository, digest)
        if record is None:
            return False
        scope.setdefault("state", {})["access"] = access
        encoded = digest.encode("latin-1")
        headers = [
            _API_VERSION,
            (b"docker-content-digest", encoded),
            (b"etag", b'"' + encoded + b'"'),
            *_BLOB_HEADERS,
            (b"content-length", str(record.size).encode()),
            (b"content-type", _OCTET_STREAM),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return True

    async def _manifest(
        self, scope: Scope, send: Send, access: Access, repository: str, reference: str, accept: list[str]
    ) -> bool:
        cache = self.registry.store.read_cache
        record = None if cache is None else cache.manifest(repository, reference)
        if record is None:
            return False
        by_tag = not reference.startswith(("sha256:", "sha512:"))
        if by_tag and not mt.accepts(mt.parse_accept(accept), record.media_type):
            return False
        scope.setdefault("state", {})["access"] = access
        encoded = record.digest.encode("latin-1")
        headers = [
            _API_VERSION,
            (b"docker-content-digest", encoded),
            (b"etag", b'"' + encoded + b'"'),
            (b"content-length", str(record.size).encode()),
            (b"content-type", record.media_type.encode("latin-1")),
        ]
        if scope["method"] == "HEAD":
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return True
        registry = self.registry
        client = scope.get("client")
        address = client[0] if client else None
        await registry.audit.record(access.actor, "pull", f"{repository}:{reference}", address, digest=record.digest)
        registry.pulls.record(repository, record.digest)
        registry.repository_info.record_pull(repository)
        await registry.notifier.emit_buffered_if_wanted(
            repository, EventAction.PULL, lambda: pull_event(Request(scope), repository, reference, record)
        )
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": record.content})
        return True
