"""The web UI: server-rendered pages for browsers, mounted at ``/`` when ``web_ui`` is on.

:func:`build_web` makes the services (called in the app's lifespan, kept on
``app.state.web``); :func:`web_routes` is the route table the app appends after the
registry's own routes, so ``/v2``, ``/v1``, ``/token`` and ``/api/v1`` are never shadowed.
``docs/web-ui.md`` tells how to add a page.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from jinja2 import Environment, FileSystemLoader
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from portside.api.web import account_pages, browse_pages, formatting
from portside.api.web.manage_routes import manage_routes
from portside.api.web.pages import WebUI, page
from portside.auth.web_sessions import WebSessions, load_web_key
from portside.config import Settings
from portside.metadata.web_session_store import WebSessionStore
from portside.registry.browse import BrowseService
from portside.registry.services import Registry

HERE = Path(__file__).parent


def template_environment() -> Environment:
    """Jinja2 over ``templates/``, autoescaping everything (user content is always escaped)."""
    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        size=formatting.human_size,
        short_digest=formatting.short_digest,
        timestamp=formatting.timestamp,
    )
    environment.globals.update(
        repository_path=formatting.repository_path,
        tag_path=formatting.tag_path,
        manifest_path=formatting.manifest_path,
        namespace_path=formatting.namespace_path,
        pull_command=formatting.pull_command,
    )
    return environment


def build_web(settings: Settings, registry: Registry) -> WebUI:
    """The web UI's services over the registry's."""
    sessions = WebSessions(
        WebSessionStore(registry.store),
        registry.accounts,
        registry.audit,
        load_web_key(settings.resolved_keys_dir),
        timedelta(hours=settings.web_session_hours),
    )
    browse = BrowseService(registry.store, registry.blobs, registry.referrers)
    return WebUI(settings, registry, sessions, template_environment(), browse)


def web_routes() -> list[BaseRoute]:
    """Every page of the web UI; added to the app after the registry's routes."""
    return [
        # The signed-in management pages (first: /r/<name>/-/settings before /r/<path>).
        *manage_routes(),
        Route("/", page(browse_pages.home), methods=["GET"]),
        Route("/search", page(browse_pages.search), methods=["GET"]),
        Route("/sign-in", page(account_pages.sign_in), methods=["GET", "POST"]),
        Route("/sign-out", page(account_pages.sign_out), methods=["POST"]),
        Route("/sign-up", page(account_pages.sign_up), methods=["GET", "POST"]),
        Route("/n/{namespace}", page(browse_pages.namespace), methods=["GET"]),
        Route("/r/{path:path}", page(browse_pages.repository_dispatch), methods=["GET"]),
        Route("/r/{path:path}", page(browse_pages.repository_post), methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
