"""``portside user|org|team|robot|token|grant|repo``: account administration from the command line.

Each command opens the registry's services for the configured data dir and database,
does one thing through :class:`~portside.auth.accounts.AccountService`, and closes them.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from portside.auth.accounts import validate_account_name
from portside.auth.roles import Role
from portside.auth.tokens import KeyRing
from portside.cli_common import ConfigOption, DataDirOption, echo_json, run_configured, settings_or_exit
from portside.metadata.accounts_store import Conflict, NotFound
from portside.metadata.records import RepositoryRecord
from portside.registry.services import Registry

T = TypeVar("T")


users_cli = typer.Typer(help="Manage users.", no_args_is_help=True)
orgs_cli = typer.Typer(help="Manage organizations, their members and teams.", no_args_is_help=True)
robots_cli = typer.Typer(help="Manage robot accounts.", no_args_is_help=True)
tokens_cli = typer.Typer(help="Manage personal access tokens and robot tokens.", no_args_is_help=True)
grants_cli = typer.Typer(help="Grant and revoke permissions.", no_args_is_help=True)
repos_cli = typer.Typer(help="Repository settings.", no_args_is_help=True)
keys_cli = typer.Typer(help="Token signing keys.", no_args_is_help=True)


def _run(config: Path | None, data_dir: Path | None, work: Callable[[Registry], Awaitable[T]]) -> T:
    """Run one piece of account work; known failures become a message and exit status 1."""
    return run_configured(config, data_dir, work, expected=(Conflict, NotFound))


def _password(password: str | None, from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return password


@users_cli.command("create")
def user_create(
    username: str,
    password: Annotated[str | None, typer.Option(help="Password (prefer --password-stdin).")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    admin: Annotated[bool, typer.Option("--admin", help="Make the user a site administrator.")] = False,
    email: Annotated[str | None, typer.Option(help="Email address.")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a user."""
    secret = _password(password, password_stdin)
    user = _run(config, data_dir, lambda r: r.accounts.create_user(username, secret, email=email, admin=admin))
    typer.echo(f"created {'administrator' if user.is_admin else 'user'} {user.username}")


