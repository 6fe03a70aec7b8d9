"""``portside gc`` and ``portside retention``: garbage collection and retention from the command line.

They work on the configured database and storage while servers keep serving, as the
scheduled runs do; only one garbage collection runs at a time across a cluster.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.exc import DBAPIError

from portside.config import Settings, load_settings
from portside.lifecycle.gc import GcBusy
from portside.metadata import migrate
from portside.metadata.gc_store import GcRunRecord
from portside.oci.errors import RegistryError
from portside.registry.services import Registry, build_registry

T = TypeVar("T")

ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML settings file.")]
DataDirOption = Annotated[Path | None, typer.Option("--data-dir", help="Where blobs and metadata live.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Only report what would be removed.")]


def _settings(config: Path | None, data_dir: Path | None) -> Settings:
    try:
        return load_settings(config, data_dir=data_dir)
    except (OSError, ValueError) as exc:
        typer.echo(f"portside: invalid settings: {exc}", err=True)
        raise typer.Exit(2) from exc


def run_with_registry(config: Path | None, data_dir: Path | None, work: Callable[[Registry], Awaitable[T]]) -> T:
    """Open the registry's services for the settings, do ``work``, close them; errors become messages."""
    settings = _settings(config, data_dir)

    async def main() -> T:
        await migrate.check_schema(settings.resolved_database_url)
        registry = build_registry(settings)
        try:
            return await work(registry)
        finally:
            await registry.close()

    try:
        return asyncio.run(main())
    except RegistryError as exc:
        typer.echo(f"portside: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    except (GcBusy, LookupError, ValueError, migrate.SchemaMismatch) as exc:
        typer.echo(f"portside: {exc}", err=True)
        raise typer.Exit(1) from exc
    except DBAPIError as exc:
        typer.echo(f"portside: cannot use the database at {settings.resolved_database_url}: {exc.orig}", err=True)
        raise typer.Exit(1) from exc


def gc_report(record: GcRunRecord) -> dict[str, Any]:
    """A run as JSON-ready data."""
    return {
        "id": record.id,
        "status": record.status,
        "dry_run": record.dry_run,
        "manifests_removed": record.manifests_removed,
        "links_removed": record.links_removed,
        "blobs_removed": record.blobs_removed,
        "bytes_freed": record.bytes_freed,
        "detail": record.detail,
        "error": record.error,
    }


def gc_command(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Collect garbage now: unreferenced manifests, links and blobs older than the grace period."""

    async def work(registry: Registry) -> GcRunRecord:
        return await registry.gc.run(dry_run=dry_run, trigger="cli", actor="cli")

    record = run_with_registry(config, data_dir, work)
    if as_json:
        typer.echo(json.dumps(gc_report(record), indent=2))
    else:
        verb = "would remove" if record.dry_run else "removed"
        typer.echo(
            f"garbage collection run {record.id} {record.status}: {verb} {record.manifests_removed} manifests, "
            f"{record.links_removed} blob links, {record.blobs_removed} blobs ({record.bytes_freed} bytes)"
        )
        for entry in record.detail.get("manifests", []):
            typer.echo(f"  manifest {entry['repository']}@{entry['digest']}")
        for entry in record.detail.get("blobs", []):
            typer.echo(f"  blob {entry['digest']} ({entry['size']} bytes)")
    if record.status != "done":
        raise typer.Exit(1)
