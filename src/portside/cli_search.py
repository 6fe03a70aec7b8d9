"""``portside search``: rebuild the search index from what the registry stores."""

from __future__ import annotations

from typing import Annotated

import typer

from portside.cli_common import ConfigOption, DataDirOption, run_with_registry, settings_or_exit
from portside.registry.services import Registry

search_cli = typer.Typer(help="The search index.", no_args_is_help=True)


async def _reindex(registry: Registry, repositories: list[str]) -> list[tuple[str, int]]:
    names = repositories or await registry.store.list_repositories(None, None)
    return [(name, await registry.search_index.reindex(name)) for name in names]


@search_cli.command("reindex")
def reindex(
    repositories: Annotated[list[str] | None, typer.Argument(help="Only these repositories (default: all).")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Re-read every manifest and image config and rebuild the search index (safe while serving)."""
    settings = settings_or_exit(config, data_dir=data_dir)
    # Upgrades the schema first, as it always has: the index's tables may be new.
    done = run_with_registry(settings, lambda registry: _reindex(registry, repositories or []), upgrade=True)
    for name, count in done:
        typer.echo(f"{name}: {count} manifests")
    typer.echo(f"{len(done)} repositories indexed")
