"""Repositories pushed before the search index existed are indexed: by the background backfill at
start, and by ``portside search reindex``; and migration 0015 gives documents written before it
their image's description.

A database from before migration 0006 is imitated by emptying the search tables of a stopped
server, one from before 0015 by emptying the documents' descriptions and setting its revision back.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable

import asyncpg
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


def run_sql(server: ServerProcess, database_url: str | None, *statements: str) -> None:
    """Run statements on a stopped server's database (its SQLite file, or PostgreSQL)."""
    if database_url is None:
        with sqlite3.connect(server.data_dir / "portside.db") as db:
            for statement in statements:
                db.execute(statement)
        return

    async def on_postgresql() -> None:
        connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(on_postgresql())


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_migration_0015_gives_documents_their_images_description(
    database: str, request: pytest.FixtureRequest, start_server: Callable[..., ServerProcess]
) -> None:
    url = request.getfixturevalue("postgres").create_database() if database == "postgresql" else None
    server = start_server(env={"PORTSIDE_DATABASE_URL": url} if url else {})
    described = {"org.opencontainers.image.description": "Said by the image"}
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        push_described_image(client, "old/plain", "v1")
        push_described_image(client, "old/said", "v1", labels={"flavour": "mint"})
        push_described_image(client, "old/said", "v2", labels=described)
        push_index(client, "old/multi", "v1", [("linux", "s390x")], labels=described)
        push_described_image(client, "old/written", "v1", labels=described)
    PortsideCli(server).run("repo", "set", "old/written", "--description", "Written by hand")
    server.stop()
    run_sql(
        server,
        url,
        "UPDATE search_documents SET description = '' WHERE repository_id NOT IN "
        "(SELECT id FROM repositories WHERE name = 'old/written')",
        "UPDATE alembic_version SET version_num = '0014_upload_first_chunk'",
    )
    server.start()
    response = httpx.get(f"{server.url}/api/v1/search", params={"q": "old", "sort": "name"}, timeout=30.0)
    assert response.status_code == 200, response.text
    shown = {hit["name"]: hit["description"] for hit in response.json()["results"]}
    assert shown == {
        "old/multi": "Said by the image",
        "old/plain": None,
        "old/said": "Said by the image",
        "old/written": "Written by hand",
    }
