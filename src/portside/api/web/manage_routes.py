"""The signed-in management pages' routes: tokens, password, organizations, robots, repository settings, admin.

They come before the browsing pages' routes so that ``/r/<name>/-/settings`` is not taken for a
repository page.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from portside.api.web.manage_admin import admin_routes
from portside.api.web.manage_lifecycle import lifecycle_routes
from portside.api.web.manage_lifecycle_admin import lifecycle_admin_routes
from portside.api.web.manage_maintenance import maintenance_routes
from portside.api.web.manage_organizations import organization_routes
from portside.api.web.manage_password import password_routes
from portside.api.web.manage_repository import repository_settings_routes
from portside.api.web.manage_robots import robot_routes
from portside.api.web.manage_tokens import token_routes
from portside.api.web.manage_webhooks import webhook_routes


def manage_routes() -> list[BaseRoute]:
    """Every signed-in management page."""
    return [
        *token_routes(),
        *password_routes(),
        *organization_routes(),
        *robot_routes(),
        *repository_settings_routes(),
        *admin_routes(),
        *lifecycle_routes(),
        *lifecycle_admin_routes(),
        *webhook_routes(),
        *maintenance_routes(),
    ]
