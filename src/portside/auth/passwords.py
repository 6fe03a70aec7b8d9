"""Password hashing with argon2, and a short-lived cache of successful checks.

Clients in Basic mode send credentials with every request; argon2 is deliberately slow,
so a check that succeeded is remembered for a minute (keyed by a hash of the credentials
and the stored hash, so a password change invalidates it at once).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# Spent on unknown users too, so response times do not reveal which usernames exist.
_DUMMY_HASH_SOURCE = "portside-dummy-password"


class Passwords:
    """Hash and verify passwords; one instance per app."""

    def __init__(self, cache_seconds: float = 60.0, cache_size: int = 10_000) -> None:
        self._hasher = PasswordHasher()
        # Made on the first check of any password (not at construction: every CLI command
        # builds one of these and most never check a password), so that first check costs
        # the same whether or not the user exists.
        self._dummy_hash: str | None = None
        self._cache_seconds = cache_seconds
        self._cache_size = cache_size
        self._verified: OrderedDict[bytes, float] = OrderedDict()
        self._cache_key_salt = secrets.token_bytes(16)

    def hash(self, password: str) -> str:
        """An argon2id hash of ``password``."""
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True if ``password`` matches; constant-time, and as slow for a missing user as for a real one."""
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(_DUMMY_HASH_SOURCE)
        if stored_hash is None:
            self._check(self._dummy_hash, password)
            return False
        key = hmac.new(self._cache_key_salt, f"{stored_hash}\0{password}".encode(), hashlib.sha256).digest()
        now = time.monotonic()
        expires = self._verified.get(key)
        if expires is not None and expires > now:
            return True
        if not self._check(stored_hash, password):
            return False
        self._verified[key] = now + self._cache_seconds
        self._verified.move_to_end(key)
        while len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
        return True

    def _check(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def new_secret(prefix: str) -> str:
    """A high-entropy token secret such as ``pst_...``."""
    return f"{prefix}{secrets.token_urlsafe(32)}"


def secret_digest(secret: str) -> str:
    """How token secrets are stored: they carry 256 bits of entropy, so a plain sha256 suffices."""
    return hashlib.sha256(secret.encode()).hexdigest()
