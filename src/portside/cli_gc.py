"""``portside gc`` and ``portside retention``: garbage collection and retention from the command line.

They work on the configured database and storage while servers keep serving, as the
scheduled runs do; only one garbage collection runs at a time across a cluster.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from portside.cli_common import ConfigOption, DataDirOption, JsonOption, echo_json, fail, run_configured
from portside.digits import parse_digits
from portside.lifecycle.gc import GcBusy
from portside.lifecycle.retention import PolicyInput
from portside.lifecycle.retention_policy import Policy
from portside.metadata.gc_store import GcRunRecord
from portside.metadata.retention_store import PolicyRecord, RetentionRunRecord
from portside.registry.services import Registry

T = TypeVar("T")

DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Only report what would be removed.")]


def run_with_registry(config: Path | None, data_dir: Path | None, work: Callable[[Registry], Awaitable[T]]) -> T:
    """Open the registry's services for the settings, do ``work``, close them; errors become messages."""
    return run_configured(config, data_dir, work, expected=(GcBusy, LookupError))


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
        echo_json(gc_report(record))
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


retention_cli = typer.Typer(help="Retention policies and runs.", no_args_is_help=True)

CLI_ACTOR = "cli"


def _duration(value: str | None) -> timedelta | None:
    """``90s``, ``30m``, ``12h``, ``7d``, ``2w`` or plain seconds."""
    if value is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = value.strip().lower()
    scale = units.get(text[-1:])
    number = text[:-1] if scale is not None else text
    count = parse_digits(number)
    if count is None:
        raise typer.BadParameter(f"{value!r} is not a duration such as 90s, 30m, 12h, 7d or 2w")
    return timedelta(seconds=count * (scale or 1))


def _policy_line(record: PolicyRecord) -> str:
    policy = record.policy
    parts = [f"{record.id}: {record.scope_kind} {record.scope} tags {policy.tag_pattern!r}"]
    if policy.keep_last is not None:
        parts.append(f"keep last {policy.keep_last}")
    if policy.delete_older_than is not None:
        parts.append(f"delete older than {policy.delete_older_than}")
    if policy.untagged_after is not None:
        parts.append(f"untagged after {policy.untagged_after}")
    if policy.keep_pulled_within is not None:
        parts.append(f"keep pulled within {policy.keep_pulled_within}")
    return ", ".join(parts)


@retention_cli.command("list")
def retention_list(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """List every retention policy."""

    async def work(registry: Registry) -> list[PolicyRecord]:
        return await registry.retention.all_policies()

    for record in run_with_registry(config, data_dir, work):
        typer.echo(_policy_line(record))


@retention_cli.command("add")
def retention_add(
    scope: Annotated[str, typer.Argument(help="A repository name, or a namespace with --namespace.")],
    namespace: Annotated[bool, typer.Option("--namespace", help="SCOPE is a namespace.")] = False,
    tags: Annotated[str, typer.Option("--tags", help="Glob of the tags the policy covers.")] = "*",
    keep_last: Annotated[int | None, typer.Option("--keep-last", min=0, help="Keep the newest N tags.")] = None,
    older_than: Annotated[str | None, typer.Option("--older-than", help="Delete tags older than (e.g. 30d).")] = None,
    untagged_after: Annotated[
        str | None, typer.Option("--untagged-after", help="Delete untagged manifests this old.")
    ] = None,
    pulled_within: Annotated[
        str | None, typer.Option("--keep-pulled-within", help="Keep anything pulled within.")
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Add a retention policy to a repository or namespace."""
    try:
        policy = Policy(
            tag_pattern=tags,
            keep_last=keep_last,
            delete_older_than=_duration(older_than),
            untagged_after=_duration(untagged_after),
            keep_pulled_within=_duration(pulled_within),
        )
    except ValueError as exc:
        raise fail(str(exc)) from exc
    item = PolicyInput("namespace" if namespace else "repository", scope, policy)

    async def work(registry: Registry) -> PolicyRecord:
        return await registry.retention.add_policy_as(CLI_ACTOR, item)

    typer.echo(f"added policy {_policy_line(run_with_registry(config, data_dir, work))}")


@retention_cli.command("remove")
def retention_remove(
    policy_id: Annotated[int, typer.Argument(help="The policy's id (see `portside retention list`).")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Remove a retention policy."""

    async def work(registry: Registry) -> PolicyRecord:
        return await registry.retention.remove_policy_as(CLI_ACTOR, policy_id)

    typer.echo(f"removed policy {_policy_line(run_with_registry(config, data_dir, work))}")


@retention_cli.command("run")
def retention_run(
    policy_id: Annotated[int | None, typer.Option("--policy", help="Only this policy (default: all).")] = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Apply retention now (or, with --dry-run, show exactly what would go)."""

    async def work(registry: Registry) -> RetentionRunRecord:
        return await registry.retention.run(dry_run=dry_run, trigger="cli", actor=CLI_ACTOR, policy_id=policy_id)

    record = run_with_registry(config, data_dir, work)
    if as_json:
        echo_json(
            {
                "id": record.id,
                "status": record.status,
                "dry_run": record.dry_run,
                "removed": record.removed,
                "error": record.error,
            }
        )
    else:
        verb = "would remove" if record.dry_run else "removed"
        typer.echo(f"retention run {record.id} {record.status}: {verb} {len(record.removed)}")
        for item in record.removed:
            typer.echo(f"  {item['kind']} {item['repository']} {item['reference']}")
    if record.status != "done":
        raise typer.Exit(1)
