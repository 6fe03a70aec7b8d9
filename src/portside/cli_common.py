"""What the ``portside`` commands share: their options, loading settings, and running work on the services.

A command that works on the registry opens its services for the configured data dir and
database (so it works while a server runs on the same data, or against a cluster's database),
does one thing, and closes them; known failures become one line on stderr and exit status 1.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from sqlalchemy.exc import DBAPIError

from portside.config import Settings, load_settings
from portside.metadata import migrate
from portside.oci.errors import RegistryError
from portside.registry.services import Registry, build_registry

T = TypeVar("T")

ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML settings file.")]
DataDirOption = Annotated[Path | None, typer.Option("--data-dir", help="Where blobs and metadata live.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def settings_or_exit(config: Path | None, **overrides: object) -> Settings:
    """Load settings, turning a bad file or value into a short message and exit status 2."""
    try:
        return load_settings(config, **overrides)
    except (OSError, ValueError) as exc:
        raise fail(f"invalid settings: {exc}", 2) from exc


def fail(message: str, status: int = 1) -> typer.Exit:
    """Print ``portside: message`` on stderr; the exit (status 1, or 2 for a usage error) for the caller to raise."""
    typer.echo(f"portside: {message}", err=True)
    return typer.Exit(status)


def echo_json(value: object, indent: int | None = 2) -> None:
    """Print ``value`` as JSON (indented, or on one line with ``indent=None``)."""
    typer.echo(json.dumps(value, indent=indent))


def run_with_registry(
    settings: Settings,
    work: Callable[[Registry], Awaitable[T]],
    *,
    expected: tuple[type[Exception], ...] = (),
    error_codes: bool = False,
    upgrade: bool = False,
) -> T:
    """Run ``work`` on the registry's services for ``settings``, closing them after.

    A ``ValueError``, a schema that does not match, one of the ``expected`` exceptions or a
    service's refusal (with its error code and detail when ``error_codes``) becomes its message
    and exit status 1, as does a database that cannot be used. ``upgrade`` migrates the schema
    first instead of only checking it.
    """

    async def main() -> T:
        url = settings.resolved_database_url
        await (migrate.upgrade(url) if upgrade else migrate.check_schema(url))
        registry = build_registry(settings)
        try:
            return await work(registry)
        finally:
            await registry.close()

    known: tuple[type[Exception], ...] = (ValueError, migrate.SchemaMismatch, *expected)
    try:
        return asyncio.run(main())
    except RegistryError as exc:
        if error_codes:
            detail = f" ({json.dumps(exc.detail)})" if exc.detail else ""
            raise fail(f"{exc.kind.spec.code}: {exc.message}{detail}") from exc
        raise fail(exc.message) from exc
    except known as exc:
        raise fail(str(exc)) from exc
    except DBAPIError as exc:
        raise fail(
            f"cannot use the database at {settings.resolved_database_url}: {exc.orig}; "
            "check database_url / data_dir, and run `portside migrate` first"
        ) from exc


def run_configured(
    config: Path | None,
    data_dir: Path | None,
    work: Callable[[Registry], Awaitable[T]],
    *,
    expected: tuple[type[Exception], ...] = (),
    error_codes: bool = False,
) -> T:
    """:func:`run_with_registry` on the settings from ``--config`` and ``--data-dir``."""
    settings = settings_or_exit(config, data_dir=data_dir)
    return run_with_registry(settings, work, expected=expected, error_codes=error_codes)
