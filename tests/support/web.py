"""Servers and users for the web UI's management page tests (``tests/integration/test_web_*.py``, ``tests/ui/``).

:func:`web_server` starts a server in Basic mode with :data:`ADMIN` as its first administrator;
:func:`new_user` makes a user with a unique name (password :data:`PASSWORD`) through the
management API, so tests sharing a server never collide; :class:`Browser` posts the pages'
forms as a browser without scripts does.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.server import ServerProcess

ADMIN = ("root", "root-password-1")
PASSWORD = "correct-horse-battery"
ADMIN_ENV = {"PORTSIDE_ADMIN_USERNAME": ADMIN[0], "PORTSIDE_ADMIN_PASSWORD": ADMIN[1]}
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def web_server(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    request: pytest.FixtureRequest | None = None,
    **settings: str,
) -> Iterator[ServerProcess]:
    """One server for a module's tests (``yield from`` it in a module-scoped ``server`` fixture).

    Basic mode, :data:`ADMIN` as the first administrator, no sign-in throttling; ``settings``
    are more ``PORTSIDE_*`` variables. With a parametrized fixture's ``request`` whose param is
    ``"postgresql"``, the metadata is in a fresh PostgreSQL database (else SQLite).
    """
    env = {**ADMIN_ENV, "PORTSIDE_AUTH": "basic", "PORTSIDE_LOGIN_FAILURES_PER_ADDRESS": "1000", **settings}
    database = getattr(request, "param", "sqlite") if request is not None else "sqlite"
    if request is not None and database == "postgresql":
        env["PORTSIDE_DATABASE_URL"] = request.getfixturevalue("postgres").create_database()
    process = ServerProcess(tmp_path_factory.mktemp(f"{name}-{database}") / "data", workers=1, env=env).start()
    yield process
    process.stop()


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def new_user(server: ServerProcess, *, admin: bool = False) -> str:
    """A user (password :data:`PASSWORD`) made by the administrator through the management API."""
    name = unique("user")
    body = {"username": name, "password": PASSWORD, "admin": admin}
    response = httpx.post(f"{server.url}/api/v1/users", json=body, auth=ADMIN, timeout=30)
    assert response.status_code == 201, response.text
    return name


class Browser:
    """A cookie-keeping client that reads each page's CSRF token and posts forms as a browser does."""

    def __init__(self, server: ServerProcess) -> None:
        self.http = httpx.Client(base_url=server.url, timeout=30.0, follow_redirects=False)
        self.csrf = ""

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.http.close()

    def get(self, path: str) -> httpx.Response:
        response = self.http.get(path)
        found = CSRF_INPUT.search(response.text)
        if found:
            self.csrf = html.unescape(found.group(1))
        return response

    def post(self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True) -> httpx.Response:
        form = {**(data or {}), **({"csrf_token": self.csrf} if csrf else {})}
        return self.http.post(path, data=form)

    def sign_in(self, username: str, password: str = PASSWORD) -> None:
        self.get("/sign-in")
        response = self.post("/sign-in", {"username": username, "password": password, "next": "/"})
        assert response.status_code == 303, response.text
        self.get("/account/tokens")


def signed_in(server: ServerProcess, username: str) -> Browser:
    """Another browser, signed in as ``username``."""
    client = Browser(server)
    client.sign_in(username)
    return client


def notice_of(response: httpx.Response) -> str:
    """Where a successful post sends the browser."""
    assert response.status_code == 303, response.text
    return response.headers["location"]
