"""Shared fixtures: a real Portside server process and an HTTP client for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import ServerProcess


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server (two workers, as in production) shared by the tests of a session."""
    server = ServerProcess(tmp_path_factory.mktemp("registry") / "data", workers=2).start()
    yield server
    server.stop()


@pytest.fixture
def client(registry: ServerProcess) -> Iterator[httpx.Client]:
    """An HTTP client bound to the shared server."""
    with httpx.Client(base_url=registry.url, timeout=60.0) as http:
        yield http


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start private servers (for crash and restart tests); all are stopped afterwards."""
    started: list[ServerProcess] = []

    def start(
        data_dir: Path | None = None,
        workers: int = 1,
        env: dict[str, str] | None = None,
        port: int = 0,
        extra_args: list[str] | None = None,
    ) -> ServerProcess:
        server = ServerProcess(
            data_dir or tmp_path / "data", workers=workers, env=env or {}, port=port, extra_args=extra_args or []
        ).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
