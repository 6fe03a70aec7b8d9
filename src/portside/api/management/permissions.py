"""``/permissions``: grants on a repository [repository admins] or on a whole namespace [namespace admins].

Subjects are ``user:NAME``, ``team:ORG/TEAM`` or ``robot:NAMESPACE+NAME``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from portside.api.management.deps import CallerDep, ServicesDep
from portside.api.management.tokens import RoleName
from portside.auth.management.grants import SUBJECT_FORMS, GrantInfo
from portside.auth.roles import Role

router = APIRouter(prefix="/permissions", tags=["permissions"])

SubjectQuery = Annotated[str, Query(max_length=300, description=f"Whose grant: {SUBJECT_FORMS}.")]


class Grant(BaseModel):
    """A role granted to a user, team or robot."""

    model_config = ConfigDict(from_attributes=True)

    subject: str = Field(description=SUBJECT_FORMS)
    role: str


class GrantSet(BaseModel):
    """Grant a role to a subject (replacing the role it had)."""

    model_config = ConfigDict(extra="forbid")

    subject: str = Field(max_length=300, description=SUBJECT_FORMS)
    role: RoleName


def _grants(infos: list[GrantInfo]) -> list[Grant]:
    return [Grant.model_validate(info) for info in infos]


@router.get("/repositories/{name:path}", summary="List grants on a repository [repository admin]")
async def list_repository_grants(name: str, caller: CallerDep, services: ServicesDep) -> list[Grant]:
    """Who has been granted what on one repository."""
    return _grants(await services.grants.list_on(caller, "repository", name))


@router.put("/repositories/{name:path}", summary="Grant a role on a repository [repository admin]")
async def set_repository_grant(name: str, body: GrantSet, caller: CallerDep, services: ServicesDep) -> Grant:
    """The repository need not exist yet: grants can be made before the first push."""
    info = await services.grants.set_on(caller, "repository", name, body.subject, Role.parse(body.role))
    return Grant.model_validate(info)


@router.delete("/repositories/{name:path}", status_code=204, summary="Remove a grant on a repository")
async def remove_repository_grant(name: str, subject: SubjectQuery, caller: CallerDep, services: ServicesDep) -> None:
    """Take `subject`'s grant on the repository away [repository admin]."""
    await services.grants.remove_from(caller, "repository", name, subject)


@router.get("/namespaces/{namespace}", summary="List grants on a namespace [namespace admin]")
async def list_namespace_grants(namespace: str, caller: CallerDep, services: ServicesDep) -> list[Grant]:
    """Who has been granted what on every repository of a user's or organization's namespace."""
    return _grants(await services.grants.list_on(caller, "namespace", namespace))


@router.put("/namespaces/{namespace}", summary="Grant a role on a namespace [namespace admin]")
async def set_namespace_grant(namespace: str, body: GrantSet, caller: CallerDep, services: ServicesDep) -> Grant:
    """The role applies to every repository of the namespace, present and future."""
    info = await services.grants.set_on(caller, "namespace", namespace, body.subject, Role.parse(body.role))
    return Grant.model_validate(info)


@router.delete("/namespaces/{namespace}", status_code=204, summary="Remove a grant on a namespace")
async def remove_namespace_grant(
    namespace: str, subject: SubjectQuery, caller: CallerDep, services: ServicesDep
) -> None:
    """Take `subject`'s grant on the namespace away [namespace admin]."""
    await services.grants.remove_from(caller, "namespace", namespace, subject)
