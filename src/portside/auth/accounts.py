"""Accounts and authentication: who a caller is, and what the policy lets them have."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from portside.auth.passwords import Passwords, new_secret, secret_digest
from portside.auth.policy import ANONYMOUS, Principal, PrincipalKind, RepositoryFacts, repository_role
from portside.auth.roles import Role, actions_for
from portside.auth.scopes import Scope
from portside.metadata.accounts_store import AccountStore
from portside.metadata.records import RobotRecord, UserRecord, Visibility
from portside.metadata.store import utcnow

# User, organization and robot names: one lower-case path component of a repository name.
ACCOUNT_NAME_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*\Z")
TOKEN_PREFIX = "pst_"  # noqa: S105 - a prefix that marks token secrets, not a secret


class InvalidName(ValueError):
    """A user, organization, team or robot name that cannot be a namespace."""


def validate_account_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it can name a namespace (2-64 lower-case characters)."""
    if not (2 <= len(name) <= 64) or not ACCOUNT_NAME_RE.match(name):
        raise InvalidName(f"{what} must be 2-64 characters of a-z, 0-9 and single '.', '_' or '-' between them")
    return name


class LoginThrottled(Exception):
    """Too many failed logins for this account or address."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many failed logins; retry after {retry_after} s")


@dataclass(frozen=True)
class LoginLimits:
    """How many failures are tolerated per window, per account and per address."""

    window: timedelta = timedelta(minutes=5)
    per_account: int = 10
    per_address: int = 30


@dataclass(frozen=True)
class IssuedSecret:
    """A token secret, shown once at creation."""

    id: int
    secret: str


class AccountService:
    """Users, authentication and the policy's facts."""

    def __init__(self, store: AccountStore, passwords: Passwords, limits: LoginLimits) -> None:
        self.store = store
        self.passwords = passwords
        self.limits = limits
        # Set by an optional pull-through cache: (repository, exists) -> its mirror's pull rule.
        self.mirror_pull_rule: Callable[[str, bool], Awaitable[str | None]] | None = None

    async def create_user(
        self, username: str, password: str | None, *, email: str | None = None, admin: bool = False
    ) -> UserRecord:
        """A new user; the password is hashed with argon2."""
        validate_account_name(username, "username")
        if password is not None and len(password) < 8:
            raise ValueError("passwords must have at least 8 characters")
        return await self.store.create_user(username, self.passwords.hash(password) if password else None, email, admin)

    async def set_password(self, username: str, password: str) -> None:
        """Change a user's password."""
        if len(password) < 8:
            raise ValueError("passwords must have at least 8 characters")
        await self.store.update_user(username, password_hash=self.passwords.hash(password))

    # Authentication

    async def authenticate(self, username: str, password: str, address: str | None) -> Principal:
        """Check credentials (a password, a personal access token or a robot token).

        Raises ``LoginThrottled`` when the account or address has failed too often, and
        ``PermissionError`` for wrong credentials (with the same message whatever was wrong).
        """
        keys = [f"user:{username}"] + ([f"addr:{address}"] if address else [])
        await self._check_throttle(keys)
        principal = await self._credentials(username, password)
        if principal is None:
            for key in keys:
                await self.store.count_failure(key, self.limits.window)
            raise PermissionError("invalid username or password")
        if (await self.store.failures(keys[0], self.limits.window))[0]:
            await self.store.clear_failures(keys[0])
        return principal

    async def authenticate_bearer(self, secret: str, address: str | None) -> Principal:
        """Check a personal access or robot token sent alone (``Authorization: Bearer pst_...``).

        Throttled per address as :meth:`authenticate` is; ``PermissionError`` for an unknown,
        expired or malformed token.
        """
        keys = [f"addr:{address}"] if address else []
        await self._check_throttle(keys)
        principal = await self.principal_for_secret(secret) if secret.startswith(TOKEN_PREFIX) else None
        if principal is None:
            for key in keys:
                await self.store.count_failure(key, self.limits.window)
            raise PermissionError("invalid token")
        return principal

    async def _check_throttle(self, keys: list[str]) -> None:
        for key in keys:
            limit = self.limits.per_account if key.startswith("user:") else self.limits.per_address
            count, started = await self.store.failures(key, self.limits.window)
            if count >= limit and started is not None:
                retry = started + self.limits.window - utcnow()
                raise LoginThrottled(max(int(retry.total_seconds()) + 1, 1))

    async def _credentials(self, username: str, password: str) -> Principal | None:
        if password.startswith(TOKEN_PREFIX):
            return await self._token_principal(username, password)
        if "+" in username:
            return None
        user = await self.store.get_user(username)
        if not self.passwords.verify(user.password_hash if user else None, password) or user is None:
            return None
        return await self.principal_for_user(user)

    async def _token_principal(self, username: str, secret: str) -> Principal | None:
        token = await self.store.find_token(secret_digest(secret))
        if token is None or token.owner != username:
            return None
        if token.expires_at is not None and token.expires_at <= utcnow():
            return None
        await self.store.touch_token(token.id)
        ceiling = Role.parse(token.max_role)
        if token.owner_kind == "robot":
            namespace, _, name = username.partition("+")
            robot = await self.store.get_robot(namespace, name)
            return None if robot is None else await self.principal_for_robot(robot, ceiling)
        user = await self.store.get_user(username)
        return None if user is None else await self.principal_for_user(user, ceiling)

    async def principal_for_secret(self, secret: str) -> Principal | None:
        """The owner of a token secret (an OAuth2 refresh token), if the token is valid."""
        token = await self.store.find_token(secret_digest(secret))
        if token is None:
            return None
        return await self._token_principal(token.owner, secret)

    async def principal_for_user(self, user: UserRecord, ceiling: Role | None = None) -> Principal:
        """Everything the policy needs about a user."""
        organizations = await self.store.organizations_of(user.username)
        repository_grants, namespace_grants = _grant_maps(await self.store.grants_for("user", user.id))
        return Principal(
            kind=PrincipalKind.USER,
            name=user.username,
            id=user.id,
            is_admin=user.is_admin,
            owned_organizations=frozenset(name for name, owner in organizations.items() if owner),
            repository_grants=repository_grants,
            namespace_grants=namespace_grants,
            ceiling=ceiling,
        )

    async def principal_for_robot(self, robot: RobotRecord, ceiling: Role | None = None) -> Principal:
        """Everything the policy needs about a robot: only what was granted to it."""
        repository_grants, namespace_grants = _grant_maps(await self.store.grants_for("robot", robot.id))
        return Principal(
            kind=PrincipalKind.ROBOT,
            name=robot.full_name,
            id=robot.id,
            repository_grants=repository_grants,
            namespace_grants=namespace_grants,
            ceiling=ceiling,
        )

    async def principal_named(self, subject: str) -> Principal:
        """The principal a token's ``sub`` names (anonymous for an empty or unknown subject)."""
        if not subject:
            return ANONYMOUS
        if "+" in subject:
            namespace, _, name = subject.partition("+")
            robot = await self.store.get_robot(namespace, name)
            return ANONYMOUS if robot is None else await self.principal_for_robot(robot)
        user = await self.store.get_user(subject)
        return ANONYMOUS if user is None else await self.principal_for_user(user)

    # Decisions

    async def repository_facts(self, name: str) -> RepositoryFacts:
        """What the policy needs to know about a repository."""
        record = await self.store.get_repository(name)
        mirror_pull = None if self.mirror_pull_rule is None else await self.mirror_pull_rule(name, record is not None)
        return RepositoryFacts(name, record is not None, record is not None and record.public, mirror_pull)

    async def role_on(self, principal: Principal, repository: str) -> Role | None:
        """The policy's answer for one repository."""
        return repository_role(principal, await self.repository_facts(repository))

    async def granted(self, principal: Principal, requested: list[Scope]) -> list[Scope]:
        """What of ``requested`` the principal gets; possibly less, never an error."""
        granted: list[Scope] = []
        for scope in requested:
            if scope.type == "repository":
                allowed = actions_for(await self.role_on(principal, scope.name))
                if "*" in scope.actions and "*" in allowed:
                    actions = frozenset(scope.actions)
                else:
                    actions = scope.actions & allowed
                if actions:
                    granted.append(Scope(scope.type, scope.name, actions))
            elif scope.type == "registry" and scope.name == "catalog":
                granted.append(Scope("registry", "catalog", frozenset({"*"})))
        return granted

    @staticmethod
    def visibility(principal: Principal) -> Visibility:
        """Which repositories ``principal`` may see in listings."""
        if principal.is_admin:
            return Visibility(everything=True)
        namespaces = set(principal.namespace_grants)
        if principal.kind is PrincipalKind.USER:
            namespaces |= {principal.name, *principal.owned_organizations}
        return Visibility(namespaces=frozenset(namespaces), repositories=frozenset(principal.repository_grants))

    # Tokens

    async def issue_token(
        self, owner_kind: str, owner_id: int, name: str, max_role: Role, expires_at: datetime | None
    ) -> IssuedSecret:
        """A new personal access token (``owner_kind="user"``) or robot token; the secret is returned once."""
        secret = new_secret(TOKEN_PREFIX)
        token_id = await self.store.create_token(
            user_id=owner_id if owner_kind == "user" else None,
            robot_id=owner_id if owner_kind == "robot" else None,
            name=name,
            secret_hash=secret_digest(secret),
            max_role=max_role.label,
            expires_at=expires_at,
        )
        return IssuedSecret(token_id, secret)


def _grant_maps(rows: list[tuple[str, str, str]]) -> tuple[dict[str, Role], dict[str, Role]]:
    repositories: dict[str, Role] = {}
    namespaces: dict[str, Role] = {}
    for target_kind, target, role_text in rows:
        role = Role.parse(role_text)
        bucket = repositories if target_kind == "repository" else namespaces
        bucket[target] = max(role, bucket.get(target, role))
    return repositories, namespaces
