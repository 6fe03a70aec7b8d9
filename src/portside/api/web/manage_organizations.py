"""Organizations: create, members and owners, teams and their members.

Members (and site admins) may look; owners (and site admins) may change: the organization
service decides, these pages only show its answers and hide the forms a viewer could not use.
"""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.api.web import form_values as fields
from portside.api.web.manage_common import (
    FRESH,
    FormState,
    Retry,
    path_part,
    render,
    see_other,
    services,
    signed_in_action,
    signed_in_page,
    view_retry,
)
from portside.api.web.manage_lifecycle import visible_quota
from portside.auth.management.guards import Caller
from portside.auth.policy import may_administer_namespace
from portside.oci.errors import ErrorKind, RegistryError

ORGANIZATIONS = "/organizations"


def organization_path(name: str) -> str:
    """An organization's management page."""
    return f"{ORGANIZATIONS}/{path_part(name)}"


def team_path(organization: str, team: str) -> str:
    """A team's page."""
    return f"{organization_path(organization)}/teams/{path_part(team)}"


# Organizations


async def organizations_view(request: Request, caller: Caller, state: FormState = FRESH) -> Response:
    """The caller's organizations (every one for site admins) and the form to create one."""
    organizations = await services(request).organizations.list_visible(caller)
    context = {"organizations": organizations, "error": state.error, "values": state.values}
    return await render(request, "manage/organizations.html", context, state.status)


