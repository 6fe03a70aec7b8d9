"""Repository settings [repository admins]: visibility, description, README, permissions,
immutable tag rules, retention policies, and deleting the repository.

Reached from the repository page at ``/r/<name>/-/settings``. The grant service checks the
admin role before anything is shown; every change goes through the management and lifecycle
services (deleting needs the ``delete`` role and is refused while an immutable rule protects a tag).
"""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.api.web import form_values as fields
from portside.api.web.formatting import namespace_path, repository_path
from portside.api.web.manage_common import (
    FRESH,
    FormAction,
    FormState,
    action_post,
    action_retry,
    render,
    see_other,
    services,
    signed_in_action,
    signed_in_page,
)
from portside.api.web.manage_lifecycle import POLICY_FIELDS, RULE_FIELDS, ScopeKind, lifecycle_actions
from portside.api.web.pages import web_of
from portside.auth.management.guards import Caller
from portside.oci.errors import ErrorKind, RegistryError
from portside.registry.repository_info import MAX_DESCRIPTION, RepositoryInfoService

SETTINGS = "/-/settings"
FORM_FIELDS = ("description", "readme", "subject_kind", "subject_name", "role", *RULE_FIELDS, *POLICY_FIELDS)


def settings_path(name: str) -> str:
    """A repository's settings page."""
    return repository_path(name) + SETTINGS


async def settings_view(request: Request, caller: Caller, state: FormState = FRESH) -> Response:
    """The settings forms, filled with the repository's current values (or what was typed)."""
    name = request.path_params["name"]
    management = services(request)
    # The grant service asks for the admin role first: 404 for a repository the caller may not
    # see, 403 for one they may see but not administer.
    grants = await management.grants.list_on(caller, "repository", name)
    info = await management.repositories.get(caller, name)
    details = await repository_info(request).get(caller.principal, name)
    registry = web_of(request).registry
    rules = await registry.immutability.list_rules(caller, repository=name)
    policies = await registry.retention.list_policies(caller, "repository", name)
    current = {
        "description": details.description or "",
        "readme": details.readme or "",
        "role": "pull",
        "subject_kind": "user",
    }
    context = {
        "repository": info,
        "grants": grants,
        "base": settings_path(name),
        "repository_link": repository_path(name),
        "roles": fields.ROLE_CHOICES,
        "subject_kinds": fields.SUBJECT_KINDS,
        "max_description": MAX_DESCRIPTION,
        "image_description": details.image_description or "",
        "rules": rules,
        "policies": policies,
        "rule_scope_kind": "repository",
        "deletes_enabled": registry.repository_deletes.enabled,
        "error": state.error,
        "error_section": state.section,
        "values": {**current, **state.values},
    }
    return await render(request, "manage/repository_settings.html", context, state.status)


def repository_info(request: Request) -> RepositoryInfoService:
    """The repository metadata service (description, README), which keeps the search index current."""
    return web_of(request).registry.repository_info


async def save_visibility(request: Request, caller: Caller, form: FormData) -> str:
    """Make the repository public or private."""
    name = request.path_params["name"]
    await services(request).repositories.update(caller, name, fields.visibility(form), None)
    return "visibility-saved"


async def save_description(request: Request, caller: Caller, form: FormData) -> str:
    """A short description (empty clears it); through the metadata service so search sees it at once."""
    name = request.path_params["name"]
    description = fields.text(form, "description", limit=MAX_DESCRIPTION)
    await repository_info(request).update(
        caller.principal, name, description=description or None, address=caller.address
    )
    return "description-saved"


async def save_readme(request: Request, caller: Caller, form: FormData) -> str:
    """The README in Markdown (empty removes it); rendered and sanitised on the repository page."""
    name = request.path_params["name"]
    readme = fields.text(form, "readme", limit=fields.MAX_LONG_FIELD)
    await repository_info(request).update(caller.principal, name, readme=readme or None, address=caller.address)
    return "readme-saved"


async def save_grant(request: Request, caller: Caller, form: FormData) -> str:
    """Grant a role to a user, team or robot (replacing the role it had)."""
    name = request.path_params["name"]
    await services(request).grants.set_on(caller, "repository", name, fields.subject(form), fields.role(form))
    return "grant-saved"


async def remove_grant(request: Request, caller: Caller, form: FormData) -> str:
    """Take a subject's grant away."""
    name = request.path_params["name"]
    subject = fields.required(form, "subject", "whose permission")
    await services(request).grants.remove_from(caller, "repository", name, subject)
    return "grant-removed"


async def delete_repository(request: Request, caller: Caller, form: FormData) -> Response:
    """Delete the repository [delete role]; needs its name typed again. Then its namespace's page."""
    name = request.path_params["name"]
    if fields.text(form, "confirm") != name:
        raise RegistryError(ErrorKind.REQUEST_INVALID, f"type {name!r} to confirm deleting the repository")
    await web_of(request).registry.repository_deletes.delete(caller, name)
    return see_other(namespace_path(name.split("/", 1)[0]), "repository-deleted")


def _repository_scope(request: Request, form: FormData) -> tuple[ScopeKind, str]:
    return "repository", request.path_params["name"]


ACTIONS: dict[str, tuple[FormAction, str]] = {
    "visibility": (save_visibility, "visibility"),
    "description": (save_description, "description"),
    "readme": (save_readme, "readme"),
    "grant": (save_grant, "permissions"),
    "remove-grant": (remove_grant, "permissions"),
    **lifecycle_actions(_repository_scope),
    "delete": (delete_repository, "delete"),
}


def repository_settings_routes() -> list[BaseRoute]:
    """The settings pages; registered before the repository pages' catch-all ``/r/...`` route."""
    return [
        Route("/r/{name:path}" + SETTINGS, signed_in_page(settings_view), methods=["GET"]),
        Route(
            "/r/{name:path}" + SETTINGS + "/{action}",
            signed_in_action(
                action_post(ACTIONS, lambda request: settings_path(request.path_params["name"]), "no such setting"),
                action_retry(settings_view, ACTIONS, *FORM_FIELDS),
            ),
            methods=["POST"],
        ),
    ]
