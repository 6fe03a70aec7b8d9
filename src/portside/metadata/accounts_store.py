"""The account stores in one object: what :class:`~portside.auth.accounts.AccountService` uses.

Each part lives in a module of its own; all share the engines of :class:`MetadataStore`.
"""

from __future__ import annotations

from portside.metadata.access_store import AccessStore
from portside.metadata.account_errors import Conflict, NotFound
from portside.metadata.audit_store import AuditStore
from portside.metadata.people_store import PeopleStore

__all__ = ["AccountStore", "Conflict", "NotFound"]


class AccountStore(PeopleStore, AccessStore, AuditStore):
    """Users, organizations, teams, robots, tokens, grants, repository settings and the audit log."""
