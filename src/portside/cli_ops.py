"""``portside webhook|maintenance|fsck|import|export``: operations commands over the configured database and storage.

Like the account commands, each opens the registry's services for the configured data dir and
database (so they work while a server runs on the same data, or against a cluster's database),
does one thing, and closes them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from portside.cli_common import ConfigOption, DataDirOption, JsonOption, echo_json, fail, settings_or_exit
from portside.cli_common import run_with_registry as run_on_registry
from portside.config import Settings
from portside.oci.errors import RegistryError
from portside.oci.names import validate_name
from portside.registry.fsck import Fsck, FsckReport
from portside.registry.services import Registry
from portside.transfer.exporter import ExportResult, export_docker_archive, export_oci
from portside.transfer.importer import ImportResult, store_plan
from portside.transfer.sources import OciLayout, TransferError, open_source

T = TypeVar("T")


webhook_cli = typer.Typer(help="Webhook endpoints of namespaces and their delivery log.", no_args_is_help=True)
maintenance_cli = typer.Typer(help="Read-only mode for maintenance.", no_args_is_help=True)


def run_with_registry(settings: Settings, work: Callable[[Registry], Awaitable[T]]) -> T:
    """Run ``work`` on the registry's services; known failures (with their error codes) exit with status 1."""
    return run_on_registry(settings, work, expected=(LookupError,), error_codes=True)


# Webhooks


