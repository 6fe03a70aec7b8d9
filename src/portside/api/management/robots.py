"""``/robots/{namespace}``: robot accounts of a user's or organization's namespace, and their tokens."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from portside.api.management.deps import CallerDep, RowId, ServicesDep
from portside.api.management.tokens import NewToken, Token, TokenCreate, new_token_view, token_view
from portside.auth.management.robots import MAX_ROBOT_DESCRIPTION

router = APIRouter(prefix="/robots", tags=["robots"])


class RobotCreate(BaseModel):
    """A new robot; it logs in as `<namespace>+<name>` with a token made for it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=1024)
    description: str | None = Field(None, max_length=MAX_ROBOT_DESCRIPTION)


class Robot(BaseModel):
    """A robot account (no secrets: those are its tokens)."""

    model_config = ConfigDict(from_attributes=True)

    namespace: str
    name: str
    full_name: str
    description: str | None
    created_at: datetime


@router.get("/{namespace}", summary="List a namespace's robots [namespace admin]")
async def list_robots(namespace: str, caller: CallerDep, services: ServicesDep) -> list[Robot]:
    """The robots of a user's or organization's namespace."""
    return [Robot.model_validate(robot) for robot in await services.robots.list_in(caller, namespace)]


@router.post("/{namespace}", status_code=201, summary="Create a robot [namespace admin]")
async def create_robot(namespace: str, body: RobotCreate, caller: CallerDep, services: ServicesDep) -> Robot:
    """A robot with no grants and no tokens yet."""
    return Robot.model_validate(await services.robots.create(caller, namespace, body.name, body.description))


@router.get("/{namespace}/{name}", summary="Get a robot [namespace admin]")
async def get_robot(namespace: str, name: str, caller: CallerDep, services: ServicesDep) -> Robot:
    """One robot."""
    return Robot.model_validate(await services.robots.get(caller, namespace, name))


@router.delete("/{namespace}/{name}", status_code=204, summary="Delete a robot [namespace admin]")
async def delete_robot(namespace: str, name: str, caller: CallerDep, services: ServicesDep) -> None:
    """Remove a robot with its tokens and grants."""
    await services.robots.delete(caller, namespace, name)


@router.get("/{namespace}/{name}/tokens", summary="List a robot's tokens [namespace admin]")
async def list_robot_tokens(namespace: str, name: str, caller: CallerDep, services: ServicesDep) -> list[Token]:
    """A robot's tokens, without secrets."""
    return [token_view(record) for record in await services.robots.tokens(caller, namespace, name)]


@router.post("/{namespace}/{name}/tokens", status_code=201, summary="Create a robot token [namespace admin]")
async def create_robot_token(
    namespace: str, name: str, body: TokenCreate, caller: CallerDep, services: ServicesDep
) -> NewToken:
    """A new token for the robot; the `secret` is shown in this answer only."""
    issued = await services.robots.create_token(caller, namespace, name, body.name, body.role, body.expires_in_days)
    return new_token_view(issued)


@router.delete("/{namespace}/{name}/tokens/{token_id}", status_code=204, summary="Revoke a robot token")
async def revoke_robot_token(
    namespace: str, name: str, token_id: RowId, caller: CallerDep, services: ServicesDep
) -> None:
    """The token stops working at once [namespace admin]."""
    await services.robots.revoke_token(caller, namespace, name, token_id)
