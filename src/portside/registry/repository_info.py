"""Repository metadata for people: description, README, stars, pulls, last push, size, explore lists.

Usage (``registry`` is the app's :class:`~portside.registry.services.Registry`)::

    details = await registry.repository_info.get(principal, "acme/app")    # RepositoryDetails
    await registry.repository_info.update(principal, "acme/app", description="...", readme="# Hi")
    await registry.repository_info.star(principal, "acme/app")             # unstar(...) likewise
    recent = await registry.repository_info.recent(principal, limit=12)    # list[RepositorySummary]
    popular = await registry.repository_info.popular(principal, limit=12)

Every method asks the one policy: a repository the caller may not pull is "not found"
(with ``auth = "none"`` everyone may pull, so everyone may read)
(``RegistryError`` NAME_UNKNOWN, 404); changing description or README needs the admin role;
starring needs a signed-in user. Errors are ``RegistryError`` from the one error table.

Pulls are counted in memory per process (:meth:`RepositoryInfoService.record_pull` on each
manifest ``GET``) and written about once a second by :meth:`flush_pulls`, never per request.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from portside.auth.accounts import AccountService
from portside.auth.audit import AuditLog
from portside.auth.management.guards import Caller, not_found, require_repository_role, require_user
from portside.auth.policy import ANONYMOUS, Principal, PrincipalKind
from portside.auth.roles import Role
from portside.free_text import MAX_DESCRIPTION as MAX_DESCRIPTION
from portside.free_text import check_free_text
from portside.metadata.records import Visibility
from portside.metadata.repository_info_store import UNCHANGED, RepositoryInfoStore, RepositoryMetadataRecord
from portside.metadata.search_documents import IMAGE_DESCRIPTION_KEY as IMAGE_DESCRIPTION_KEY
from portside.metadata.search_store import namespace_of
from portside.oci.errors import ErrorKind, RegistryError
from portside.oci.names import validate_name
from portside.registry.markdown import MAX_README_BYTES, render_markdown

MAX_LISTING = 100


@dataclass(frozen=True)
class RepositorySummary:
    """A repository in a list (explore page, starred repositories)."""

    name: str
    namespace: str
    visibility: str
    description: str | None
    stars: int
    pulls: int
    last_pushed_at: datetime | None

    @classmethod
    def of(cls, record: RepositoryMetadataRecord) -> RepositorySummary:
        """From the store's record."""
        return cls(
            record.name,
            namespace_of(record.name),
            "public" if record.public else "private",
            record.shown_description,
            record.stars,
            record.pulls,
            record.last_pushed_at,
        )


@dataclass(frozen=True)
class RepositoryDetails:
    """Everything shown about one repository, for one caller."""

    name: str
    namespace: str
    visibility: str
    # As written by the repository's admins.
    description: str | None
    # With no description written: the org.opencontainers.image.description of the newest tag.
    image_description: str | None
    # The README's Markdown source, and the same rendered and sanitised (safe to insert unescaped).
    readme: str | None
    readme_html: str
    stars: int
    # True if the caller starred it (always False for anonymous callers and robots).
    starred: bool
    pulls: int
    last_pushed_at: datetime | None
    # Bytes of the distinct blobs the repository links plus its manifests.
    size: int
    created_at: datetime
    # The caller's role: "pull", "push", "delete" or "admin".
    role: str

    @property
    def can_edit(self) -> bool:
        """True if the caller may change description and README."""
        return self.role == Role.ADMIN.label


