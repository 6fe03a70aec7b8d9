"""``portside tag|immutable|quota`` and ``portside repo delete``: lifecycle from the command line.

Like the account commands, each opens the registry's services for the configured data dir and
database, acts as the operator (audited as ``cli``), and closes them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import typer

from portside.cli_accounts import repos_cli
from portside.cli_common import ConfigOption, DataDirOption, echo_json, run_configured
from portside.digits import parse_digits
from portside.lifecycle.quotas import QuotaInfo
from portside.metadata.account_errors import Conflict, NotFound
from portside.registry.services import Registry

T = TypeVar("T")

CLI_ACTOR = "cli"

tags_cli = typer.Typer(help="Tag history and restores.", no_args_is_help=True)
immutable_cli = typer.Typer(help="Immutable tag rules.", no_args_is_help=True)
quotas_cli = typer.Typer(help="Namespace storage quotas.", no_args_is_help=True)


def _run(config: Path | None, data_dir: Path | None, work: Callable[[Registry], Awaitable[T]]) -> T:
    """Run one piece of work; a refusal from the services becomes its message and exit status 1."""
    return run_configured(config, data_dir, work, expected=(Conflict, NotFound))


def _size(value: int | None) -> str:
    return "unlimited" if value is None else f"{value} bytes"


def _quota_text(info: QuotaInfo) -> str:
    source = f" ({info.source})" if info.source else ""
    return (
        f"{info.namespace}: used {info.used_bytes} bytes of {_size(info.limit_bytes)}{source}, "
        f"available {_size(info.available_bytes)}"
    )


@tags_cli.command("history")
def tag_history(
    repository: Annotated[str, typer.Argument(help="The repository, or REPOSITORY:TAG for one tag.")],
    tag: Annotated[str | None, typer.Argument(help="Only this tag (default: every tag).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many changes.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per change.")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Show how a tag (or every tag of a repository) changed, newest first."""
    if tag is None and ":" in repository:
        # Repository names never hold a colon: `team/app:1.0` names the tag as users write it.
        repository, tag = repository.split(":", 1)
    view = _run(config, data_dir, lambda r: r.history.history_of(repository, tag, limit))
    for e in view.entries:
        restorable = e.recorded_at >= view.window_start
        if as_json:
            echo_json(
                {
                    "tag": e.tag,
                    "action": e.action,
                    "old_digest": e.old_digest,
                    "new_digest": e.new_digest,
                    "actor": e.actor,
                    "recorded_at": e.recorded_at.isoformat(),
                    "in_window": restorable,
                },
                indent=None,
            )
            continue
        stamp = e.recorded_at.isoformat(timespec="seconds")
        typer.echo(
            f"{stamp}  {e.tag}  {e.action:<8}  {e.old_digest or '-'} -> {e.new_digest or '-'}  "
            f"by {e.actor or 'anonymous'}{'' if restorable else '  (outside the window)'}"
        )


@tags_cli.command("restore")
def tag_restore(
    repository: str, tag: str, digest: str, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """Point TAG back at DIGEST, a digest it had within the history window (a deleted tag too)."""
    restored = _run(config, data_dir, lambda r: r.history.restore_as(CLI_ACTOR, repository, tag, digest))
    if restored.changed:
        typer.echo(f"{repository}:{tag} restored to {restored.digest} (was {restored.previous or 'deleted'})")
    else:
        typer.echo(f"{repository}:{tag} already points at {restored.digest}")


@immutable_cli.command("list")
def immutable_list(
    namespace: Annotated[str | None, typer.Option(help="Only this namespace and its repositories.")] = None,
    repository: Annotated[str | None, typer.Option(help="The rules that apply to this repository.")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """List immutable tag rules: id, scope, pattern."""

    async def work(registry: Registry) -> list[str]:
        if repository is not None:
            rules = await registry.immutability.rules_for(repository)
        else:
            rules = [
                rule
                for rule in await registry.immutability.all_rules()
                if namespace is None
                or rule.scope == namespace
                or (rule.scope_kind == "repository" and rule.scope.split("/", 1)[0] == namespace)
            ]
        return [f"{rule.id}  {rule.scope_kind} {rule.scope}  {rule.pattern}" for rule in rules]

    for line in _run(config, data_dir, work):
        typer.echo(line)


@immutable_cli.command("add")
def immutable_add(
    pattern: Annotated[str, typer.Argument(help="A glob such as 'v*' or 'release-*' (quote it in the shell).")],
    namespace: Annotated[str | None, typer.Option(help="Protect matching tags in every repository here.")] = None,
    repository: Annotated[str | None, typer.Option(help="Protect matching tags of this repository.")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Add a rule for a namespace or a repository (give exactly one)."""
    if (namespace is None) == (repository is None):
        raise typer.BadParameter("give exactly one of --namespace and --repository")
    kind: Literal["repository", "namespace"] = "namespace" if namespace is not None else "repository"
    scope = namespace if namespace is not None else repository
    assert scope is not None
    rule = _run(config, data_dir, lambda r: r.immutability.add_rule_as(CLI_ACTOR, kind, scope, pattern))
    typer.echo(f"added immutable rule {rule.id}: {rule.scope_kind} {rule.scope} {rule.pattern}")


@immutable_cli.command("remove")
def immutable_remove(rule_id: int, config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Remove a rule by id."""
    rule = _run(config, data_dir, lambda r: r.immutability.remove_rule_as(CLI_ACTOR, rule_id))
    typer.echo(f"removed immutable rule {rule.id}: {rule.scope_kind} {rule.scope} {rule.pattern}")


@quotas_cli.command("show")
def quota_show(
    namespace: Annotated[str | None, typer.Argument(help="A namespace (default: every one with a quota).")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Show a namespace's limit and usage."""

    async def work(registry: Registry) -> list[QuotaInfo]:
        if namespace is not None:
            return [await registry.quotas.info(namespace)]
        return await registry.quotas.all_quotas()

    for info in _run(config, data_dir, work):
        typer.echo(_quota_text(info))


@quotas_cli.command("set")
def quota_set(
    namespace: str,
    limit: Annotated[
        str, typer.Argument(help="Bytes, with an optional K/M/G/T suffix (powers of 1024), or 'none' to remove.")
    ],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Set (or remove with 'none') a namespace's storage quota."""
    try:
        limit_bytes = parse_size(limit)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    info = _run(config, data_dir, lambda r: r.quotas.set_as(CLI_ACTOR, namespace, limit_bytes))
    typer.echo(_quota_text(info))


_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str) -> int | None:
    """``'10G'`` as bytes; ``'none'`` as None."""
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    if value == "NONE":
        return None
    unit = value[-1:] if value[-1:] in _UNITS else ""
    number = value[: len(value) - len(unit)]
    count = parse_digits(number)
    if count is None:
        raise ValueError(f"not a size: {text!r} (try 500M, 10G or none)")
    return count * _UNITS[unit]


@repos_cli.command("delete")
def repo_delete(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Delete a repository: its tags, manifests, blob links and history (blobs go with garbage collection)."""
    if not yes:
        typer.confirm(f"Delete the repository {name} with all its tags and manifests?", abort=True)
    deleted = _run(config, data_dir, lambda r: r.repository_deletes.delete_as(CLI_ACTOR, name))
    typer.echo(
        f"deleted {deleted.repository}: {deleted.tags} tag(s), {deleted.manifests} manifest(s), "
        f"{deleted.blob_links} blob link(s)"
    )
