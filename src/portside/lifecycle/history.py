"""Tag history and restores: every tag change is recorded by the store in the transaction that
makes it; here it is listed, and a tag is pointed back at a digest it had within the window."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from portside.auth.accounts import AccountService
from portside.auth.audit import AuditLog
from portside.auth.management.guards import Caller, not_found, require_repository_role
from portside.auth.roles import Role
from portside.lifecycle.changes import RepositoryChanged, announce
from portside.lifecycle.immutability import ImmutabilityService, locked_error
from portside.metadata.lifecycle_store import LifecycleStore, RestoreRefused
from portside.metadata.store import utcnow
from portside.metadata.tag_changes import TagHistoryEntry, TagLocked
from portside.oci.digest import parse_digest
from portside.oci.errors import ErrorKind, RegistryError
from portside.oci.names import validate_tag

MAX_HISTORY = 1000


def window_start(now: datetime, window: timedelta) -> datetime:
    """The oldest moment whose history can still be restored."""
    return now - window


def restorable_digests(entries: Iterable[TagHistoryEntry], since: datetime) -> set[str]:
    """The digests a tag may be restored to: any old or new digest recorded at or after ``since``."""
    return {
        digest
        for entry in entries
        if entry.recorded_at >= since
        for digest in (entry.old_digest, entry.new_digest)
        if digest is not None
    }


def history_actor(actor: str) -> str | None:
    """How history names who made a change: None for anonymous callers (``auth = "none"``)."""
    return None if actor == "anonymous" else actor


@dataclass(frozen=True)
class HistoryView:
    """A page of history and the window it is judged against."""

    entries: list[TagHistoryEntry]
    window_start: datetime
    restorable: set[str]


@dataclass(frozen=True)
class Restored:
    """The outcome of a restore."""

    repository: str
    tag: str
    digest: str
    previous: str | None
    changed: bool


class HistoryService:
    """Reads tag history and restores tags."""

    def __init__(
        self,
        store: LifecycleStore,
        immutability: ImmutabilityService,
        accounts: AccountService,
        audit: AuditLog,
        window: timedelta,
        changed: Sequence[RepositoryChanged] = (),
    ) -> None:
        self._store = store
        self._immutability = immutability
        self._accounts = accounts
        self._audit = audit
        self.window = window
        self._changed = changed

    async def history_of(self, repository: str, tag: str | None = None, limit: int = 100) -> HistoryView:
        """History of one tag, or of every tag, newest first; ``NAME_UNKNOWN`` if there is no repository."""
        if tag is not None:
            validate_tag(tag)
        entries = await self._store.tag_history(repository, tag, min(limit, MAX_HISTORY))
        if entries is None:
            raise RegistryError(ErrorKind.NAME_UNKNOWN, f"no repository {repository!r}", {"name": repository})
        since = window_start(utcnow(), self.window)
        return HistoryView(entries, since, restorable_digests(entries, since))

    async def history(self, caller: Caller, repository: str, tag: str | None = None, limit: int = 100) -> HistoryView:
        """:meth:`history_of` for a caller who may pull the repository."""
        await require_repository_role(self._accounts, caller, repository, Role.PULL)
        return await self.history_of(repository, tag, limit)

    async def restore(self, caller: Caller, repository: str, tag: str, digest: str) -> Restored:
        """:meth:`restore_as` for a caller who may push to the repository."""
        await require_repository_role(self._accounts, caller, repository, Role.PUSH)
        return await self.restore_as(caller.actor, repository, tag, digest, caller.address)

    async def restore_as(
        self, actor: str, repository: str, tag: str, digest: str, address: str | None = None
    ) -> Restored:
        """Point ``tag`` at ``digest`` again (no permission check: callers check first); audited.

        ``MANIFEST_UNKNOWN`` if the digest is not in the tag's history within the window or its
        manifest is gone; ``DENIED`` if an immutable rule protects the tag.
        """
        validate_tag(tag)
        digest = str(parse_digest(digest))
        guard = await self._immutability.guard_for(repository)
        since = window_start(utcnow(), self.window)
        try:
            previous = await self._store.restore_tag(repository, tag, digest, history_actor(actor), since, guard)
        except TagLocked as exc:
            raise locked_error(exc) from exc
        except RestoreRefused as exc:
            if not await self._accounts.store.get_repository(repository):
                raise not_found(f"no repository {repository!r}") from exc
            raise RegistryError(
                ErrorKind.MANIFEST_UNKNOWN, str(exc), {"repository": repository, "tag": tag, "digest": digest}
            ) from exc
        changed = previous != digest
        if changed:
            await announce(self._changed, repository)
            await self._audit.record_now(
                actor, "tag-restore", f"{repository}:{tag}", address, digest=digest, previous=previous
            )
        return Restored(repository, tag, digest, previous, changed)