class RepositoryInfoService:
    """Reads and changes of repository metadata, checked by the policy."""

    def __init__(
        self, store: RepositoryInfoStore, accounts: AccountService, audit: AuditLog, open_access: bool = False
    ) -> None:
        self._store = store
        self._accounts = accounts
        self._audit = audit
        # With ``auth = "none"`` everyone may pull (and so read about) every repository.
        self._open_access = open_access
        self._pulls: Counter[str] = Counter()

    async def _read_role(self, principal: Principal, name: str) -> Role:
        if self._open_access:
            validate_name(name)
            role = await self._accounts.role_on(principal, name)
            return max(role, Role.PULL) if role is not None else Role.PULL
        return await require_repository_role(self._accounts, Caller(principal, None), name, Role.PULL)

    def _visibility(self, principal: Principal) -> Visibility:
        return Visibility(everything=True) if self._open_access else AccountService.visibility(principal)

    async def _record(self, name: str) -> RepositoryMetadataRecord:
        record = await self._store.get(name)
        if record is None:
            raise not_found(f"no repository {name!r}")
        return record

    async def get(self, principal: Principal, name: str) -> RepositoryDetails:
        """A repository the caller may pull; NAME_UNKNOWN (404) otherwise, whether or not it exists."""
        role = await self._read_role(principal, name)
        record = await self._record(name)
        starred = False
        if principal.kind is PrincipalKind.USER and principal.id is not None:
            starred = await self._store.starred(record.id, principal.id)
        return RepositoryDetails(
            name=record.name,
            namespace=namespace_of(record.name),
            visibility="public" if record.public else "private",
            description=record.description,
            image_description=None if record.description else record.shown_description,
            readme=record.readme,
            readme_html=render_markdown(record.readme) if record.readme else "",
            stars=record.stars,
            starred=starred,
            pulls=record.pulls,
            last_pushed_at=record.last_pushed_at,
            size=await self._store.size(record.id),
            created_at=record.created_at,
            role=role.label,
        )

    async def update(
        self,
        principal: Principal,
        name: str,
        *,
        description: Any = UNCHANGED,
        readme: Any = UNCHANGED,
        address: str | None = None,
    ) -> RepositoryDetails:
        """Change the description and/or the README [repository admins]; ``None`` clears, omitted keeps."""
        caller = Caller(principal, address)
        await require_repository_role(self._accounts, caller, name, Role.ADMIN)
        if isinstance(description, str):
            check_free_text(description, "the description")
        if isinstance(readme, str) and "\x00" in readme:
            raise RegistryError(ErrorKind.REQUEST_INVALID, "the README may not contain NUL characters")
        if isinstance(readme, str) and len(readme.encode()) > MAX_README_BYTES:
            raise RegistryError(ErrorKind.REQUEST_INVALID, f"the README is larger than {MAX_README_BYTES} bytes")
        if not await self._store.update_text(name, description=description, readme=readme):
            raise not_found(f"no repository {name!r}")
        changed = [what for what, value in (("description", description), ("readme", readme)) if value is not UNCHANGED]
        if changed:
            await self._audit.record_now(caller.actor, "metadata-change", name, address, fields=changed)
        return await self.get(principal, name)

    async def _star(self, principal: Principal, name: str, starred: bool) -> RepositoryDetails:
        caller = Caller(principal, None)
        user = require_user(caller, full_authority=False)
        await self._read_role(principal, name)
        record = await self._record(name)
        assert user.id is not None
        await self._store.set_star(record.id, user.id, starred)
        return await self.get(principal, name)

    async def star(self, principal: Principal, name: str) -> RepositoryDetails:
        """Star a repository the signed-in user may pull (idempotent)."""
        return await self._star(principal, name, True)

    async def unstar(self, principal: Principal, name: str) -> RepositoryDetails:
        """Remove the user's star (idempotent)."""
        return await self._star(principal, name, False)

    async def _listing(self, principal: Principal, order: str, limit: int) -> list[RepositorySummary]:
        limit = max(1, min(limit, MAX_LISTING))
        records = await self._store.listing(self._visibility(principal), order, limit)
        return [RepositorySummary.of(r) for r in records]

    async def recent(self, principal: Principal = ANONYMOUS, limit: int = 12) -> list[RepositorySummary]:
        """Repositories the caller may pull, most recently pushed first (anonymous: public ones)."""
        return await self._listing(principal, "recent", limit)

    async def popular(self, principal: Principal = ANONYMOUS, limit: int = 12) -> list[RepositorySummary]:
        """Repositories the caller may pull, most starred, then most pulled first."""
        return await self._listing(principal, "popular", limit)

    async def starred_by(self, principal: Principal, limit: int = 100) -> list[RepositorySummary]:
        """The repositories a user starred that they may still pull."""
        if principal.kind is not PrincipalKind.USER or principal.id is None:
            return []
        records = await self._store.starred_by(principal.id, max(1, min(limit, MAX_LISTING)))
        visible = [
            r for r in records if self._open_access or await self._accounts.role_on(principal, r.name) is not None
        ]
        return [RepositorySummary.of(r) for r in visible]

    # Pull counts

    def record_pull(self, repository: str) -> None:
        """Count one pull (a manifest ``GET``); written by the next :meth:`flush_pulls`."""
        self._pulls[repository] += 1

    async def flush_pulls(self) -> int:
        """Write buffered pull counts; how many pulls were written."""
        counts, self._pulls = dict(self._pulls), Counter()
        try:
            await self._store.add_pulls(counts)
        except Exception:
            # Keep them for the next flush rather than lose them to a passing database error.
            self._pulls.update(counts)
            raise
        return sum(counts.values())
