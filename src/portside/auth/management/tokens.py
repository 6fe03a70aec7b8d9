"""Personal access tokens: every user manages their own. Secrets are shown once, at creation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from portside.auth.accounts import AccountService
from portside.auth.audit import AuditLog
from portside.auth.management.guards import Caller, not_found, require_user, store_errors
from portside.auth.roles import Role
from portside.metadata.records import TokenRecord
from portside.oci.errors import ErrorKind, RegistryError

MAX_TOKEN_NAME = 128
MAX_EXPIRY_DAYS = 3650


@dataclass(frozen=True)
class IssuedToken:
    """A new token and its secret, which is never shown again."""

    token: TokenRecord
    secret: str


def token_expiry(now: datetime, expires_in_days: int | None) -> datetime | None:
    """When a token made ``now`` expires; ``400`` outside 1 to 3650 days."""
    if expires_in_days is None:
        return None
    if not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        raise RegistryError(ErrorKind.REQUEST_INVALID, f"expires_in_days must be 1 to {MAX_EXPIRY_DAYS}")
    return now + timedelta(days=expires_in_days)


def token_name(name: str) -> str:
    """A token's label, trimmed; ``400`` if empty or longer than 128 characters."""
    name = name.strip()
    if not 1 <= len(name) <= MAX_TOKEN_NAME:
        raise RegistryError(ErrorKind.REQUEST_INVALID, f"token names have 1 to {MAX_TOKEN_NAME} characters")
    return name


async def issue(
    accounts: AccountService, owner_kind: str, owner_id: int, name: str, max_role: Role, expires_in_days: int | None
) -> IssuedToken:
    """Issue a user's or robot's token and return it with its secret."""
    expires_at = token_expiry(datetime.now(UTC), expires_in_days)
    issued = await accounts.issue_token(owner_kind, owner_id, token_name(name), max_role, expires_at)
    record = next(t for t in await accounts.store.list_tokens(owner_kind, owner_id) if t.id == issued.id)
    return IssuedToken(record, issued.secret)


async def revoke(accounts: AccountService, owner_kind: str, owner_id: int, token_id: int) -> TokenRecord:
    """Revoke one of an owner's tokens; ``404`` if the owner has no such token."""
    record = next((t for t in await accounts.store.list_tokens(owner_kind, owner_id) if t.id == token_id), None)
    if record is None:
        raise not_found(f"no token {token_id}")
    with store_errors():
        await accounts.store.delete_token(owner_kind, owner_id, token_id)
    return record


class TokenAdmin:
    """The calling user's personal access tokens."""

    def __init__(self, accounts: AccountService, audit: AuditLog) -> None:
        self._accounts = accounts
        self._audit = audit

    def _owner_id(self, caller: Caller, *, full_authority: bool) -> int:
        principal = require_user(caller, full_authority=full_authority)
        assert principal.id is not None  # users always have one
        return principal.id

    async def list_own(self, caller: Caller) -> list[TokenRecord]:
        """The caller's tokens, without secrets."""
        return await self._accounts.store.list_tokens("user", self._owner_id(caller, full_authority=False))

    async def create_own(self, caller: Caller, name: str, max_role: Role, expires_in_days: int | None) -> IssuedToken:
        """A new token for the caller (who must have logged in with a password or an admin-role token)."""
        issued = await issue(
            self._accounts, "user", self._owner_id(caller, full_authority=True), name, max_role, expires_in_days
        )
        await self._audit.record_now(
            caller.actor,
            "token-create",
            caller.principal.name,
            caller.address,
            token_id=issued.token.id,
            name=issued.token.name,
            max_role=max_role.label,
        )
        return issued

    async def revoke_own(self, caller: Caller, token_id: int) -> None:
        """Revoke one of the caller's tokens."""
        record = await revoke(self._accounts, "user", self._owner_id(caller, full_authority=True), token_id)
        await self._audit.record_now(
            caller.actor, "token-revoke", caller.principal.name, caller.address, token_id=token_id, name=record.name
        )
