"""Web UI sign-in: sessions kept as server-side rows, and CSRF tokens signed with a shared key.

Why rows rather than a signed cookie: signing out (or an administrator removing a user) must
end a session at once on every node, and a row is the simplest revocation list there is. The
cookie carries only a random secret; the database keeps its SHA-256, so a copy of the database
does not hand out live sessions.

The key under ``keys_dir`` (``web.key``) signs CSRF tokens: a form's token is an HMAC of the
session's id (or, before sign-in, of a random nonce in a cookie of its own), so every node of a
cluster, sharing ``keys_dir``, accepts the forms of every other.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from portside.auth.accounts import AccountService
from portside.auth.audit import AuditLog
from portside.auth.policy import Principal, PrincipalKind
from portside.metadata.records import UserRecord
from portside.metadata.store import utcnow
from portside.metadata.web_session_store import WebSessionRecord, WebSessionStore

WEB_KEY_FILE = "web.key"
KEY_BYTES = 32


def load_web_key(keys_dir: Path) -> bytes:
    """The web UI's signing key in ``keys_dir``, created on first use.

    Several nodes may start at once: the key is written under a temporary name and linked into
    place, which fails if another node won the race; then that node's key is read.
    """
    keys_dir.mkdir(parents=True, exist_ok=True)
    path = keys_dir / WEB_KEY_FILE
    if not path.exists():
        temporary = keys_dir / f".{WEB_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(base64.b64encode(secrets.token_bytes(KEY_BYTES)) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
    key = base64.b64decode(path.read_bytes().strip())
    if len(key) < KEY_BYTES:
        raise ValueError(f"{path} holds a key shorter than {KEY_BYTES} bytes")
    return key


def session_id_of(secret: str) -> str:
    """The row id a cookie's secret stands for."""
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(key: bytes, binding: str) -> str:
    """The CSRF token for forms of a session (or an anonymous nonce): an HMAC, URL-safe."""
    mac = hmac.new(key, b"csrf\x00" + binding.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def csrf_valid(key: bytes, binding: str | None, submitted: str | None) -> bool:
    """True if ``submitted`` is the token for ``binding`` (compared in constant time)."""
    if not binding or not submitted:
        return False
    return hmac.compare_digest(csrf_token(key, binding), submitted)


def safe_next(target: str | None, default: str = "/") -> str:
    """Where to go after signing in: only a path on this site (no scheme, host or ``//``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(char) < 0x20 for char in target):
        return default
    return target


@dataclass(frozen=True)
class SignedIn:
    """A session just created: the cookie's secret (shown to the browser once) and its row."""

    secret: str
    session: WebSessionRecord


class WebSessions:
    """Sign-in, sign-out and the lookup of a browser's session."""

    def __init__(
        self, store: WebSessionStore, accounts: AccountService, audit: AuditLog, key: bytes, lifetime: timedelta
    ) -> None:
        self.store = store
        self.accounts = accounts
        self.audit = audit
        self.key = key
        self.lifetime = lifetime

    async def sign_in(self, username: str, password: str, address: str | None) -> SignedIn:
        """Check a user's password and open a session.

        Raises ``LoginThrottled`` and ``PermissionError`` as :meth:`AccountService.authenticate`
        does. Tokens are refused here: a ``pull`` token must not open a session with the full
        authority of its owner.
        """
        principal = await self.accounts.authenticate(username, password, address)
        if principal.kind is not PrincipalKind.USER or principal.ceiling is not None or principal.id is None:
            raise PermissionError("sign in with your password; tokens are for registry clients")
        await self.audit.record_now(principal.audit_name, "web-sign-in", None, address)
        return await self.open(principal.id, address)

    async def sign_up(self, username: str, password: str, email: str | None, address: str | None) -> SignedIn:
        """Public mode: a new account, signed in at once.

        Raises ``ValueError`` (``InvalidName`` included) for a bad name or password and
        ``Conflict`` when a user or organization has the name.
        """
        user = await self.accounts.create_user(username, password, email=email)
        await self.audit.record_now(f"user:{user.username}", "user-create", user.username, address, signup=True)
        return await self.open(user.id, address)

    async def open(self, user_id: int, address: str | None) -> SignedIn:
        """A new session for a user (after sign-in or sign-up)."""
        secret = secrets.token_urlsafe(32)
        expires_at = utcnow() + self.lifetime
        await self.store.create(session_id_of(secret), user_id, expires_at, address)
        session = await self.store.get(session_id_of(secret))
        assert session is not None
        return SignedIn(secret, session)

    async def lookup(self, secret: str | None) -> WebSessionRecord | None:
        """The live session a cookie names, if any."""
        if not secret or len(secret) > 128:
            return None
        return await self.store.get(session_id_of(secret))

    async def principal(self, user: UserRecord) -> Principal:
        """What the policy knows about the signed-in user."""
        return await self.accounts.principal_for_user(user)

    async def sign_out(self, session: WebSessionRecord, address: str | None) -> None:
        """End a session at once, on every node."""
        await self.store.delete(session.id)
        await self.audit.record_now(f"user:{session.user.username}", "web-sign-out", None, address)

    async def sign_out_everywhere(self, user_id: int) -> int:
        """End every session of a user."""
        return await self.store.delete_for_user(user_id)
