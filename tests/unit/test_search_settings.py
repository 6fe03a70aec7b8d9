"""``docker_search`` switches the v1 search endpoints on and off; the search API stays."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.routing import Mount, Route

from portside.app import build_app
from portside.config import Settings


def paths(settings: Settings) -> set[str]:
    return {route.path for route in build_app(settings).routes if isinstance(route, Route | Mount)}


@pytest.mark.parametrize("enabled", [True, False])
def test_docker_search_endpoints_follow_the_setting(tmp_path: Path, enabled: bool) -> None:
    found = paths(Settings(data_dir=tmp_path, docker_search=enabled, web_ui=False))
    assert ({"/v1/_ping", "/v1/search"} <= found) is enabled
    assert "/api/v1" in found
