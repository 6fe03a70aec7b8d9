"""Users: site administrators create, delete and promote them; everyone manages their own password."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from portside.auth.accounts import TOKEN_PREFIX, AccountService, LoginThrottled
from portside.auth.audit import AuditLog
from portside.auth.management.guards import (
    Caller,
    not_found,
    require_site_admin,
    require_user,
    store_errors,
)
from portside.auth.policy import is_site_admin
from portside.metadata.records import UserRecord
from portside.oci.errors import ErrorKind, RegistryError


@dataclass(frozen=True)
class UserInfo:
    """A user as the API shows it (never the password hash)."""

    username: str
    email: str | None
    admin: bool
    created_at: datetime

    @classmethod
    def of(cls, record: UserRecord) -> UserInfo:
        """From the store's record."""
        return cls(record.username, record.email, record.is_admin, record.created_at)


@dataclass(frozen=True)
class Membership:
    """An organization the caller belongs to."""

    name: str
    owner: bool


@dataclass(frozen=True)
class Me:
    """The caller's own account, with the organizations they belong to."""

    user: UserInfo
    organizations: list[Membership]
    token_max_role: str | None


class UserAdmin:
    """User accounts."""

    def __init__(self, accounts: AccountService, audit: AuditLog) -> None:
        self._accounts = accounts
        self._store = accounts.store
        self._audit = audit

    async def _get(self, username: str) -> UserRecord:
        record = await self._store.get_user(username)
        if record is None:
            raise not_found(f"no user {username!r}")
        return record

    async def me(self, caller: Caller) -> Me:
        """The calling user."""
        principal = require_user(caller, full_authority=False)
        record = await self._get(principal.name)
        organizations = await self._store.organizations_of(principal.name)
        return Me(
            UserInfo.of(record),
            [Membership(name, owner) for name, owner in sorted(organizations.items())],
            None if principal.ceiling is None else principal.ceiling.label,
        )

    async def list_all(self, caller: Caller) -> list[UserInfo]:
        """Every user [site admin]."""
        require_site_admin(caller)
        return [UserInfo.of(record) for record in await self._store.list_users()]

    async def get(self, caller: Caller, username: str) -> UserInfo:
        """One user [the user themselves or a site admin]."""
        principal = require_user(caller, full_authority=False)
        if principal.name != username and not is_site_admin(principal):
            raise RegistryError(ErrorKind.DENIED, "you may only look at your own account")
        return UserInfo.of(await self._get(username))

    async def create(self, caller: Caller, username: str, password: str, email: str | None, admin: bool) -> UserInfo:
        """A new user [site admin]; ``400`` for a bad name or short password, ``409`` for a taken name."""
        require_site_admin(caller)
        with store_errors():
            record = await self._accounts.create_user(username, password, email=email, admin=admin)
        await self._audit.record_now(caller.actor, "user-create", username, caller.address, admin=admin)
        return UserInfo.of(record)

    async def delete(self, caller: Caller, username: str) -> None:
        """Remove a user with their tokens, grants, memberships and robots [site admin].

        Refused (``409``) for the last site administrator and for the last owner of an organization.
        """
        require_site_admin(caller)
        record = await self._get(username)
        if record.is_admin:
            await self._keep_an_admin(username)
        organizations = await self._store.organizations_of(username)
        orphaned = [name for name, owner in sorted(organizations.items()) if owner and await self._sole_owner(name)]
        if orphaned:
            raise RegistryError(
                ErrorKind.CONFLICT,
                f"{username!r} is the only owner of {', '.join(orphaned)}: make someone else an owner first",
                {"organizations": orphaned},
            )
        with store_errors():
            await self._store.delete_user(username)
        await self._audit.record_now(caller.actor, "user-delete", username, caller.address)

    async def set_password(self, caller: Caller, username: str, password: str, current_password: str | None) -> None:
        """Change a password: one's own (with the current password) or anyone's as a site admin."""
        principal = require_user(caller)
        if principal.name == username:
            await self._check_current_password(caller, username, current_password)
        elif not is_site_admin(principal):
            raise RegistryError(ErrorKind.DENIED, "you may only change your own password")
        await self._get(username)
        with store_errors():
            await self._accounts.set_password(username, password)
        await self._audit.record_now(caller.actor, "password-change", username, caller.address)

    async def set_admin(self, caller: Caller, username: str, admin: bool) -> UserInfo:
        """Make a user a site administrator or not [site admin]; the last one stays."""
        require_site_admin(caller)
        record = await self._get(username)
        if record.is_admin and not admin:
            await self._keep_an_admin(username)
        with store_errors():
            updated = await self._store.update_user(username, is_admin=admin)
        if record.is_admin != admin:
            await self._audit.record_now(caller.actor, "admin-set", username, caller.address, admin=admin)
        return UserInfo.of(updated)

    async def _check_current_password(self, caller: Caller, username: str, current_password: str | None) -> None:
        if not current_password:
            raise RegistryError(ErrorKind.REQUEST_INVALID, "current_password is required to change your own password")
        if current_password.startswith(TOKEN_PREFIX):
            # authenticate() would take a token; here only the password proves who you are.
            raise RegistryError(ErrorKind.DENIED, "the current password is wrong")
        try:
            await self._accounts.authenticate(username, current_password, caller.address)
        except LoginThrottled as exc:
            raise RegistryError(
                ErrorKind.TOO_MANY_REQUESTS, str(exc), headers={"Retry-After": str(exc.retry_after)}
            ) from exc
        except PermissionError as exc:
            raise RegistryError(ErrorKind.DENIED, "the current password is wrong") from exc

    async def _keep_an_admin(self, username: str) -> None:
        admins = [user.username for user in await self._store.list_users() if user.is_admin]
        if admins == [username]:
            raise RegistryError(ErrorKind.CONFLICT, f"{username!r} is the last site administrator")

    async def _sole_owner(self, organization: str) -> bool:
        members = await self._store.list_members(organization)
        return sum(member.is_owner for member in members) <= 1
