"""The services behind the management API: users, organizations, robots, tokens, repository settings,
grants and the audit log.

Each service checks what the caller may do (through the one policy) and records every change
in the audit log; they raise :class:`~portside.oci.errors.RegistryError` and return dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass

from portside.auth.accounts import AccountService
from portside.auth.audit import AuditLog
from portside.auth.management.audit import AuditQueries
from portside.auth.management.grants import GrantAdmin
from portside.auth.management.organizations import OrganizationAdmin
from portside.auth.management.repositories import RepositoryAdmin
from portside.auth.management.robots import RobotAdmin
from portside.auth.management.tokens import TokenAdmin
from portside.auth.management.users import UserAdmin
from portside.registry.listings import ListingService


@dataclass(frozen=True)
class Management:
    """Every management service, wired to one registry's accounts, audit log and listings."""

    users: UserAdmin
    organizations: OrganizationAdmin
    robots: RobotAdmin
    tokens: TokenAdmin
    repositories: RepositoryAdmin
    grants: GrantAdmin
    audit: AuditQueries


def build_management(accounts: AccountService, audit: AuditLog, listings: ListingService) -> Management:
    """The management services for one registry."""
    return Management(
        users=UserAdmin(accounts, audit),
        organizations=OrganizationAdmin(accounts, audit),
        robots=RobotAdmin(accounts, audit),
        tokens=TokenAdmin(accounts, audit),
        repositories=RepositoryAdmin(accounts, audit, listings),
        grants=GrantAdmin(accounts, audit),
        audit=AuditQueries(accounts.store),
    )