@users_cli.command("list")
def user_list(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """List users."""
    for user in _run(config, data_dir, lambda r: r.accounts.store.list_users()):
        typer.echo(f"{user.username}{'  (admin)' if user.is_admin else ''}")


@users_cli.command("password")
def user_password(
    username: str,
    password: Annotated[str | None, typer.Option(help="New password (prefer --password-stdin).")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Set a user's password."""
    secret = _password(password, password_stdin)
    if not secret:
        raise typer.BadParameter("give --password or --password-stdin")
    _run(config, data_dir, lambda r: r.accounts.set_password(username, secret))
    typer.echo(f"password of {username} changed")


@users_cli.command("delete")
def user_delete(username: str, config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Delete a user with their tokens and grants."""
    _run(config, data_dir, lambda r: r.accounts.store.delete_user(username))
    typer.echo(f"deleted {username}")


@orgs_cli.command("create")
def org_create(name: str, owner: str, config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Create an organization owned by a user."""
    validate_account_name(name, "organization name")
    _run(config, data_dir, lambda r: r.accounts.store.create_organization(name, owner))
    typer.echo(f"created organization {name} owned by {owner}")


@orgs_cli.command("member")
def org_member(
    organization: str,
    username: str,
    owner: Annotated[bool, typer.Option("--owner", help="Make the member an owner.")] = False,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the member instead.")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Add, promote or remove an organization member."""
    if remove:
        _run(config, data_dir, lambda r: r.accounts.store.remove_member(organization, username))
        typer.echo(f"removed {username} from {organization}")
        return
    _run(config, data_dir, lambda r: r.accounts.store.set_member(organization, username, owner))
    typer.echo(f"{username} is {'an owner' if owner else 'a member'} of {organization}")


@orgs_cli.command("team")
def org_team(
    organization: str,
    team: str,
    add: Annotated[list[str] | None, typer.Option("--add", help="Add this user (repeatable).")] = None,
    remove: Annotated[list[str] | None, typer.Option("--remove", help="Remove this user (repeatable).")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a team if needed and change its members."""

    async def work(registry: Registry) -> None:
        store = registry.accounts.store
        validate_account_name(team, "team name")
        with contextlib.suppress(Conflict):
            await store.create_team(organization, team)
        for username in add or []:
            await store.set_team_member(organization, team, username, True)
        for username in remove or []:
            await store.set_team_member(organization, team, username, False)

    _run(config, data_dir, work)
    typer.echo(f"team {organization}/{team} updated")


@robots_cli.command("create")
def robot_create(
    namespace: str,
    name: str,
    description: Annotated[str | None, typer.Option(help="What the robot is for.")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a robot account ``<namespace>+<name>``."""
    validate_account_name(name, "robot name")
    robot = _run(config, data_dir, lambda r: r.accounts.store.create_robot(namespace, name, description))
    typer.echo(f"created robot {robot.full_name}")


@tokens_cli.command("create")
def token_create(
    owner: Annotated[str, typer.Argument(help="A username, or a robot as <namespace>+<name>.")],
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    role: Annotated[str, typer.Option(help="The most it may do: pull, push, delete or admin.")] = "admin",
    expires_days: Annotated[int | None, typer.Option(min=1, help="Expire after this many days.")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a token and print its secret (shown only once); use it as a password with docker login."""
    max_role = Role.parse(role)
    expires = datetime.now(UTC) + timedelta(days=expires_days) if expires_days else None

    async def work(registry: Registry) -> str:
        store = registry.accounts.store
        kind = "robot" if "+" in owner else "user"
        owner_id = await store.subject_id(kind, owner)
        issued = await registry.accounts.issue_token(kind, owner_id, name, max_role, expires)
        return issued.secret

    typer.echo(_run(config, data_dir, work))


@grants_cli.command("set")
def grant_set(
    subject: Annotated[str, typer.Argument(help="user:NAME, team:ORG/TEAM or robot:NS+NAME")],
    target: Annotated[str, typer.Argument(help="repository:NAME or namespace:NAME")],
    role: Annotated[str, typer.Argument(help="pull, push, delete or admin")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Grant a role to a user, team or robot on a repository or a namespace."""
    subject_kind, _, subject_name = subject.partition(":")
    target_kind, _, target_name = target.partition(":")
    if subject_kind not in ("user", "team", "robot") or target_kind not in ("repository", "namespace"):
        raise typer.BadParameter("subject is user:|team:|robot:..., target is repository:|namespace:...")
    parsed = Role.parse(role)

    async def work(registry: Registry) -> None:
        store = registry.accounts.store
        subject_id = await store.subject_id(subject_kind, subject_name)
        await store.set_grant(subject_kind, subject_id, target_kind, target_name, parsed.label)
        await registry.audit.record_now("cli", "grant", target, None, subject=subject, role=parsed.label)

    _run(config, data_dir, work)
    typer.echo(f"granted {parsed.label} on {target} to {subject}")


@repos_cli.command("set")
def repo_set(
    name: str,
    public: Annotated[bool | None, typer.Option("--public/--private", help="Visibility.")] = None,
    description: Annotated[str | None, typer.Option(help="Short description.")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Change a repository's visibility or description."""

    async def work(registry: Registry) -> RepositoryRecord:
        record = await registry.accounts.store.update_repository(name, public=public, description=description)
        if description is not None:
            # The description is searchable.
            await registry.search_index.repository_changed(name)
        return record

    record = _run(config, data_dir, work)
    echo_json({"name": record.name, "public": record.public, "description": record.description}, indent=None)


@keys_cli.command("list")
def keys_list(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """List the signing keys (the newest signs; all verify)."""
    keys = KeyRing(settings_or_exit(config, data_dir=data_dir).resolved_keys_dir)
    for kid, created, signs in keys.describe():
        stamp = datetime.fromtimestamp(created, UTC).isoformat(timespec="seconds")
        typer.echo(f"{kid}  {stamp}{'  (signs)' if signs else ''}")


@keys_cli.command("rotate")
def keys_rotate(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Add a new signing key. Running servers sign with it at once; tokens signed by older keys
    stay valid until they expire. Remove an old key file once no token it signed can be alive."""
    key = KeyRing(settings_or_exit(config, data_dir=data_dir).resolved_keys_dir).rotate()
    typer.echo(f"new signing key {key.kid}")
