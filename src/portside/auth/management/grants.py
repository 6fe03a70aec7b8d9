"""Grants: roles given to users, teams and robots on a repository [its admins] or a namespace [its admins]."""

from __future__ import annotations

from dataclasses import dataclass

from portside.auth.accounts import AccountService, InvalidName, validate_account_name
from portside.auth.audit import AuditLog
from portside.auth.management.guards import (
    Caller,
    not_found,
    require_namespace_admin,
    require_repository_role,
    store_errors,
)
from portside.auth.roles import Role
from portside.metadata.records import GrantRecord
from portside.oci.errors import ErrorKind, RegistryError

SUBJECT_FORMS = "user:NAME, team:ORG/TEAM or robot:NAMESPACE+NAME"


@dataclass(frozen=True)
class Subject:
    """Who a grant is for: ``user:alice``, ``team:acme/devs`` or ``robot:acme+ci``."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


# How many account names each kind of subject is made of, and what separates them.
_SUBJECT_SHAPES = {"user": (1, ""), "team": (2, "/"), "robot": (2, "+")}


def _is_account_name(part: str) -> bool:
    try:
        validate_account_name(part)
    except InvalidName:
        return False
    return True


def parse_subject(text: str) -> Subject:
    """Parse a grant subject; ``400 REQUEST_INVALID`` for anything but the three forms."""
    kind, _, name = text.partition(":")
    count, separator = _SUBJECT_SHAPES.get(kind, (0, ""))
    parts = name.split(separator) if separator else [name]
    if not count or len(parts) != count or not all(_is_account_name(part) for part in parts):
        raise RegistryError(
            ErrorKind.REQUEST_INVALID, f"invalid subject {text!r}: a subject is {SUBJECT_FORMS}", {"subject": text}
        )
    return Subject(kind, name)


@dataclass(frozen=True)
class GrantInfo:
    """One grant as the API shows it."""

    subject: str
    role: str

    @classmethod
    def of(cls, record: GrantRecord) -> GrantInfo:
        """From the store's record."""
        return cls(f"{record.subject_kind}:{record.subject}", record.role)


class GrantAdmin:
    """Grants on repositories and namespaces."""

    def __init__(self, accounts: AccountService, audit: AuditLog) -> None:
        self._accounts = accounts
        self._store = accounts.store
        self._audit = audit

    async def _repository(self, caller: Caller, name: str) -> None:
        await require_repository_role(self._accounts, caller, name, Role.ADMIN)

    async def _namespace(self, caller: Caller, namespace: str) -> None:
        require_namespace_admin(caller, namespace)
        if await self._store.get_user(namespace) is None and await self._store.get_organization(namespace) is None:
            raise not_found(f"no user or organization {namespace!r}")

    async def _check(self, caller: Caller, target_kind: str, target: str) -> None:
        if target_kind == "repository":
            await self._repository(caller, target)
        else:
            await self._namespace(caller, target)

    async def list_on(self, caller: Caller, target_kind: str, target: str) -> list[GrantInfo]:
        """Every grant on a repository or namespace."""
        await self._check(caller, target_kind, target)
        return [GrantInfo.of(record) for record in await self._store.grants_on(target_kind, target)]

    async def set_on(self, caller: Caller, target_kind: str, target: str, subject: str, role: Role) -> GrantInfo:
        """Grant ``role`` (or change the role granted) to ``subject``."""
        await self._check(caller, target_kind, target)
        parsed = parse_subject(subject)
        with store_errors():
            subject_id = await self._store.subject_id(parsed.kind, parsed.name)
            await self._store.set_grant(parsed.kind, subject_id, target_kind, target, role.label)
        await self._audit.record_now(
            caller.actor, "grant", target, caller.address, target_kind=target_kind, subject=str(parsed), role=role.label
        )
        return GrantInfo(str(parsed), role.label)

    async def remove_from(self, caller: Caller, target_kind: str, target: str, subject: str) -> None:
        """Take ``subject``'s grant away."""
        await self._check(caller, target_kind, target)
        parsed = parse_subject(subject)
        with store_errors():
            subject_id = await self._store.subject_id(parsed.kind, parsed.name)
            await self._store.remove_grant(parsed.kind, subject_id, target_kind, target)
        await self._audit.record_now(
            caller.actor, "grant-remove", target, caller.address, target_kind=target_kind, subject=str(parsed)
        )
