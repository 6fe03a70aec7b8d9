"""Robot accounts of a namespace and their tokens [namespace admins].

A robot has no password: it logs in as ``<namespace>+<name>`` with one of its tokens.
"""

from __future__ import annotations

from portside.auth.accounts import AccountService, validate_account_name
from portside.auth.audit import AuditLog
from portside.auth.management.guards import Caller, not_found, require_namespace_admin, store_errors
from portside.auth.management.tokens import IssuedToken, issue, revoke
from portside.auth.roles import Role
from portside.free_text import check_free_text
from portside.metadata.records import RobotRecord, TokenRecord

MAX_ROBOT_DESCRIPTION = 1000


class RobotAdmin:
    """Robots and robot tokens."""

    def __init__(self, accounts: AccountService, audit: AuditLog) -> None:
        self._accounts = accounts
        self._store = accounts.store
        self._audit = audit

    async def _namespace(self, caller: Caller, namespace: str) -> None:
        """Check that the caller administers ``namespace`` and that it is a user's or an organization's."""
        require_namespace_admin(caller, namespace)
        if await self._store.get_user(namespace) is None and await self._store.get_organization(namespace) is None:
            raise not_found(f"no user or organization {namespace!r}")

    async def _robot(self, caller: Caller, namespace: str, name: str) -> RobotRecord:
        await self._namespace(caller, namespace)
        robot = await self._store.get_robot(namespace, name)
        if robot is None:
            raise not_found(f"no robot {namespace}+{name}")
        return robot

    async def list_in(self, caller: Caller, namespace: str) -> list[RobotRecord]:
        """A namespace's robots."""
        await self._namespace(caller, namespace)
        return await self._store.list_robots(namespace)

    async def get(self, caller: Caller, namespace: str, name: str) -> RobotRecord:
        """One robot."""
        return await self._robot(caller, namespace, name)

    async def create(self, caller: Caller, namespace: str, name: str, description: str | None) -> RobotRecord:
        """A robot with no grants and no tokens yet."""
        await self._namespace(caller, namespace)
        check_free_text(description, "a robot's description", MAX_ROBOT_DESCRIPTION)
        with store_errors():
            validate_account_name(name, "robot name")
            robot = await self._store.create_robot(namespace, name, description)
        await self._audit.record_now(caller.actor, "robot-create", namespace, caller.address, robot=robot.full_name)
        return robot

    async def delete(self, caller: Caller, namespace: str, name: str) -> None:
        """Remove a robot with its tokens and grants."""
        robot = await self._robot(caller, namespace, name)
        with store_errors():
            await self._store.delete_robot(namespace, name)
        await self._audit.record_now(caller.actor, "robot-delete", namespace, caller.address, robot=robot.full_name)

    async def tokens(self, caller: Caller, namespace: str, name: str) -> list[TokenRecord]:
        """A robot's tokens, without secrets."""
        robot = await self._robot(caller, namespace, name)
        return await self._store.list_tokens("robot", robot.id)

    async def create_token(
        self, caller: Caller, namespace: str, name: str, token: str, max_role: Role, expires_in_days: int | None
    ) -> IssuedToken:
        """A new token for a robot; its secret is returned once."""
        robot = await self._robot(caller, namespace, name)
        issued = await issue(self._accounts, "robot", robot.id, token, max_role, expires_in_days)
        await self._audit.record_now(
            caller.actor,
            "token-create",
            namespace,
            caller.address,
            robot=robot.full_name,
            token_id=issued.token.id,
            name=issued.token.name,
            max_role=max_role.label,
        )
        return issued

    async def revoke_token(self, caller: Caller, namespace: str, name: str, token_id: int) -> None:
        """Revoke one of a robot's tokens."""
        robot = await self._robot(caller, namespace, name)
        record = await revoke(self._accounts, "robot", robot.id, token_id)
        await self._audit.record_now(
            caller.actor,
            "token-revoke",
            namespace,
            caller.address,
            robot=robot.full_name,
            token_id=token_id,
            name=record.name,
        )
