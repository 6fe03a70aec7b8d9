"""Organizations, their members and teams.

Members (and site admins) may look; owners (and site admins) may change, as the policy's
``may_administer_namespace`` says. An organization always keeps at least one owner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from portside.auth.accounts import AccountService, validate_account_name
from portside.auth.audit import AuditLog
from portside.auth.management.guards import (
    Caller,
    not_found,
    require_identity,
    require_namespace_admin,
    require_user,
    store_errors,
)
from portside.auth.policy import PrincipalKind, is_site_admin
from portside.metadata.records import MemberRecord, OrganizationRecord, TeamRecord
from portside.oci.errors import ErrorKind, RegistryError


@dataclass(frozen=True)
class OrganizationInfo:
    """An organization and, where the caller belongs to it, whether they own it."""

    name: str
    created_at: datetime
    member: bool
    owner: bool


@dataclass(frozen=True)
class MemberChange:
    """The member after a change, and whether they were added by it."""

    member: MemberRecord
    added: bool


class OrganizationAdmin:
    """Organizations, members and teams."""

    def __init__(self, accounts: AccountService, audit: AuditLog) -> None:
        self._store = accounts.store
        self._audit = audit

    async def _organization(self, name: str) -> OrganizationRecord:
        record = await self._store.get_organization(name)
        if record is None:
            raise not_found(f"no organization {name!r}")
        return record

    async def _membership(self, caller: Caller, organization: str) -> bool | None:
        """``None`` if the caller is no member, else whether they own the organization."""
        principal = require_identity(caller)
        if principal.kind is not PrincipalKind.USER:
            return None
        return (await self._store.organizations_of(principal.name)).get(organization)

    async def _require_reader(self, caller: Caller, organization: str) -> OrganizationInfo:
        record = await self._organization(organization)
        owner = await self._membership(caller, organization)
        if owner is None and not is_site_admin(caller.principal):
            raise RegistryError(ErrorKind.DENIED, f"you are not a member of {organization!r}")
        return OrganizationInfo(record.name, record.created_at, owner is not None, bool(owner))

    async def _require_owner(self, caller: Caller, organization: str) -> None:
        require_namespace_admin(caller, organization)
        await self._organization(organization)

    # Organizations

    async def create(self, caller: Caller, name: str) -> OrganizationInfo:
        """A new organization; the caller becomes its owner."""
        principal = require_user(caller)
        with store_errors():
            validate_account_name(name, "organization name")
            record = await self._store.create_organization(name, principal.name)
        await self._audit.record_now(caller.actor, "org-create", name, caller.address)
        return OrganizationInfo(record.name, record.created_at, True, True)

    async def list_visible(self, caller: Caller) -> list[OrganizationInfo]:
        """Every organization for site admins; the caller's own for everyone else."""
        principal = require_identity(caller)
        mine = await self._store.organizations_of(principal.name) if principal.kind is PrincipalKind.USER else {}
        everything = await self._store.list_organizations()
        return [
            OrganizationInfo(record.name, record.created_at, record.name in mine, mine.get(record.name, False))
            for record in everything
            if record.name in mine or is_site_admin(principal)
        ]

    async def get(self, caller: Caller, name: str) -> OrganizationInfo:
        """One organization [members and site admins]."""
        return await self._require_reader(caller, name)

    async def delete(self, caller: Caller, name: str) -> None:
        """Remove an organization with its teams, robots and namespace grants [owners and site admins]."""
        await self._require_owner(caller, name)
        with store_errors():
            await self._store.delete_organization(name)
        await self._audit.record_now(caller.actor, "org-delete", name, caller.address)

    # Members

    async def members(self, caller: Caller, organization: str) -> list[MemberRecord]:
        """An organization's members [members and site admins]."""
        await self._require_reader(caller, organization)
        return await self._store.list_members(organization)

    async def set_member(self, caller: Caller, organization: str, username: str, owner: bool) -> MemberChange:
        """Add a member, or make them an owner or not [owners and site admins]."""
        await self._require_owner(caller, organization)
        members = {member.username: member for member in await self._store.list_members(organization)}
        before = members.get(username)
        if before is not None and before.is_owner and not owner:
            self._keep_an_owner(organization, username, list(members.values()))
        with store_errors():
            await self._store.set_member(organization, username, owner)
        if before is None or before.is_owner != owner:
            await self._audit.record_now(
                caller.actor, "member-set", organization, caller.address, user=username, owner=owner
            )
        return MemberChange(MemberRecord(username, owner), before is None)

    async def remove_member(self, caller: Caller, organization: str, username: str) -> None:
        """Remove a member from the organization and its teams [owners and site admins]."""
        await self._require_owner(caller, organization)
        members = await self._store.list_members(organization)
        if any(member.username == username and member.is_owner for member in members):
            self._keep_an_owner(organization, username, members)
        with store_errors():
            await self._store.remove_member(organization, username)
        await self._audit.record_now(caller.actor, "member-remove", organization, caller.address, user=username)

    @staticmethod
    def _keep_an_owner(organization: str, username: str, members: list[MemberRecord]) -> None:
        if not any(member.is_owner and member.username != username for member in members):
            raise RegistryError(ErrorKind.CONFLICT, f"{username!r} is the last owner of {organization!r}")

    # Teams

    async def teams(self, caller: Caller, organization: str) -> list[TeamRecord]:
        """An organization's teams with their members [members and site admins]."""
        await self._require_reader(caller, organization)
        return await self._store.list_teams(organization)

    async def team(self, caller: Caller, organization: str, name: str) -> TeamRecord:
        """One team [members and site admins]."""
        await self._require_reader(caller, organization)
        with store_errors():
            return await self._store.get_team(organization, name)

    async def create_team(self, caller: Caller, organization: str, name: str) -> TeamRecord:
        """A new, empty team [owners and site admins]."""
        await self._require_owner(caller, organization)
        with store_errors():
            validate_account_name(name, "team name")
            team = await self._store.create_team(organization, name)
        await self._audit.record_now(caller.actor, "team-create", organization, caller.address, team=name)
        return team

    async def delete_team(self, caller: Caller, organization: str, name: str) -> None:
        """Remove a team and its grants [owners and site admins]."""
        await self._require_owner(caller, organization)
        with store_errors():
            await self._store.delete_team(organization, name)
        await self._audit.record_now(caller.actor, "team-delete", organization, caller.address, team=name)

    async def add_team_member(self, caller: Caller, organization: str, team: str, username: str) -> TeamRecord:
        """Add a user to a team (and so to the organization) [owners and site admins]."""
        await self._require_owner(caller, organization)
        with store_errors():
            before = await self._store.get_team(organization, team)
            await self._store.set_team_member(organization, team, username, True)
            after = await self._store.get_team(organization, team)
        if username not in before.members:
            await self._audit.record_now(
                caller.actor, "team-member-add", organization, caller.address, team=team, user=username
            )
        return after

    async def remove_team_member(self, caller: Caller, organization: str, team: str, username: str) -> None:
        """Take a user out of a team [owners and site admins]."""
        await self._require_owner(caller, organization)
        with store_errors():
            before = await self._store.get_team(organization, team)
        if username not in before.members:
            raise not_found(f"{username!r} is not in team {organization}/{team}")
        with store_errors():
            await self._store.set_team_member(organization, team, username, False)
        await self._audit.record_now(
            caller.actor, "team-member-remove", organization, caller.address, team=team, user=username
        )