async def create_organization(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /organizations: the caller becomes the owner."""
    info = await services(request).organizations.create(caller, fields.required(form, "name", "a name"))
    return see_other(organization_path(info.name), "org-created")


async def organization_view(request: Request, caller: Caller, state: FormState = FRESH) -> Response:
    """An organization's members, teams and robots; the forms only for those who may change them."""
    name = request.path_params["organization"]
    management = services(request)
    info = await management.organizations.get(caller, name)
    members = await management.organizations.members(caller, name)
    teams = await management.organizations.teams(caller, name)
    may_change = may_administer_namespace(caller.principal, name)
    robots = await management.robots.list_in(caller, name) if may_change else []
    grants = await management.grants.list_on(caller, "namespace", name) if may_change else []
    context = {
        "organization": info,
        "members": members,
        "teams": teams,
        "robots": robots,
        "grants": grants,
        "roles": fields.ROLE_CHOICES,
        "subject_kinds": fields.SUBJECT_KINDS,
        "may_change": may_change,
        # Storage used and the quota, for those the quota service shows them to.
        "quota": await visible_quota(request, caller, name),
        "base": organization_path(name),
        "error": state.error,
        "error_section": state.section,
        "values": {"subject_kind": "team", "role": "pull", **state.values},
    }
    return await render(request, "manage/organization.html", context, state.status)


async def set_member(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /organizations/{organization}/members: add a member, or make one an owner or not."""
    organization = request.path_params["organization"]
    username = fields.required(form, "username", "a username")
    await services(request).organizations.set_member(caller, organization, username, fields.checkbox(form, "owner"))
    return see_other(organization_path(organization), "member-set")


async def set_owner(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /organizations/{organization}/members/{username}/owner (``owner`` true or false)."""
    organization, username = request.path_params["organization"], request.path_params["username"]
    await services(request).organizations.set_member(caller, organization, username, fields.checkbox(form, "owner"))
    return see_other(organization_path(organization), "member-set")


async def remove_member(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /organizations/{organization}/members/{username}/remove."""
    organization, username = request.path_params["organization"], request.path_params["username"]
    await services(request).organizations.remove_member(caller, organization, username)
    return see_other(organization_path(organization), "member-removed")


async def delete_organization(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /organizations/{organization}/delete: needs the name typed again, as a confirmation."""
    organization = request.path_params["organization"]
    if fields.text(form, "confirm") != organization:
        raise unconfirmed(organization)
    await services(request).organizations.delete(caller, organization)
    return see_other(ORGANIZATIONS, "org-deleted")


def unconfirmed(name: str) -> RegistryError:
    """Refusal of a delete whose confirmation does not repeat the name."""
    return RegistryError(ErrorKind.REQUEST_INVALID, f"type {name!r} to confirm the deletion")


async def set_namespace_grant(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /organizations/{organization}/permissions: a role on every repository of the namespace."""
    organization = request.path_params["organization"]
    await services(request).grants.set_on(caller, "namespace", organization, fields.subject(form), fields.role(form))
    return see_other(organization_path(organization), "grant-saved")


async def remove_namespace_grant(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /organizations/{organization}/permissions/remove."""
    organization = request.path_params["organization"]
    subject = fields.required(form, "subject", "whose permission")
    await services(request).grants.remove_from(caller, "namespace", organization, subject)
    return see_other(organization_path(organization), "grant-removed")


# Teams


async def create_team(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /organizations/{organization}/teams."""
    organization = request.path_params["organization"]
    team = await services(request).organizations.create_team(
        caller, organization, fields.required(form, "team", "a team name")
    )
    return see_other(team_path(organization, team.name), "team-created")


async def team_view(request: Request, caller: Caller, state: FormState = FRESH) -> Response:
    """One team: its members and, for owners, the forms to change them."""
    organization, name = request.path_params["organization"], request.path_params["team"]
    team = await services(request).organizations.team(caller, organization, name)
    context = {
        "organization": organization,
        "team": team,
        "may_change": may_administer_namespace(caller.principal, organization),
        "base": team_path(organization, name),
        "organization_base": organization_path(organization),
        "error": state.error,
        "values": state.values,
    }
    return await render(request, "manage/team.html", context, state.status)


async def add_team_member(request: Request, caller: Caller, form: FormData) -> Response:
    """POST .../teams/{team}/members: a user who is no member yet joins the organization too."""
    organization, team = request.path_params["organization"], request.path_params["team"]
    username = fields.required(form, "username", "a username")
    await services(request).organizations.add_team_member(caller, organization, team, username)
    return see_other(team_path(organization, team), "team-member-added")


async def remove_team_member(request: Request, caller: Caller, form: FormData) -> Response:
    """POST .../teams/{team}/members/{username}/remove."""
    organization, team = request.path_params["organization"], request.path_params["team"]
    await services(request).organizations.remove_team_member(
        caller, organization, team, request.path_params["username"]
    )
    return see_other(team_path(organization, team), "team-member-removed")


async def delete_team(request: Request, caller: Caller, form: FormData) -> Response:
    """POST .../teams/{team}/delete: the team and its grants go."""
    organization, team = request.path_params["organization"], request.path_params["team"]
    await services(request).organizations.delete_team(caller, organization, team)
    return see_other(organization_path(organization), "team-deleted")


def organization_routes() -> list[BaseRoute]:
    """The organization and team pages."""
    org = ORGANIZATIONS + "/{organization}"
    team = org + "/teams/{team}"
    team_retry = view_retry(team_view, "username")

    def organization_retry(section: str, *names: str) -> Retry:
        """The organization page again with the error next to the form of ``section``."""
        return view_retry(organization_view, *names, section=section)

    return [
        Route(ORGANIZATIONS, signed_in_page(organizations_view), methods=["GET"]),
        Route(
            ORGANIZATIONS,
            signed_in_action(create_organization, view_retry(organizations_view, "name")),
            methods=["POST"],
        ),
        Route(org, signed_in_page(organization_view), methods=["GET"]),
        Route(org + "/delete", signed_in_action(delete_organization, organization_retry("delete")), methods=["POST"]),
        Route(
            org + "/members", signed_in_action(set_member, organization_retry("members", "username")), methods=["POST"]
        ),
        Route(
            org + "/members/{username}/owner",
            signed_in_action(set_owner, organization_retry("members")),
            methods=["POST"],
        ),
        Route(
            org + "/members/{username}/remove",
            signed_in_action(remove_member, organization_retry("members")),
            methods=["POST"],
        ),
        Route(
            org + "/permissions",
            signed_in_action(
                set_namespace_grant, organization_retry("permissions", "subject_kind", "subject_name", "role")
            ),
            methods=["POST"],
        ),
        Route(
            org + "/permissions/remove",
            signed_in_action(remove_namespace_grant, organization_retry("permissions")),
            methods=["POST"],
        ),
        Route(org + "/teams", signed_in_action(create_team, organization_retry("teams", "team")), methods=["POST"]),
        Route(team, signed_in_page(team_view), methods=["GET"]),
        Route(team + "/members", signed_in_action(add_team_member, team_retry), methods=["POST"]),
        Route(team + "/members/{username}/remove", signed_in_action(remove_team_member, team_retry), methods=["POST"]),
        Route(team + "/delete", signed_in_action(delete_team, team_retry), methods=["POST"]),
    ]
