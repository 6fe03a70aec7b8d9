"""The ``portside`` command."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from portside.cli_accounts import grants_cli, keys_cli, orgs_cli, repos_cli, robots_cli, tokens_cli, users_cli
from portside.cli_common import DataDirOption, settings_or_exit
from portside.cli_gc import gc_command, retention_cli
from portside.cli_lifecycle import immutable_cli, quotas_cli, tags_cli
from portside.cli_ops import export_command, fsck_command, import_command, maintenance_cli, webhook_cli
from portside.cli_search import search_cli
from portside.config import REVEAL_SECRETS, SETTINGS_ENV, Settings
from portside.metadata import migrate
from portside.observability.metrics import MULTIPROC_ENV, prepare_multiprocess_dir
from portside.registry.services import build_registry, build_token_issuer

cli = typer.Typer(help="Portside: a Docker/OCI container registry.", no_args_is_help=True, add_completion=False)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file (PORTSIDE_* variables override it).")
]


def _prepare(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    if settings.auto_migrate:
        asyncio.run(migrate.upgrade(url))
    else:
        asyncio.run(migrate.check_schema(url))
    # The first signing key is made here, once, before the workers start.
    build_token_issuer(settings)
    if settings.admin_username and settings.admin_password:
        asyncio.run(_bootstrap_admin(settings, settings.admin_username, settings.admin_password.get_secret_value()))


async def _bootstrap_admin(settings: Settings, username: str, password: str) -> None:
    registry = build_registry(settings)
    try:
        if await registry.accounts.store.count_users() == 0:
            await registry.accounts.create_user(username, password, admin=True)
            typer.echo(f"created administrator {username!r}")
    finally:
        await registry.close()


@cli.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port.")] = None,
    data_dir: DataDirOption = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
) -> None:
    """Serve the registry API."""
    settings = settings_or_exit(config, host=host, port=port, data_dir=data_dir, workers=workers)
    settings = settings.model_copy(update={"data_dir": settings.data_dir.resolve()})
    try:
        _prepare(settings)
    except migrate.SchemaMismatch as exc:
        typer.echo(f"portside: {exc}", err=True)
        raise typer.Exit(2) from exc
    os.environ[SETTINGS_ENV] = settings.model_dump_json(context=REVEAL_SECRETS)
    # One metrics directory per server, emptied now: the workers' counters add up in it.
    metrics_dir = settings.data_dir / "run" / f"metrics-{settings.port or os.getpid()}"
    os.environ[MULTIPROC_ENV] = str(prepare_multiprocess_dir(metrics_dir))
    # The serving process starts afresh, without this command's modules (see portside.serving).
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "portside.serving"])  # noqa: S606 - this interpreter, a fixed module


@cli.command(name="migrate")
def migrate_command(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Bring the metadata database schema up to date."""
    settings = settings_or_exit(config, data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(migrate.upgrade(settings.resolved_database_url))
    typer.echo(f"database at revision {migrate.head_revision()}")


@cli.command()
def config(config: ConfigOption = None) -> None:
    """Print the settings in effect (file, environment and defaults resolved) as JSON."""
    typer.echo(settings_or_exit(config).model_dump_json(indent=2))


cli.command(name="gc")(gc_command)
cli.add_typer(retention_cli, name="retention")
cli.add_typer(users_cli, name="user")
cli.add_typer(orgs_cli, name="org")
cli.add_typer(robots_cli, name="robot")
cli.add_typer(tokens_cli, name="token")
cli.add_typer(grants_cli, name="grant")
cli.add_typer(repos_cli, name="repo")
cli.add_typer(keys_cli, name="keys")
cli.add_typer(tags_cli, name="tag")
cli.add_typer(immutable_cli, name="immutable")
cli.add_typer(quotas_cli, name="quota")
cli.add_typer(search_cli, name="search")
cli.add_typer(webhook_cli, name="webhook")
cli.add_typer(maintenance_cli, name="maintenance")
cli.command(name="fsck")(fsck_command)
cli.command(name="import")(import_command)
cli.command(name="export")(export_command)


def main() -> None:
    """Entry point of the console script."""
    cli()