@webhook_cli.command("list")
def webhook_list(
    namespace: Annotated[str | None, typer.Argument(help="Only this namespace.")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """List webhook endpoints (secrets are not shown)."""
    endpoints = run_with_registry(
        settings_or_exit(config, data_dir=data_dir), lambda r: r.notifier.endpoints(namespace)
    )
    rows = [
        {"id": e.id, "namespace": e.namespace, "url": e.url, "events": list(e.events), "enabled": e.enabled}
        for e in endpoints
    ]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        state = "enabled" if row["enabled"] else "disabled"
        typer.echo(f"{row['id']}\t{row['namespace']}\t{row['url']}\t{','.join(row['events'])}\t{state}")  # type: ignore[arg-type]


@webhook_cli.command("add")
def webhook_add(
    namespace: Annotated[str, typer.Argument(help="The user's or organization's namespace.")],
    url: Annotated[str, typer.Argument(help="Absolute http(s) URL the events are POSTed to.")],
    events: Annotated[
        str,
        typer.Option(
            help="Comma-separated: push, pull, delete, tag_created, tag_moved, tag_deleted, retention_scan, "
            "tag (every tag change), * (all)."
        ),
    ] = "*",
    secret: Annotated[str | None, typer.Option(help="HMAC key (default: a new random one, printed once).")] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it switched off.")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Add a webhook endpoint to a namespace and print its id and secret."""
    created = run_with_registry(
        settings_or_exit(config, data_dir=data_dir),
        lambda r: r.notifier.add_endpoint(namespace, url, events, secret, not disabled),
    )
    echo_json({"id": created.endpoint.id, "secret": created.secret}, indent=None)


@webhook_cli.command("remove")
def webhook_remove(
    webhook_id: Annotated[int, typer.Argument(help="The endpoint's id (see `portside webhook list`).")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Remove an endpoint with its delivery log."""

    async def work(registry: Registry) -> None:
        if await registry.notifier.remove_endpoint(webhook_id) is None:
            raise LookupError(f"no webhook {webhook_id}")

    run_with_registry(settings_or_exit(config, data_dir=data_dir), work)
    typer.echo(f"removed webhook {webhook_id}")


@webhook_cli.command("deliveries")
def webhook_deliveries(
    webhook_id: Annotated[int, typer.Argument(help="The endpoint's id.")],
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Show an endpoint's delivery log: status, attempts, last HTTP status and error."""

    async def work(registry: Registry) -> list[dict[str, object]]:
        if await registry.notifier.store.get_endpoint(webhook_id) is None:
            raise LookupError(f"no webhook {webhook_id}")
        return [
            {
                "id": d.id,
                "event_id": d.event_id,
                "action": d.action,
                "repository": d.repository,
                "status": d.status,
                "attempts": d.attempts,
                "last_status_code": d.last_status_code,
                "last_error": d.last_error,
                "created_at": d.created_at.isoformat(),
                "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
            }
            for d in await registry.notifier.deliveries(webhook_id, limit)
        ]

    rows = run_with_registry(settings_or_exit(config, data_dir=data_dir), work)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        typer.echo(
            f"{row['id']}\t{row['action']}\t{row['repository']}\t{row['status']}\tattempts={row['attempts']}"
            f"\tstatus={row['last_status_code']}\t{row['last_error'] or ''}"
        )


# Maintenance


def _maintenance(settings: Settings, on: bool | None) -> dict[str, bool]:
    async def work(registry: Registry) -> dict[str, bool]:
        if on is not None:
            await registry.maintenance.set_read_only(on)
            await registry.audit.record_now("cli", "maintenance", None, None, read_only=on)
        runtime = await registry.maintenance.runtime_flag()
        return {"read_only": settings.read_only or runtime, "configured": settings.read_only, "runtime": runtime}

    return run_with_registry(settings, work)


def _show_state(state: dict[str, bool], seconds: float) -> None:
    mode = "read-only" if state["read_only"] else "read-write"
    why = " (the read_only setting)" if state["configured"] else ""
    typer.echo(f"registry is {mode}{why}; runtime flag {'on' if state['runtime'] else 'off'}")
    if seconds:
        typer.echo(f"every server follows within {seconds:g} s (maintenance_cache_seconds)")


@maintenance_cli.command("on")
def maintenance_on(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Refuse every write (pushes, deletes, mutating management calls) on every node."""
    settings = settings_or_exit(config, data_dir=data_dir)
    _show_state(_maintenance(settings, True), settings.maintenance_cache_seconds)


@maintenance_cli.command("off")
def maintenance_off(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Accept writes again (unless the read_only setting is on)."""
    settings = settings_or_exit(config, data_dir=data_dir)
    _show_state(_maintenance(settings, False), settings.maintenance_cache_seconds)


@maintenance_cli.command("status")
def maintenance_status(
    as_json: JsonOption = False, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """Whether the registry is read-only."""
    state = _maintenance(settings_or_exit(config, data_dir=data_dir), None)
    if as_json:
        echo_json(state, indent=None)
    else:
        _show_state(state, 0)


# Progress bars


@contextlib.contextmanager
def progress_bar(description: str, total: int | None, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar on stderr (bytes); silent with ``--quiet`` or when stderr is not a terminal."""
    console = Console(stderr=True)
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, disable=quiet or not console.is_terminal) as progress:
        task = progress.add_task(description, total=total)
        yield lambda advance: progress.update(task, advance=advance)


# fsck


def fsck_command(
    repair: Annotated[bool, typer.Option("--repair", help="Fix what can be fixed (see docs/operations.md).")] = False,
    as_json: JsonOption = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Verify every blob's bytes against its digest, every manifest and reference, and every tag.

    Exits 0 when everything is intact (or, with --repair, when everything found was repaired),
    1 when problems remain.
    """

    async def work(registry: Registry) -> FsckReport:
        fsck = Fsck(registry.store, registry.storage)
        _, total = await fsck.total_blob_bytes()
        with progress_bar("verifying blobs", total, quiet or as_json) as advance:
            return await fsck.run(repair=repair, progress=advance)

    report = run_with_registry(settings_or_exit(config, data_dir=data_dir), work)
    if as_json:
        echo_json(report.as_json())
    else:
        typer.echo(f"checked {report.blobs} blobs ({report.blob_bytes} bytes) and {report.manifests} manifests")
        for problem in report.problems:
            line = f"{problem.kind}\t{problem.subject}\t{problem.detail}"
            if problem.repair:
                line += f"\t[{'repaired: ' if problem.repaired else ''}{problem.repair}]"
            typer.echo(line)
        remaining = len(report.unrepaired)
        typer.echo("clean" if report.clean else f"{len(report.problems)} problem(s), {remaining} not repaired")
    if report.unrepaired:
        raise typer.Exit(1)


# Import and export


def split_reference(text: str, default_tag: str | None) -> tuple[str, str | None]:
    """``name[:tag|@digest]`` into the repository name and the tag or digest (``default_tag`` if neither)."""
    if "@" in text:
        name, digest = text.split("@", 1)
        return validate_name(name), digest
    last = text.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = text.rsplit(":", 1)
        return validate_name(name), tag
    return validate_name(text), default_tag


QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
AllOption = Annotated[bool, typer.Option("--all", help="Every image of a multi-platform index, and the index.")]
PlatformOption = Annotated[
    str | None, typer.Option(help="os/arch[/variant] to take from an index without --all (default: this machine).")
]


def import_command(
    source: Annotated[Path, typer.Argument(help="An OCI image layout directory or a `docker save` tarball.")],
    repository: Annotated[str, typer.Argument(help="REPOSITORY[:TAG] to import into (tag default: the source's).")],
    ref: Annotated[
        str | None, typer.Option("--ref", "--tag", help="Which image of the source (its ref name or RepoTag).")
    ] = None,
    all_platforms: AllOption = False,
    platform: PlatformOption = None,
    quiet: QuietOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Import an image into a repository without a Docker daemon; everything is verified before storing."""
    settings = settings_or_exit(config, data_dir=data_dir)
    try:
        name, tag = split_reference(repository, None)
        opened = open_source(source)
        with progress_bar("verifying", None, quiet) as advance:
            if isinstance(opened, OciLayout):
                plan = opened.plan(ref, all_platforms, platform, advance)
            else:
                plan = opened.plan(ref, advance)
    except (TransferError, RegistryError) as exc:
        raise fail(str(exc)) from exc
    chosen_tag = tag or plan.suggested_tag or "latest"

    async def work(registry: Registry) -> ImportResult:
        with progress_bar("importing", plan.total_bytes, quiet) as advance:
            return await store_plan(registry, name, chosen_tag, plan, advance)

    result = run_with_registry(settings, work)
    typer.echo(
        f"imported {result.repository}:{result.tag} ({result.digest}, {result.media_type}): "
        f"{result.manifests} manifest(s), {result.blobs_stored} blob(s) stored, {result.blobs_present} already present"
    )


def export_command(
    reference: Annotated[str, typer.Argument(help="REPOSITORY:TAG or REPOSITORY@DIGEST to export.")],
    dest: Annotated[Path, typer.Argument(help="A directory (oci) or a tar file (docker-archive).")],
    format_: Annotated[
        str, typer.Option("--format", help="oci (an OCI image layout) or docker-archive (`docker load`).")
    ] = "oci",
    all_platforms: AllOption = False,
    platform: PlatformOption = None,
    quiet: QuietOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Write an image out as an OCI image layout or a docker-archive tarball."""
    if format_ not in ("oci", "docker-archive"):
        raise fail("--format is oci or docker-archive", 2)
    if all_platforms and format_ == "docker-archive":
        raise fail("a docker-archive holds one image; use --format oci with --all", 2)
    try:
        name, ref = split_reference(reference, "latest")
    except RegistryError as exc:
        raise fail(str(exc)) from exc
    assert ref is not None

    async def work(registry: Registry) -> ExportResult:
        with progress_bar("exporting", None, quiet) as advance:
            if format_ == "oci":
                return await export_oci(
                    registry, name, ref, dest, all_platforms=all_platforms, platform=platform, progress=advance
                )
            return await export_docker_archive(registry, name, ref, dest, platform=platform, progress=advance)

    result = run_with_registry(settings_or_exit(config, data_dir=data_dir), work)
    typer.echo(
        f"exported {name}@{result.digest} to {dest} ({format_}): {result.manifests} manifest(s), {result.blobs} blob(s)"
    )
