"""Accounts, credentials and tokens for access-control tests against a real server.

* :class:`AuthServer` is a :class:`~tests.support.server.ServerProcess` that counts a
  ``401`` from ``GET /v2/`` as "up" (with auth on, an anonymous ping is refused).
* :class:`PortsideCli` runs the ``portside`` account commands (``user``, ``org``,
  ``robot``, ``token``, ``grant``, ``repo``) against a server's data dir, in process
  through Typer's runner (a fresh interpreter per command costs seconds), or as a
  real subprocess with ``subprocess=True``.
* :class:`Caller` makes registry requests as one principal the way real clients do:
  Basic credentials on every request, or, in token mode, the unauthenticated request
  first, then a token from the challenge's realm for the challenge's scope, then the
  request again with the token.
* Small pure helpers: :func:`parse_challenge`, :func:`unverified_claims`,
  :func:`forge_token`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from typer.testing import CliRunner

from portside.cli import cli
from portside.metadata.accounts_store import AccountStore
from portside.metadata.records import AuditEvent
from portside.metadata.store import MetadataStore
from tests.support.protocol import OCI_MANIFEST, image_manifest, sha256
from tests.support.server import ServerProcess

SERVICE = "portside"


# The shared ServerProcess counts a 401 from /v2/ as up, so servers with auth on need nothing more.
AuthServer = ServerProcess


def auth_env(mode: str, **settings: object) -> dict[str, str]:
    """``PORTSIDE_AUTH=mode`` plus ``PORTSIDE_<NAME>`` for each keyword."""
    env = {"PORTSIDE_AUTH": mode}
    env.update({f"PORTSIDE_{name.upper()}": str(value) for name, value in settings.items()})
    return env


class CliFailed(AssertionError):
    """A ``portside`` command exited non-zero."""


@dataclass
class PortsideCli:
    """The ``portside`` account commands, pointed at one server's data dir and environment."""

    server: ServerProcess

    def run(self, *args: str, subprocess_: bool = False, check: bool = True) -> str:
        """Run ``portside ARGS --data-dir D``; return its output (stdout and stderr)."""
        argv = [*args, "--data-dir", str(self.server.data_dir)]
        env = {key: value for key, value in self.server.env.items() if key != "PORTSIDE_AUTH"}
        if subprocess_:
            done = subprocess.run(
                [sys.executable, "-m", "portside", *argv],
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            code, output = done.returncode, done.stdout + done.stderr
        else:
            result = CliRunner().invoke(cli, argv, env=env, catch_exceptions=False)
            code, output = result.exit_code, result.output
        if check and code != 0:
            raise CliFailed(f"portside {' '.join(argv)} exited with {code}:\n{output}")
        return output.strip()

    def create_user(self, name: str, password: str, *, admin: bool = False) -> None:
        """``portside user create NAME --password P [--admin]``."""
        self.run("user", "create", name, "--password", password, *(["--admin"] if admin else []))

    def create_org(self, organization: str, owner: str) -> None:
        """``portside org create ORG OWNER``."""
        self.run("org", "create", organization, owner)

    def add_member(self, organization: str, username: str, *, owner: bool = False) -> None:
        """``portside org member ORG USER [--owner]``."""
        self.run("org", "member", organization, username, *(["--owner"] if owner else []))

    def team(self, organization: str, team: str, *members: str) -> None:
        """``portside org team ORG TEAM --add U ...``."""
        self.run("org", "team", organization, team, *[arg for user in members for arg in ("--add", user)])

    def create_robot(self, namespace: str, name: str) -> str:
        """``portside robot create NS NAME``; returns ``NS+NAME``."""
        self.run("robot", "create", namespace, name)
        return f"{namespace}+{name}"

    def create_token(self, owner: str, role: str = "admin", expires_days: int | None = None) -> str:
        """``portside token create OWNER --role R``; returns the secret it prints."""
        extra = ["--expires-days", str(expires_days)] if expires_days is not None else []
        output = self.run("token", "create", owner, "--role", role, *extra)
        secret = output.splitlines()[-1].strip()
        assert secret.startswith("pst_"), output
        return secret

    def grant(self, subject: str, target: str, role: str) -> None:
        """``portside grant set SUBJECT TARGET ROLE``."""
        self.run("grant", "set", subject, target, role)

    def set_public(self, repository: str, public: bool = True) -> None:
        """``portside repo set NAME --public|--private``."""
        self.run("repo", "set", repository, "--public" if public else "--private")


def audit_events(server: ServerProcess, **filters: Any) -> list[AuditEvent]:
    """The server's audit log (newest first), read straight from its SQLite database."""

    async def query() -> list[AuditEvent]:
        database = server.env.get("PORTSIDE_DATABASE_URL") or (
            f"sqlite+aiosqlite:///{(server.data_dir / 'portside.db').resolve()}"
        )
        store = MetadataStore(database)
        try:
            return await AccountStore(store).query_events(**filters)
        finally:
            await store.close()

    return asyncio.run(query())


# Challenges and tokens

_PARAM_RE = re.compile(r'([a-zA-Z_]+)="([^"]*)"')


def parse_challenge(header: str | None) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="..."`` -> ``("bearer", {"realm": ..., ...})``."""
    assert header, "no WWW-Authenticate header"
    scheme, _, rest = header.partition(" ")
    return scheme.lower(), dict(_PARAM_RE.findall(rest))


def basic_header(username: str, password: str) -> str:
    """An ``Authorization: Basic`` value."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unverified_claims(token: str) -> dict[str, Any]:
    """A JWT's payload, without checking anything."""
    claims: dict[str, Any] = json.loads(_b64decode(token.split(".")[1]))
    return claims


def unverified_header(token: str) -> dict[str, Any]:
    """A JWT's header, without checking anything."""
    header: dict[str, Any] = json.loads(_b64decode(token.split(".")[0]))
    return header


def granted_access(token: str) -> dict[str, set[str]]:
    """``{"repository:NAME": {"pull", ...}}`` from a token's ``access`` claim."""
    granted: dict[str, set[str]] = {}
    for entry in unverified_claims(token).get("access") or []:
        granted.setdefault(f"{entry['type']}:{entry['name']}", set()).update(entry["actions"])
    return granted


def forge_token(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A JWT from raw parts: for ``alg: none``, tampered payloads and the like."""
    return ".".join(
        [
            _b64encode(json.dumps(header, separators=(",", ":")).encode()),
            _b64encode(json.dumps(claims, separators=(",", ":")).encode()),
            _b64encode(signature),
        ]
    )


def hs256_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """A JWT signed with HMAC-SHA256 under ``secret`` (the RS/HS key-confusion attack)."""
    signing_input = ".".join(
        [
            _b64encode(json.dumps(header, separators=(",", ":")).encode()),
            _b64encode(json.dumps(claims, separators=(",", ":")).encode()),
        ]
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64encode(signature)}"


def replace_payload(token: str, claims: dict[str, Any]) -> str:
    """``token`` with its payload replaced and its original signature kept."""
    header, _, signature = token.split(".")
    return f"{header}.{_b64encode(json.dumps(claims, separators=(',', ':')).encode())}.{signature}"


def get_token(
    base_url: str,
    scopes: Iterable[str] = (),
    credentials: tuple[str, str] | None = None,
    *,
    service: str = SERVICE,
    realm: str | None = None,
) -> httpx.Response:
    """``GET /token?service=...&scope=...`` (anonymous without ``credentials``)."""
    params: list[tuple[str, str | int | float | bool | None]] = [
        ("service", service),
        *(("scope", scope) for scope in scopes),
    ]
    headers = {"Authorization": basic_header(*credentials)} if credentials else {}
    return httpx.get(realm or f"{base_url}/token", params=params, headers=headers, timeout=30.0)


def token_for(base_url: str, scopes: Iterable[str] = (), credentials: tuple[str, str] | None = None) -> str:
    """A token from ``GET /token``; fails the test unless the server issued one."""
    response = get_token(base_url, scopes, credentials)
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def bearer(token: str) -> dict[str, str]:
    """An ``Authorization: Bearer`` header."""
    return {"Authorization": f"Bearer {token}"}


# Calling the registry as a principal


@dataclass
class Caller:
    """Registry requests as one principal (``credentials=None``: anonymous), in ``basic`` or ``token`` mode.

    In token mode each request goes out first without credentials (as oras and
    containerd do); the ``401`` must carry a Bearer challenge whose realm, service and
    scope the caller uses to fetch a token (anonymously or with its credentials), and
    the request is then repeated with the token. ``extra_scopes`` are asked for too
    (a mount's source repository). Tokens are cached per scope set.
    """

    base_url: str
    mode: str
    credentials: tuple[str, str] | None = None
    client: httpx.Client = field(init=False)
    last_challenge: httpx.Response | None = field(default=None, init=False)
    _tokens: dict[tuple[str, ...], tuple[str, float]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.base_url, timeout=60.0)

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()

    def token(self, scopes: Iterable[str], realm: str | None = None) -> str:
        """A (cached) token for ``scopes``."""
        key = tuple(sorted(set(scopes)))
        cached = self._tokens.get(key)
        if cached is None or cached[1] < time.monotonic():
            response = get_token(self.base_url, key, self.credentials, realm=realm)
            assert response.status_code == 200, f"/token {key}: {response.status_code} {response.text}"
            document = response.json()
            cached = document["token"], time.monotonic() + int(document["expires_in"]) - 20
            self._tokens[key] = cached
        return cached[0]

    def request(
        self,
        method: str,
        path: str,
        *,
        extra_scopes: Iterable[str] = (),
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request, authenticated as a real client of this mode would."""
        headers = dict(headers or {})
        if self.mode == "basic":
            if self.credentials is not None:
                headers["Authorization"] = basic_header(*self.credentials)
            return self.client.request(method, path, headers=headers, **kwargs)
        first = self.client.request(method, path, headers=headers, **kwargs)
        self.last_challenge = first
        if first.status_code != 401:
            return first
        scheme, params = parse_challenge(first.headers.get("www-authenticate"))
        assert scheme == "bearer", first.headers
        assert params.get("service") == SERVICE, first.headers
        scopes = [*params.get("scope", "").split(), *extra_scopes]
        token = self.token(scopes, params["realm"])
        return self.client.request(method, path, headers={**headers, **bearer(token)}, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def head(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("HEAD", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)


# Content


@dataclass(frozen=True)
class SmallImage:
    """A one-layer image pushed to a repository."""

    repository: str
    manifest: bytes
    digest: str
    config: str
    layer: str


def push_blob_as(caller: Caller, repository: str, data: bytes) -> str:
    """A monolithic blob push (``POST ?digest=``) as ``caller``; returns the digest."""
    digest = sha256(data)
    response = caller.post(f"/v2/{repository}/blobs/uploads/", params={"digest": digest}, content=data)
    assert response.status_code == 201, response.text
    return digest


def push_manifest_as(caller: Caller, repository: str, reference: str, manifest: bytes) -> str:
    """PUT an OCI manifest as ``caller``; returns its digest."""
    response = caller.put(
        f"/v2/{repository}/manifests/{reference}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status_code == 201, response.text
    return sha256(manifest)


def push_small_image(caller: Caller, repository: str, tag: str = "v1", layer_size: int = 512) -> SmallImage:
    """Push a config, one random layer and a manifest tagged ``tag`` as ``caller``."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "nonce": uuid.uuid4().hex}).encode()
    layer = os.urandom(layer_size)
    push_blob_as(caller, repository, config)
    push_blob_as(caller, repository, layer)
    manifest = image_manifest(config, [layer])
    digest = push_manifest_as(caller, repository, tag, manifest)
    return SmallImage(repository, manifest, digest, sha256(config), sha256(layer))


def manifest_variant(image: SmallImage) -> bytes:
    """Another manifest over the same blobs (a different digest)."""
    document = json.loads(image.manifest)
    document["annotations"] = {"nonce": uuid.uuid4().hex}
    return json.dumps(document).encode()
