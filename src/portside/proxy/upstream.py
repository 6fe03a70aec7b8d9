"""Requests to an upstream registry: Basic or Docker token authentication, and failure sorting."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

import httpx

from portside.proxy.challenge import Challenge, parse_challenge
from portside.proxy.routing import Mirror

# Docker's token spec: a token without expires_in lasts 60 seconds.
DEFAULT_TOKEN_SECONDS = 60
# Renew a little early so that a token does not expire in flight.
TOKEN_MARGIN_SECONDS = 10


class UpstreamUnavailable(Exception):
    """The upstream cannot answer now: refused, timed out, 429, 5xx, or refused our credentials."""


@dataclass(frozen=True)
class CachedToken:
    """A bearer token and when to stop using it (monotonic seconds)."""

    value: str
    expires: float


def token_lifetime(body: dict[str, object]) -> float:
    """Seconds a token from a token endpoint's JSON answer may be used."""
    raw = body.get("expires_in")
    seconds = float(raw) if isinstance(raw, int | float) and raw > 0 else DEFAULT_TOKEN_SECONDS
    return max(seconds - TOKEN_MARGIN_SECONDS, 1.0)


class UpstreamClient:
    """One mirror's upstream: an ``httpx.AsyncClient`` plus its tokens, built in the app's lifespan."""

    def __init__(self, mirror: Mirror, client: httpx.AsyncClient) -> None:
        self.mirror = mirror
        self._client = client
        self._tokens: dict[str, CachedToken] = {}
        # Once the upstream asked for Basic, send it up front.
        self._basic = False

    @classmethod
    def build(cls, mirror: Mirror) -> UpstreamClient:
        """A client with the mirror's timeouts."""
        timeout = httpx.Timeout(mirror.settings.timeout_seconds)
        return cls(mirror, httpx.AsyncClient(timeout=timeout, follow_redirects=True))

    async def close(self) -> None:
        """Close pooled connections."""
        await self._client.aclose()

    def _basic_header(self) -> str | None:
        settings = self.mirror.settings
        if settings.username is None:
            return None
        password = settings.password.get_secret_value() if settings.password else ""
        raw = f"{settings.username}:{password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def _authorization(self, scope: str) -> str | None:
        cached = self._tokens.get(scope)
        if cached is not None and cached.expires > time.monotonic():
            return f"Bearer {cached.value}"
        return self._basic_header() if self._basic else None

    async def _fetch_token(self, challenge: Challenge, scope: str) -> None:
        realm = challenge.realm
        if not realm:
            raise UpstreamUnavailable("the upstream's Bearer challenge has no realm")
        params = {"scope": challenge.params.get("scope") or scope}
        if "service" in challenge.params:
            params["service"] = challenge.params["service"]
        headers = {}
        basic = self._basic_header()
        if basic is not None:
            headers["Authorization"] = basic
        try:
            # Merged, not replaced: a realm may carry a query of its own.
            response = await self._client.get(httpx.URL(realm).copy_merge_params(params), headers=headers)
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"token endpoint {realm}: {exc!r}") from exc
        if response.status_code != 200:
            raise UpstreamUnavailable(f"token endpoint {realm} answered {response.status_code}")
        body = response.json()
        token = body.get("token") or body.get("access_token")
        if not isinstance(token, str) or not token:
            raise UpstreamUnavailable(f"token endpoint {realm} sent no token")
        self._tokens[scope] = CachedToken(token, time.monotonic() + token_lifetime(body))

    async def _send_once(self, method: str, url: str, headers: dict[str, str], stream: bool) -> httpx.Response:
        request = self._client.build_request(method, url, headers=headers)
        try:
            return await self._client.send(request, stream=stream)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            # A pooled keep-alive connection the upstream had already closed: one fresh try (GET and
            # HEAD are idempotent). Refused connections and timeouts are not retried.
            pass
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"{method} {url}: {exc!r}") from exc
        try:
            return await self._client.send(self._client.build_request(method, url, headers=headers), stream=stream)
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"{method} {url}: {exc!r}") from exc

    async def send(
        self, method: str, repository: str, path: str, headers: dict[str, str] | None = None, stream: bool = False
    ) -> httpx.Response:
        """``method /v2/<repository>/<path>`` upstream, authenticating as its challenge asks.

        Returns any answer below 500 except 401 and 429 (the caller reads 200 and 404); raises
        :class:`UpstreamUnavailable` for the rest and for network failures. A streamed response
        must be closed by the caller.
        """
        scope = f"repository:{repository}:pull"
        url = f"{self.mirror.upstream}/v2/{repository}/{path}"
        for attempt in range(2):
            request_headers = dict(headers or {})
            authorization = self._authorization(scope)
            if authorization is not None:
                request_headers["Authorization"] = authorization
            response = await self._send_once(method, url, request_headers, stream)
            status = response.status_code
            if status == 401 and attempt == 0:
                await response.aclose()
                challenge = parse_challenge(response.headers.get("www-authenticate"))
                if challenge is None or challenge.scheme not in ("bearer", "basic"):
                    raise UpstreamUnavailable(f"{method} {url}: 401 without a usable challenge")
                if challenge.scheme == "basic":
                    if self._basic_header() is None:
                        raise UpstreamUnavailable(f"{method} {url}: the upstream wants credentials; none configured")
                    self._basic = True
                else:
                    self._tokens.pop(scope, None)
                    await self._fetch_token(challenge, scope)
                continue
            if status in (401, 403, 429) or status >= 500:
                await response.aclose()
                raise UpstreamUnavailable(f"{method} {url}: upstream answered {status}")
            return response
        raise AssertionError("unreachable")  # pragma: no cover
