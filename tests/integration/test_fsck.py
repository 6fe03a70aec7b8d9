"""``portside fsck`` on a filesystem data dir: corrupt and missing blobs, a corrupt manifest, a dangling tag."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from portside.cli import cli as portside
from tests.support.accounts import PortsideCli
from tests.support.protocol import Image, push_blob, push_image, sha256, unique_repo
from tests.support.server import ServerProcess


def blob_file(server: ServerProcess, digest: str) -> Path:
    """Where the filesystem driver keeps a blob."""
    algorithm, encoded = digest.split(":")
    return server.data_dir / "storage" / "blobs" / algorithm / encoded[:2] / encoded


def fsck(cli: PortsideCli, *args: str) -> tuple[int, dict[str, Any]]:
    """Run ``portside fsck --json ARGS``; its exit status and report."""
    argv = ["fsck", "--json", *args, "--data-dir", str(cli.server.data_dir)]
    env = {key: value for key, value in cli.server.env.items() if key != "PORTSIDE_AUTH"}
    result = CliRunner().invoke(portside, argv, env=env, catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)


def execute(server: ServerProcess, statement: str, **params: object) -> None:
    """Change the server's database behind its back (to break it)."""
    url = server.env.get("PORTSIDE_DATABASE_URL") or f"sqlite+aiosqlite:///{server.data_dir / 'portside.db'}"

    async def run() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text(statement), params)
        await engine.dispose()

    asyncio.run(run())


def kinds(report: dict[str, Any]) -> set[tuple[str, str]]:
    """(kind, subject) of every problem."""
    return {(p["kind"], p["subject"]) for p in report["problems"]}


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_fsck_reports_and_repairs_broken_content(
    tmp_path: Path, start_server: Callable[..., ServerProcess], request: pytest.FixtureRequest, database: str
) -> None:
    env: dict[str, str] = {}
    if database == "postgresql":
        env["PORTSIDE_DATABASE_URL"] = request.getfixturevalue("postgres").create_database()
    server = start_server(data_dir=tmp_path / "data", env=env)
    cli = PortsideCli(server)
    repos = [unique_repo("fsck") for _ in range(3)]
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        # Layers over 64 KiB are files in blob storage; the small configs are kept in the database.
        images: list[Image] = [push_image(client, repo, "v1", layers=1, layer_size=80 * 1024) for repo in repos]

        status, report = fsck(cli)
        assert (status, report["clean"], report["problems"]) == (0, True, [])
        assert report["checked"]["blobs"] == 6 and report["checked"]["manifests"] == 3
        assert report["checked"]["blob_bytes"] == sum(len(i.config) + len(i.layers[0]) for i in images)
        assert "clean" in cli.run("fsck", "--quiet")

        corrupt_layer, missing_layer = sha256(images[0].layers[0]), sha256(images[1].layers[0])
        path = blob_file(server, corrupt_layer)
        path.write_bytes(bytes(b ^ 0xFF for b in path.read_bytes()))
        blob_file(server, missing_layer).unlink()
        corrupt_config = sha256(images[1].config)
        assert not blob_file(server, corrupt_config).exists()
        flipped = bytes(b ^ 0xFF for b in images[1].config)
        execute(server, "UPDATE blob_contents SET content = :c WHERE digest = :d", c=flipped, d=corrupt_config)
        altered = images[2].manifest + b" "
        execute(
            server, "UPDATE manifests SET content = :content WHERE digest = :d", content=altered, d=images[2].digest
        )
        # A tag left pointing at a manifest that is gone.
        extra = push_image(client, repos[2], "old", layers=1)
        execute(server, "DELETE FROM manifests WHERE digest = :d", d=extra.digest)

        status, report = fsck(cli)
        assert status == 1 and not report["clean"]
        assert kinds(report) == {
            ("blob-corrupt", corrupt_layer),
            ("blob-missing", missing_layer),
            ("blob-corrupt", corrupt_config),
            ("manifest-corrupt", f"{repos[2]}@{images[2].digest}"),
            ("tag-dangling", f"{repos[2]}:old"),
        }
        assert not any(p["repaired"] for p in report["problems"])
        text = cli.run("fsck", "--quiet", check=False)
        assert "blob-corrupt" in text and "5 problem(s), 5 not repaired" in text

        status, report = fsck(cli, "--repair")
        assert status == 1  # the two manifests whose layers were removed wait for a push
        assert {(p["kind"], p["repaired"]) for p in report["problems"]} == {
            ("blob-corrupt", True),
            ("blob-missing", True),
            ("manifest-corrupt", True),
            ("tag-dangling", True),
            ("reference-missing", False),
        }
        assert {p["subject"] for p in report["problems"] if p["kind"] == "reference-missing"} == {
            f"{repos[0]}@{images[0].digest}",
            f"{repos[1]}@{images[1].digest}",
        }
        assert not blob_file(server, corrupt_layer).exists()
        assert client.head(f"/v2/{repos[0]}/blobs/{corrupt_layer}").status_code == 404
        assert client.head(f"/v2/{repos[1]}/blobs/{corrupt_config}").status_code == 404
        assert client.get(f"/v2/{repos[2]}/manifests/{images[2].digest}").status_code == 404
        assert client.get(f"/v2/{repos[2]}/manifests/old").status_code == 404

        # The next push uploads the removed layers again, and everything is whole.
        push_blob(client, repos[0], images[0].layers[0])
        push_blob(client, repos[1], images[1].layers[0])
        push_blob(client, repos[1], images[1].config)
        status, report = fsck(cli)
        assert (status, report["problems"]) == (0, [])
        pulled = client.get(f"/v2/{repos[0]}/blobs/{corrupt_layer}")
        assert pulled.content == images[0].layers[0]
