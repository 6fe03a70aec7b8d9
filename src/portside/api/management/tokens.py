"""``/user/tokens``: the caller's personal access tokens. The secret is in the creation answer only."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from portside.api.management.deps import CallerDep, RowId, ServicesDep
from portside.auth.management.tokens import MAX_EXPIRY_DAYS, MAX_TOKEN_NAME, IssuedToken
from portside.auth.roles import Role
from portside.metadata.records import TokenRecord

router = APIRouter(tags=["tokens"])

RoleName = Literal["pull", "push", "delete", "admin"]


class TokenCreate(BaseModel):
    """A new token: what it is for, the most it may do, and optionally when it expires."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_TOKEN_NAME)
    max_role: RoleName
    expires_in_days: int | None = Field(None, ge=1, le=MAX_EXPIRY_DAYS)

    @property
    def role(self) -> Role:
        """``max_role`` as a role."""
        return Role.parse(self.max_role)


class Token(BaseModel):
    """A token, never with its secret."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    owner: str
    max_role: str
    expires_at: datetime | None
    created_at: datetime
    last_used_at: datetime | None


class NewToken(Token):
    """A token just created, with its secret: use it as a password (`docker login`) or as a Bearer token."""

    secret: str


def token_view(record: TokenRecord) -> Token:
    """The API's view of a token."""
    return Token.model_validate(record)


def new_token_view(issued: IssuedToken) -> NewToken:
    """The API's view of a token just issued, secret included."""
    return NewToken(**token_view(issued.token).model_dump(), secret=issued.secret)


@router.get("/user/tokens", summary="List your tokens")
async def list_tokens(caller: CallerDep, services: ServicesDep) -> list[Token]:
    """The caller's personal access tokens (refresh tokens from `docker login` included)."""
    return [token_view(record) for record in await services.tokens.list_own(caller)]


@router.post("/user/tokens", status_code=201, summary="Create a personal access token")
async def create_token(body: TokenCreate, caller: CallerDep, services: ServicesDep) -> NewToken:
    """A new token; the `secret` is shown in this answer only. Needs a password login or an admin-role token."""
    return new_token_view(await services.tokens.create_own(caller, body.name, body.role, body.expires_in_days))


@router.delete("/user/tokens/{token_id}", status_code=204, summary="Revoke one of your tokens")
async def revoke_token(token_id: RowId, caller: CallerDep, services: ServicesDep) -> None:
    """The token stops working at once."""
    await services.tokens.revoke_own(caller, token_id)
