"""Robot accounts of a user's or organization's namespace and their tokens [namespace admins].

A robot logs in as ``<namespace>+<name>`` with one of its tokens; like a personal access token,
a robot token's secret is shown once, on the answer to the post that made it.
"""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from portside.api.web import form_values as fields
from portside.api.web.manage_common import (
    FRESH,
    FormState,
    path_part,
    render,
    see_other,
    services,
    signed_in_action,
    signed_in_page,
    view_retry,
)
from portside.auth.management.guards import Caller
from portside.auth.management.tokens import MAX_EXPIRY_DAYS, MAX_TOKEN_NAME

ROBOTS = "/robots"
ROBOT_FIELDS = ("name", "description")
TOKEN_FIELDS = ("token_name", "max_role", "expires_in_days")


def robots_path(namespace: str) -> str:
    """A namespace's robots page."""
    return f"{ROBOTS}/{path_part(namespace)}"


def robot_path(namespace: str, name: str) -> str:
    """One robot's page."""
    return f"{robots_path(namespace)}/{path_part(name)}"


async def robots_view(request: Request, caller: Caller, state: FormState = FRESH) -> Response:
    """A namespace's robots and the form to create one."""
    namespace = request.path_params["namespace"]
    robots = await services(request).robots.list_in(caller, namespace)
    context = {"namespace": namespace, "robots": robots, "error": state.error, "values": state.values}
    return await render(request, "manage/robots.html", context, state.status)


async def own_robots(request: Request, caller: Caller) -> Response:
    """GET /account/robots: the signed-in user's own namespace's robots."""
    return RedirectResponse(robots_path(caller.principal.name), status_code=303)


async def create_robot(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /robots/{namespace}."""
    namespace = request.path_params["namespace"]
    name = fields.required(form, "name", "a robot name")
    description = fields.text(form, "description") or None
    robot = await services(request).robots.create(caller, namespace, name, description)
    return see_other(robot_path(namespace, robot.name), "robot-created")


async def robot_view(request: Request, caller: Caller, state: FormState = FRESH) -> Response:
    """One robot: its tokens and the form to make one."""
    namespace, name = request.path_params["namespace"], request.path_params["name"]
    management = services(request)
    robot = await management.robots.get(caller, namespace, name)
    tokens = await management.robots.tokens(caller, namespace, name)
    context = {
        "robot": robot,
        "tokens": tokens,
        "base": robot_path(namespace, name),
        "robots_base": robots_path(namespace),
        "roles": fields.ROLE_CHOICES,
        "max_expiry_days": MAX_EXPIRY_DAYS,
        "max_name": MAX_TOKEN_NAME,
        "error": state.error,
        "values": state.values or {"max_role": "pull", "expires_in_days": ""},
    }
    return await render(request, "manage/robot.html", context, state.status)


async def create_robot_token(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /robots/{namespace}/{name}/tokens: the secret is on this answer only (``no-store``)."""
    namespace, name = request.path_params["namespace"], request.path_params["name"]
    issued = await services(request).robots.create_token(
        caller,
        namespace,
        name,
        fields.required(form, "token_name", "a token name"),
        fields.role(form, "max_role"),
        fields.expiry_days(form),
    )
    context = {
        "token": issued.token,
        "secret": issued.secret,
        "back": robot_path(namespace, name),
        "login_name": f"{namespace}+{name}",
    }
    return await render(request, "manage/token_created.html", context, 201, secret=True)


async def revoke_robot_token(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /robots/{namespace}/{name}/tokens/{token_id}/revoke."""
    namespace, name = request.path_params["namespace"], request.path_params["name"]
    token_id = fields.identifier(request.path_params["token_id"], "token")
    await services(request).robots.revoke_token(caller, namespace, name, token_id)
    return see_other(robot_path(namespace, name), "token-revoked")


async def delete_robot(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /robots/{namespace}/{name}/delete: the robot, its tokens and grants go."""
    namespace, name = request.path_params["namespace"], request.path_params["name"]
    await services(request).robots.delete(caller, namespace, name)
    return see_other(robots_path(namespace), "robot-deleted")


def robot_routes() -> list[BaseRoute]:
    """The robot pages."""
    namespace = ROBOTS + "/{namespace}"
    robot = namespace + "/{name}"
    return [
        Route("/account/robots", signed_in_page(own_robots), methods=["GET"]),
        Route(namespace, signed_in_page(robots_view), methods=["GET"]),
        Route(namespace, signed_in_action(create_robot, view_retry(robots_view, *ROBOT_FIELDS)), methods=["POST"]),
        Route(robot, signed_in_page(robot_view), methods=["GET"]),
        Route(
            robot + "/tokens",
            signed_in_action(create_robot_token, view_retry(robot_view, *TOKEN_FIELDS)),
            methods=["POST"],
        ),
        Route(robot + "/tokens/{token_id}/revoke", signed_in_action(revoke_robot_token), methods=["POST"]),
        Route(robot + "/delete", signed_in_action(delete_robot), methods=["POST"]),
    ]
