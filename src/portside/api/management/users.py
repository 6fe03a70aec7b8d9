"""``/users`` [site admins, and each user for themselves] and ``/user``, the caller's own account."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from portside.api.management.deps import CallerDep, ServicesDep
from portside.auth.management.users import Me, UserInfo

router = APIRouter(tags=["users"])

# Bounds that keep request bodies small; what makes a valid name or password is the service's business.
MAX_FIELD = 1024


class User(BaseModel):
    """A user account."""

    model_config = ConfigDict(from_attributes=True)

    username: str
    email: str | None
    admin: bool
    created_at: datetime


class UserCreate(BaseModel):
    """A new user: a name of 2-64 characters `a-z 0-9 . _ -` and a password of at least 8 characters."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(max_length=MAX_FIELD)
    password: str = Field(max_length=MAX_FIELD)
    email: str | None = Field(None, max_length=255)
    admin: bool = False


class PasswordChange(BaseModel):
    """A new password; changing your own needs the current one too."""

    model_config = ConfigDict(extra="forbid")

    password: str = Field(max_length=MAX_FIELD)
    current_password: str | None = Field(None, max_length=MAX_FIELD)


class AdminFlag(BaseModel):
    """Whether a user is a site administrator."""

    model_config = ConfigDict(extra="forbid")

    admin: bool


class OrganizationMembership(BaseModel):
    """An organization the user belongs to."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    owner: bool


class CurrentUser(User):
    """The caller's account, organizations, and the ceiling of the token they came with (if any)."""

    organizations: list[OrganizationMembership]
    token_max_role: str | None


def _user(info: UserInfo) -> User:
    return User.model_validate(info)


def _me(me: Me) -> CurrentUser:
    return CurrentUser(
        **User.model_validate(me.user).model_dump(),
        organizations=[OrganizationMembership.model_validate(m) for m in me.organizations],
        token_max_role=me.token_max_role,
    )


@router.get("/user", summary="The calling user")
async def get_current_user(caller: CallerDep, services: ServicesDep) -> CurrentUser:
    """The account of whoever is calling, with their organizations."""
    return _me(await services.users.me(caller))


@router.get("/users", summary="List users [site admin]")
async def list_users(caller: CallerDep, services: ServicesDep) -> list[User]:
    """Every user, by name."""
    return [_user(info) for info in await services.users.list_all(caller)]


@router.post("/users", status_code=201, summary="Create a user [site admin]")
async def create_user(body: UserCreate, caller: CallerDep, services: ServicesDep) -> User:
    """A new user; `409` if a user or organization already has the name."""
    return _user(await services.users.create(caller, body.username, body.password, body.email, body.admin))


@router.get("/users/{username}", summary="Get a user [self or site admin]")
async def get_user(username: str, caller: CallerDep, services: ServicesDep) -> User:
    """One user."""
    return _user(await services.users.get(caller, username))


@router.delete("/users/{username}", status_code=204, summary="Delete a user [site admin]")
async def delete_user(username: str, caller: CallerDep, services: ServicesDep) -> None:
    """Remove a user with their tokens, grants, memberships and the robots of their namespace.

    Refused with `409` for the last site administrator and for the last owner of an organization.
    """
    await services.users.delete(caller, username)


@router.put("/users/{username}/password", status_code=204, summary="Change a password [self or site admin]")
async def change_password(username: str, body: PasswordChange, caller: CallerDep, services: ServicesDep) -> None:
    """Set a new password. Your own needs `current_password` and a password login (or an admin-role token)."""
    await services.users.set_password(caller, username, body.password, body.current_password)


@router.put("/users/{username}/admin", summary="Make a user a site administrator or not [site admin]")
async def set_admin(username: str, body: AdminFlag, caller: CallerDep, services: ServicesDep) -> User:
    """Grant or take away site administration; the last administrator stays one (`409`)."""
    return _user(await services.users.set_admin(caller, username, body.admin))
