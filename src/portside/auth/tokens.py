"""Docker registry bearer tokens: ES256 JWTs signed with keys kept under the data dir.

Keys live in ``<data_dir>/keys/*.pem``; the newest signs, every one verifies (so a rotated
key keeps validating tokens it signed until they expire). Each key's ``kid`` is the
RFC 7638 thumbprint of its public key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from portside.auth.scopes import Scope

ALGORITHM = "ES256"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The RFC 7638 JWK thumbprint of a P-256 public key."""
    numbers = public_key.public_numbers()
    jwk = {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
    }
    canonical = json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()
    return _b64(hashlib.sha256(canonical).digest())


@dataclass(frozen=True)
class SigningKey:
    """One key pair and its id."""

    kid: str
    private_key: ec.EllipticCurvePrivateKey
    created: float

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The verifying half."""
        return self.private_key.public_key()


class KeyRing:
    """The signing keys in a directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._keys: dict[str, SigningKey] = {}
        self._stamp: int | None = None
        self.reload()

    def _directory_stamp(self) -> int:
        return self.directory.stat().st_mtime_ns

    def reload(self) -> None:
        """Read every key file; create the first key if there is none."""
        self.directory.mkdir(parents=True, exist_ok=True)
        # Taken before reading: a key added meanwhile changes the stamp and is read next time.
        self._stamp = self._directory_stamp()
        files = sorted(self.directory.glob("*.pem"))
        if not files:
            self.rotate()
            return
        keys: dict[str, SigningKey] = {}
        for path in files:
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if isinstance(private, ec.EllipticCurvePrivateKey):
                kid = key_id(private.public_key())
                keys[kid] = SigningKey(kid, private, path.stat().st_mtime)
        self._keys = keys

    def rotate(self) -> SigningKey:
        """Create a new key that signs from now on; older keys still verify."""
        private = ec.generate_private_key(ec.SECP256R1())
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}.pem"
        temporary = self.directory / f".{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, self.directory / name)
        finally:
            temporary.unlink()
        self.reload()
        return self.signing_key

    @property
    def signing_key(self) -> SigningKey:
        """The newest key, re-reading the directory if a key was added (by another process) since."""
        if self._directory_stamp() != self._stamp:
            self.reload()
        return max(self._keys.values(), key=lambda key: (key.created, key.kid))

    def verifying_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        """The public key with this id, re-reading the directory once if another process rotated."""
        key = self._keys.get(kid)
        # Re-read only if a key was added: a stream of made-up kids costs a stat each, no more.
        if key is None and self._directory_stamp() != self._stamp:
            self.reload()
            key = self._keys.get(kid)
        return None if key is None else key.public_key

    def describe(self) -> list[tuple[str, float, bool]]:
        """(kid, created, signs) of every key, newest first."""
        signing = self.signing_key.kid
        ordered = sorted(self._keys.values(), key=lambda key: (key.created, key.kid), reverse=True)
        return [(key.kid, key.created, key.kid == signing) for key in ordered]


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token says."""

    subject: str
    access: list[Scope]
    expires_at: int


class InvalidToken(Exception):
    """A token that is malformed, forged, expired, not yet valid, or for another service."""


class TokenIssuer:
    """Signs and verifies registry tokens for one service."""

    def __init__(
        self, keys: KeyRing, issuer: str, service: str, lifetime_seconds: int, cache_size: int = 10_000
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.service = service
        self.lifetime_seconds = lifetime_seconds
        # Clients send the same token with every request; a signature is checked once.
        self._verified: OrderedDict[str, TokenClaims] = OrderedDict()
        self._cache_size = cache_size

    def issue(self, subject: str, access: list[Scope], now: float | None = None) -> tuple[str, int, int]:
        """A signed token, its lifetime and its issue time."""
        issued = int(now if now is not None else time.time())
        key = self.keys.signing_key
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": issued + self.lifetime_seconds,
            "nbf": issued - 1,
            "iat": issued,
            "jti": secrets.token_urlsafe(16),
            "access": [scope.as_claim() for scope in access],
        }
        token = jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
        return token, self.lifetime_seconds, issued

    def verify(self, token: str) -> TokenClaims:
        """Check signature (ES256 only), issuer, audience, expiry and not-before; return the claims."""
        cached = self._verified.get(token)
        if cached is not None and cached.expires_at > time.time():
            return cached
        claims = self._verify(token)
        self._verified[token] = claims
        while len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
        return claims

    def _verify(self, token: str) -> TokenClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"malformed token: {exc}") from exc
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("token algorithm must be ES256")
        public_key = self.keys.verifying_key(str(header.get("kid", "")))
        if public_key is None:
            raise InvalidToken("token signed by an unknown key")
        try:
            claims = jwt.decode(
                token,
                public_key,
                algorithms=[ALGORITHM],
                audience=self.service,
                issuer=self.issuer,
                options={"require": ["exp", "nbf", "iat", "iss", "aud", "sub"]},
                leeway=5,
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        access: list[Scope] = []
        for entry in claims.get("access") or []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str) and isinstance(entry.get("type"), str):
                actions = entry.get("actions") or []
                access.append(Scope(entry["type"], entry["name"], frozenset(str(a) for a in actions)))
        return TokenClaims(str(claims["sub"]), access, int(claims["exp"]))
