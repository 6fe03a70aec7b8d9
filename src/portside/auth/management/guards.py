"""Who is calling the management API, and the checks every management service makes.

The checks build on the one policy (:mod:`portside.auth.policy`); they raise
:class:`~portside.oci.errors.RegistryError` with a kind from the error table, so that no
handler decides a status code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from portside.auth.accounts import AccountService, InvalidName
from portside.auth.policy import (
    Principal,
    PrincipalKind,
    has_full_authority,
    is_site_admin,
    may_administer_namespace,
)
from portside.auth.roles import Role
from portside.metadata.account_errors import Conflict, NotFound
from portside.oci.errors import ErrorKind, RegistryError
from portside.oci.names import validate_name

# What a 401 from the management API carries, in every auth mode.
BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="portside"'}


@dataclass(frozen=True)
class Caller:
    """The principal behind one management request and where it came from (for the audit log)."""

    principal: Principal
    address: str | None

    @property
    def actor(self) -> str:
        """How the audit log names the caller."""
        return self.principal.audit_name


def require_identity(caller: Caller) -> Principal:
    """The caller's principal; ``401`` with a Basic challenge for anonymous callers."""
    if caller.principal.is_anonymous:
        raise RegistryError(ErrorKind.UNAUTHORIZED, headers=BASIC_CHALLENGE)
    return caller.principal


def require_site_admin(caller: Caller) -> Principal:
    """Only site administrators; ``403`` for everyone else."""
    principal = require_identity(caller)
    if not is_site_admin(principal):
        raise RegistryError(ErrorKind.DENIED, "only site administrators may do this")
    return principal


def require_user(caller: Caller, *, full_authority: bool = True) -> Principal:
    """A user (not a robot), by default with full authority."""
    principal = require_identity(caller)
    if principal.kind is not PrincipalKind.USER:
        raise RegistryError(ErrorKind.DENIED, "only users may do this")
    if full_authority and not has_full_authority(principal):
        raise RegistryError(ErrorKind.DENIED, "this needs a password login or a token with the admin role")
    return principal


def require_namespace_admin(caller: Caller, namespace: str) -> Principal:
    """Site admins, the namespace's own user and its organization's owners (the policy's answer)."""
    principal = require_identity(caller)
    if not may_administer_namespace(principal, namespace):
        raise RegistryError(ErrorKind.DENIED, f"you may not administer the namespace {namespace!r}")
    return principal


@contextmanager
def store_errors() -> Iterator[None]:
    """Turn the account stores' and services' errors into the error table's kinds."""
    try:
        yield
    except Conflict as exc:
        raise RegistryError(ErrorKind.CONFLICT, str(exc)) from exc
    except NotFound as exc:
        raise RegistryError(ErrorKind.NAME_UNKNOWN, str(exc)) from exc
    except InvalidName as exc:
        raise RegistryError(ErrorKind.NAME_INVALID, str(exc)) from exc
    except ValueError as exc:
        raise RegistryError(ErrorKind.REQUEST_INVALID, str(exc)) from exc


def not_found(message: str) -> RegistryError:
    """A ``404`` for a missing (or invisible) user, organization, team, robot, token or repository."""
    return RegistryError(ErrorKind.NAME_UNKNOWN, message)


async def require_repository_role(accounts: AccountService, caller: Caller, repository: str, needed: Role) -> Role:
    """The caller's role on ``repository`` (via ``AccountService.role_on``) if it is at least ``needed``.

    A repository the caller may not even pull answers ``404``, exactly as a missing one does;
    one they may see but not change answers ``403`` (``401`` for anonymous callers).
    """
    validate_name(repository)
    role = await accounts.role_on(caller.principal, repository)
    if role is None:
        raise not_found(f"no repository {repository!r}")
    if role < needed:
        require_identity(caller)
        raise RegistryError(ErrorKind.DENIED, f"this needs the {needed.label} role on {repository!r}")
    return role
