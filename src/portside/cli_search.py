"""``portside search``: rebuild the search index from what the registry stores."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from portside.config import load_settings
from portside.metadata import migrate
from portside.registry.services import build_registry

search_cli = typer.Typer(help="The search index.", no_args_is_help=True)


async def _reindex(config: Path | None, data_dir: Path | None, repositories: list[str]) -> list[tuple[str, int]]:
    settings = load_settings(config, data_dir=data_dir)
    await migrate.upgrade(settings.resolved_database_url)
    registry = build_registry(settings)
    try:
        names = repositories or await registry.store.list_repositories(None, None)
        return [(name, await registry.search_index.reindex(name)) for name in names]
    finally:
        await registry.close()


@search_cli.command("reindex")
def reindex(
    repositories: Annotated[list[str] | None, typer.Argument(help="Only these repositories (default: all).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML settings file.")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Where blobs and metadata live.")] = None,
) -> None:
    """Re-read every manifest and image config and rebuild the search index (safe while serving)."""
    done = asyncio.run(_reindex(config, data_dir, repositories or []))
    for name, count in done:
        typer.echo(f"{name}: {count} manifests")
    typer.echo(f"{len(done)} repositories indexed")
