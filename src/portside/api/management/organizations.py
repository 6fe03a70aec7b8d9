"""``/organizations``: organizations, their members and teams.

Members and site admins may look; owners and site admins may change.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from portside.api.management.deps import CallerDep, ServicesDep
from portside.auth.management.organizations import OrganizationInfo
from portside.metadata.records import MemberRecord, TeamRecord

router = APIRouter(prefix="/organizations", tags=["organizations"])


class OrganizationCreate(BaseModel):
    """A new organization; its name is a namespace (2-64 characters `a-z 0-9 . _ -`)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=1024)


class Organization(BaseModel):
    """An organization and the caller's place in it."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    created_at: datetime
    member: bool
    owner: bool


class Member(BaseModel):
    """A member of an organization."""

    username: str
    owner: bool


class MemberUpdate(BaseModel):
    """Whether the member owns the organization."""

    model_config = ConfigDict(extra="forbid")

    owner: bool = False


class TeamCreate(BaseModel):
    """A new team (2-64 characters `a-z 0-9 . _ -`)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=1024)


class Team(BaseModel):
    """A team and its members; grant it roles as `team:ORG/TEAM`."""

    model_config = ConfigDict(from_attributes=True)

    organization: str
    name: str
    members: list[str]


def _organization(info: OrganizationInfo) -> Organization:
    return Organization.model_validate(info)


def _member(record: MemberRecord) -> Member:
    return Member(username=record.username, owner=record.is_owner)


def _team(record: TeamRecord) -> Team:
    return Team(organization=record.organization, name=record.name, members=list(record.members))


@router.get("", summary="List organizations")
async def list_organizations(caller: CallerDep, services: ServicesDep) -> list[Organization]:
    """Site admins: every organization. Everyone else: those they belong to."""
    return [_organization(info) for info in await services.organizations.list_visible(caller)]


@router.post("", status_code=201, summary="Create an organization")
async def create_organization(body: OrganizationCreate, caller: CallerDep, services: ServicesDep) -> Organization:
    """A new organization owned by the caller; `409` if a user or organization has the name."""
    return _organization(await services.organizations.create(caller, body.name))


@router.get("/{organization}", summary="Get an organization [members]")
async def get_organization(organization: str, caller: CallerDep, services: ServicesDep) -> Organization:
    """One organization."""
    return _organization(await services.organizations.get(caller, organization))


@router.delete("/{organization}", status_code=204, summary="Delete an organization [owners]")
async def delete_organization(organization: str, caller: CallerDep, services: ServicesDep) -> None:
    """Remove an organization with its teams, robots and the grants on its namespace."""
    await services.organizations.delete(caller, organization)


@router.get("/{organization}/members", summary="List members [members]")
async def list_members(organization: str, caller: CallerDep, services: ServicesDep) -> list[Member]:
    """The organization's members and whether each owns it."""
    return [_member(record) for record in await services.organizations.members(caller, organization)]


@router.put(
    "/{organization}/members/{username}",
    summary="Add, promote or demote a member [owners]",
    responses={201: {"model": Member, "description": "The user was added"}},
)
async def set_member(
    organization: str, username: str, body: MemberUpdate, caller: CallerDep, services: ServicesDep, response: Response
) -> Member:
    """Make a user a member (`owner: false`) or an owner (`owner: true`); `201` when newly added.

    The last owner cannot be demoted (`409`).
    """
    change = await services.organizations.set_member(caller, organization, username, body.owner)
    if change.added:
        response.status_code = 201
    return _member(change.member)


@router.delete("/{organization}/members/{username}", status_code=204, summary="Remove a member [owners]")
async def remove_member(organization: str, username: str, caller: CallerDep, services: ServicesDep) -> None:
    """Remove a user from the organization and its teams; the last owner stays (`409`)."""
    await services.organizations.remove_member(caller, organization, username)


@router.get("/{organization}/teams", summary="List teams [members]")
async def list_teams(organization: str, caller: CallerDep, services: ServicesDep) -> list[Team]:
    """The organization's teams with their members."""
    return [_team(record) for record in await services.organizations.teams(caller, organization)]


@router.post("/{organization}/teams", status_code=201, summary="Create a team [owners]")
async def create_team(organization: str, body: TeamCreate, caller: CallerDep, services: ServicesDep) -> Team:
    """A new, empty team."""
    return _team(await services.organizations.create_team(caller, organization, body.name))


@router.get("/{organization}/teams/{team}", summary="Get a team [members]")
async def get_team(organization: str, team: str, caller: CallerDep, services: ServicesDep) -> Team:
    """One team with its members."""
    return _team(await services.organizations.team(caller, organization, team))


@router.delete("/{organization}/teams/{team}", status_code=204, summary="Delete a team [owners]")
async def delete_team(organization: str, team: str, caller: CallerDep, services: ServicesDep) -> None:
    """Remove a team and its grants."""
    await services.organizations.delete_team(caller, organization, team)


@router.put("/{organization}/teams/{team}/members/{username}", summary="Add a team member [owners]")
async def add_team_member(
    organization: str, team: str, username: str, caller: CallerDep, services: ServicesDep
) -> Team:
    """Add a user to the team; a user who is not yet a member of the organization becomes one."""
    return _team(await services.organizations.add_team_member(caller, organization, team, username))


@router.delete(
    "/{organization}/teams/{team}/members/{username}", status_code=204, summary="Remove a team member [owners]"
)
async def remove_team_member(
    organization: str, team: str, username: str, caller: CallerDep, services: ServicesDep
) -> None:
    """Take a user out of the team (they stay in the organization)."""
    await services.organizations.remove_team_member(caller, organization, team, username)
