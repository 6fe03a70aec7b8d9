"""Storage quotas per namespace (the first path component of a repository name).

Usage counts each distinct blob and manifest of a namespace's repositories once, however many
repositories link it. Pushes are checked before their bytes are stored: a blob that is already
in the namespace adds nothing. Without a quota for the namespace (its own or the default) the
check costs one primary-key lookup and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from portside.auth.accounts import AccountService
from portside.auth.audit import AuditLog
from portside.auth.management.guards import Caller, require_identity, require_site_admin
from portside.auth.policy import may_administer_namespace
from portside.metadata.lifecycle_store import LifecycleStore, namespace_of
from portside.oci.errors import ErrorKind, RegistryError
from portside.oci.names import validate_name

# The largest quota (4 EiB): more than any disk, and well inside the database's 64-bit integers.
MAX_QUOTA_BYTES = 2**62


def exceeds(used: int, adding: int, limit: int) -> bool:
    """True if adding ``adding`` bytes to ``used`` goes over ``limit``."""
    return adding > 0 and used + adding > limit


def refusal(namespace: str, needed: int, used: int, limit: int) -> RegistryError:
    """The ``DENIED`` answer for a push over quota, with what it needed, what is used and the limit."""
    return RegistryError(
        ErrorKind.DENIED,
        f"storage quota of namespace {namespace!r} exceeded: this push needs {needed} bytes, "
        f"the namespace uses {used} of its {limit} bytes",
        {"namespace": namespace, "needed": needed, "used": used, "limit": limit},
    )


@dataclass(frozen=True)
class QuotaInfo:
    """A namespace's quota and usage. ``source`` says where the limit comes from."""

    namespace: str
    limit_bytes: int | None
    source: Literal["namespace", "default"] | None
    used_bytes: int

    @property
    def available_bytes(self) -> int | None:
        """What may still be pushed (never negative), or None without a limit."""
        return None if self.limit_bytes is None else max(0, self.limit_bytes - self.used_bytes)


class QuotaCheck:
    """One request's quota checks (an upload checks before and after its bytes): one limit lookup.

    Usage is read afresh by every check: it is what concurrent pushes change.
    """

    def __init__(self, quotas: QuotaService, repository: str) -> None:
        self._quotas = quotas
        self._namespace = namespace_of(repository)
        self._limit: int | None = None
        self._limit_known = False

    @property
    def namespace(self) -> str:
        """The namespace whose quota this checks."""
        return self._namespace

    def knowing(self, own_limit: int | None) -> None:
        """Take the namespace's own limit (None: it has none) as read in the same lookup as something else."""
        self._limit, _ = self._quotas.effective_limit(own_limit)
        self._limit_known = True

    async def check(self, adding: int, digest: str | None = None) -> None:
        """As :meth:`QuotaService.check`, for this request's repository."""
        if adding <= 0:
            return
        if not self._limit_known:
            self._limit, _ = await self._quotas.limit_for(self._namespace)
            self._limit_known = True
        if self._limit is not None:
            await self._quotas.check_within(self._namespace, self._limit, adding, digest)


class QuotaService:
    """Quota checks on the push path, and quota management."""

    def __init__(
        self, store: LifecycleStore, default_limit: int | None, accounts: AccountService, audit: AuditLog
    ) -> None:
        self._store = store
        self.default_limit = default_limit
        self._accounts = accounts
        self._audit = audit

    async def limit_for(self, namespace: str) -> tuple[int | None, Literal["namespace", "default"] | None]:
        """The namespace's limit and where it comes from (its own quota, else the default)."""
        return self.effective_limit(await self._store.quota_limit(namespace))

    def effective_limit(self, own: int | None) -> tuple[int | None, Literal["namespace", "default"] | None]:
        """The limit that applies, given a namespace's own (or None), and where it comes from."""
        if own is not None:
            return own, "namespace"
        if self.default_limit is not None:
            return self.default_limit, "default"
        return None, None

    async def check(self, repository: str, adding: int, digest: str | None = None) -> None:
        """Refuse (``DENIED``) a push of ``adding`` bytes into ``repository`` that would exceed its quota.

        With ``digest``, content the namespace already holds adds nothing and always passes.
        """
        await self.for_request(repository).check(adding, digest)

    def for_request(self, repository: str) -> QuotaCheck:
        """Checks for one request into ``repository`` that read the namespace's limit at most once."""
        return QuotaCheck(self, repository)

    async def check_within(self, namespace: str, limit: int, adding: int, digest: str | None) -> None:
        """Refuse ``adding`` (more than 0) bytes that would take ``namespace`` over ``limit``."""
        if digest is not None and await self._store.namespace_holds(namespace, digest):
            return
        used = await self._store.namespace_usage(namespace)
        if exceeds(used, adding, limit):
            raise refusal(namespace, adding, used, limit)

    async def info(self, namespace: str) -> QuotaInfo:
        """Limit and usage of a namespace (no permission check)."""
        validate_name(namespace)
        limit, source = await self.limit_for(namespace)
        return QuotaInfo(namespace, limit, source, await self._store.namespace_usage(namespace))

    async def show(self, caller: Caller, namespace: str) -> QuotaInfo:
        """:meth:`info` for the namespace's admins and anyone granted a role on the whole namespace."""
        principal = require_identity(caller)
        if not (may_administer_namespace(principal, namespace) or namespace in principal.namespace_grants):
            raise RegistryError(ErrorKind.DENIED, f"you may not see the quota of the namespace {namespace!r}")
        return await self.info(namespace)

    async def all_quotas(self) -> list[QuotaInfo]:
        """Every namespace with a quota of its own, with usage (no permission check)."""
        return [await self.info(namespace) for namespace, _ in await self._store.list_quotas()]

    async def list_quotas(self, caller: Caller) -> list[QuotaInfo]:
        """Every namespace with a quota of its own [site admin]."""
        require_site_admin(caller)
        return await self.all_quotas()

    async def set(self, caller: Caller, namespace: str, limit_bytes: int | None) -> QuotaInfo:
        """Set or (with None) remove a namespace's quota [site admin]."""
        require_site_admin(caller)
        return await self.set_as(caller.actor, namespace, limit_bytes, caller.address)

    async def set_as(
        self, actor: str, namespace: str, limit_bytes: int | None, address: str | None = None
    ) -> QuotaInfo:
        """Set or remove a quota without a permission check (the CLI); audited."""
        try:
            validate_name(namespace)
        except RegistryError as exc:
            raise RegistryError(ErrorKind.NAME_INVALID, f"invalid namespace {namespace!r}") from exc
        if "/" in namespace:
            raise RegistryError(ErrorKind.NAME_INVALID, f"a namespace is one path component, not {namespace!r}")
        if limit_bytes is not None and not 0 <= limit_bytes <= MAX_QUOTA_BYTES:
            raise RegistryError(ErrorKind.REQUEST_INVALID, "a quota is a number of bytes, 0 to 2^62 (4 EiB)")
        await self._store.set_quota(namespace, limit_bytes)
        await self._audit.record_now(actor, "quota-set", namespace, address, limit_bytes=limit_bytes)
        return await self.info(namespace)
