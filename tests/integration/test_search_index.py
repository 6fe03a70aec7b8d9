"""Repositories pushed before the search index existed are indexed: by the background backfill at
start, and by ``portside search reindex``.

A database from before migration 0006 is imitated by emptying the search tables of a stopped server.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

import httpx
import pytest

from tests.support.accounts import PortsideCli
from tests.support.described import push_described_image, push_index
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration


def forget_the_index(server: ServerProcess) -> None:
    """Empty every search table, as a database upgraded from before the index would be."""
    with sqlite3.connect(server.data_dir / "portside.db") as db:
        for table in ("search_fts", "search_documents", "search_facets", "manifest_facets"):
            db.execute(f"DELETE FROM {table}")


def found(server: ServerProcess, **params: str) -> list[str]:
    """Names the search API returns."""
    response = httpx.get(f"{server.url}/api/v1/search", params=params, timeout=30.0)
    assert response.status_code == 200, response.text
    return [hit["name"] for hit in response.json()["results"]]


def test_repositories_from_before_the_index_are_indexed_at_start_and_by_reindex(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server()
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        push_described_image(client, "old/labelled", "v1", labels={"flavour": "vanilla"})
        push_index(client, "old/multi", "v2", [("linux", "ppc64le")])
    assert found(server, q="vanilla") == ["old/labelled"]
    server.stop()
    forget_the_index(server)
    server.start()
    # The backfill job runs in the background once a worker leads: poll for it.
    deadline = time.monotonic() + 30
    while found(server, q="vanilla") != ["old/labelled"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert found(server, q="vanilla") == ["old/labelled"]
    assert found(server, label="flavour=vanilla") == ["old/labelled"]
    assert found(server, platform="linux/ppc64le") == ["old/multi"]
    server.stop()
    forget_the_index(server)
    output = PortsideCli(server).run("search", "reindex")
    assert "old/labelled: 1 manifests" in output and "old/multi: 2 manifests" in output
    assert output.endswith("2 repositories indexed")
    server.start()
    assert found(server, label="flavour=vanilla") == ["old/labelled"]
    assert found(server, q="ppc64le") == ["old/multi"]
    # A description set from the command line is searchable at once.
    PortsideCli(server).run("repo", "set", "old/multi", "--description", "Tastes of strawberry")
    assert found(server, q="strawberry") == ["old/multi"]
