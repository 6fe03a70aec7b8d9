"""Lifecycle metadata: tag history and restores, immutable tag rules, namespace quotas and usage,
and whole-repository deletes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import Integer, String, and_, bindparam, delete, func, or_, select
from sqlalchemy.exc import IntegrityError

from portside.metadata.account_errors import Conflict
from portside.metadata.fast_sqlite import prebuilt
from portside.metadata.store import MetadataStore, as_utc, utcnow
from portside.metadata.tables import (
    blobs,
    immutable_rules,
    manifest_references,
    manifests,
    namespace_quotas,
    repositories,
    repository_blobs,
    tag_history,
    tags,
)
from portside.metadata.tag_changes import (
    ImmutableRule,
    TagGuard,
    TagHistoryEntry,
    point_tag,
)


class RestoreRefused(Exception):
    """A restore that cannot be done: the digest is not in the tag's recent history, or is gone."""


def namespace_of(repository: str) -> str:
    """The first path component of a repository name."""
    return repository.split("/", 1)[0]


def in_namespace(namespace: str) -> Any:
    """A WHERE clause for the repositories of ``namespace``."""
    prefix = f"{namespace}/"
    return or_(repositories.c.name == namespace, func.substr(repositories.c.name, 1, len(prefix)) == prefix)


# Built once (with a bind parameter), not per call: every blob push looks its namespace's quota up.
_QUOTA_LIMIT: Any = prebuilt(
    select(namespace_quotas.c.limit_bytes).where(namespace_quotas.c.namespace == bindparam("p_namespace"))
)


# in_namespace with bind parameters, for the statements a quota check runs, built once.
_IN_NAMESPACE: Any = or_(
    repositories.c.name == bindparam("p_namespace", type_=String),
    func.substr(repositories.c.name, 1, bindparam("p_prefix_length", type_=Integer))
    == bindparam("p_prefix", type_=String),
)


def _namespace_parameters(namespace: str) -> dict[str, Any]:
    prefix = f"{namespace}/"
    return {"p_namespace": namespace, "p_prefix": prefix, "p_prefix_length": len(prefix)}


_NAMESPACE_BLOB_BYTES: Any = select(func.coalesce(func.sum(blobs.c.size), 0)).where(
    blobs.c.digest.in_(
        select(repository_blobs.c.digest)
        .select_from(repository_blobs.join(repositories, repositories.c.id == repository_blobs.c.repository_id))
        .where(_IN_NAMESPACE)
        .distinct()
    )
)
_PER_MANIFEST: Any = (
    select(func.max(manifests.c.size).label("size"))
    .select_from(manifests.join(repositories, repositories.c.id == manifests.c.repository_id))
    .where(_IN_NAMESPACE)
    .group_by(manifests.c.digest)
    .subquery()
)
_NAMESPACE_MANIFEST_BYTES: Any = select(func.coalesce(func.sum(_PER_MANIFEST.c.size), 0))
_NAMESPACE_LINKS_BLOB: Any = (
    select(repository_blobs.c.digest)
    .select_from(repository_blobs.join(repositories, repositories.c.id == repository_blobs.c.repository_id))
    .where(_IN_NAMESPACE, repository_blobs.c.digest == bindparam("p_digest"))
    .limit(1)
)
_NAMESPACE_HOLDS_MANIFEST: Any = (
    select(manifests.c.digest)
    .select_from(manifests.join(repositories, repositories.c.id == manifests.c.repository_id))
    .where(_IN_NAMESPACE, manifests.c.digest == bindparam("p_digest"))
    .limit(1)
)


def _rule(row: Any) -> ImmutableRule:
    return ImmutableRule(
        id=int(row.id),
        scope_kind=row.scope_kind,
        scope=row.scope,
        pattern=row.pattern,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
    )


# Read on every tagged push and tag delete: built once (building a statement costs more than running it).
_RULES_FOR = prebuilt(
    select(immutable_rules)
    .where(
        or_(
            and_(immutable_rules.c.scope_kind == "repository", immutable_rules.c.scope == bindparam("repository")),
            and_(immutable_rules.c.scope_kind == "namespace", immutable_rules.c.scope == bindparam("namespace")),
        )
    )
    .order_by(immutable_rules.c.id)
)


class LifecycleStore:
    """SQL for tag history, immutable rules, quotas and repository deletes."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    # Tag history

    async def tag_history(self, repository: str, tag: str | None, limit: int) -> list[TagHistoryEntry] | None:
        """Changes of one tag (or of every tag) of ``repository``, newest first; None if no such repository."""
        async with self._store.reading() as conn:
            repository_id = await self._store.repository_id(conn, repository)
            if repository_id is None:
                return None
            query = (
                select(tag_history)
                .where(tag_history.c.repository_id == repository_id)
                .order_by(tag_history.c.recorded_at.desc(), tag_history.c.id.desc())
                .limit(limit)
            )
            if tag is not None:
                query = query.where(tag_history.c.tag == tag)
            rows = (await conn.execute(query)).all()
        return [
            TagHistoryEntry(
                id=int(row.id),
                repository=repository,
                tag=row.tag,
                action=row.action,
                old_digest=row.old_digest,
                new_digest=row.new_digest,
                actor=row.actor,
                recorded_at=as_utc(row.recorded_at),
            )
            for row in rows
        ]

    async def restore_tag(
        self, repository: str, tag: str, digest: str, actor: str | None, since: datetime, guard: TagGuard | None
    ) -> str | None:
        """Point ``tag`` back at ``digest``, one of its digests recorded since ``since``; the digest it had.

        All in one transaction with its history row. Raises ``RestoreRefused`` if the digest is not
        in the tag's history window or its manifest is gone, ``TagLocked`` if ``guard`` protects
        the tag and the restore would move it. Restoring the digest the tag already has changes nothing.
        """
        now = utcnow()
        async with self._store.writing() as conn:
            repository_id = await self._store.repository_id(conn, repository)
            if repository_id is None:
                raise RestoreRefused(f"no repository {repository!r}")
            known = await conn.execute(
                select(tag_history.c.id)
                .where(
                    tag_history.c.repository_id == repository_id,
                    tag_history.c.tag == tag,
                    tag_history.c.recorded_at >= since,
                    or_(tag_history.c.old_digest == digest, tag_history.c.new_digest == digest),
                )
                .limit(1)
            )
            if known.first() is None:
                raise RestoreRefused(f"{digest} is not in the history of {repository}:{tag} within the history window")
            # Share-locked, as a manifest put locks what it references: garbage collection either
            # swept the manifest before (and this sees it gone) or sees the restored tag after.
            present = await conn.execute(
                select(manifests.c.digest)
                .where(manifests.c.repository_id == repository_id, manifests.c.digest == digest)
                .with_for_update(read=True)
            )
            if present.first() is None:
                raise RestoreRefused(f"the manifest {digest} of {repository} no longer exists; it cannot be restored")
            return await point_tag(
                conn, self._store.dialect, repository_id, tag, digest, actor=actor, guard=guard, at=now, restoring=True
            )

    # Immutable rules

    async def list_rules(self, scope_kind: str | None = None, scope: str | None = None) -> list[ImmutableRule]:
        """Rules, optionally of one scope, in id order."""
        query = select(immutable_rules).order_by(immutable_rules.c.id)
        if scope_kind is not None:
            query = query.where(immutable_rules.c.scope_kind == scope_kind)
        if scope is not None:
            query = query.where(immutable_rules.c.scope == scope)
        async with self._store.reading() as conn:
            return [_rule(row) for row in (await conn.execute(query)).all()]

    async def rules_for(self, repository: str) -> list[ImmutableRule]:
        """The rules that apply to ``repository``: its own and its namespace's, in id order."""
        async with self._store.reading() as conn:
            result = await conn.execute(_RULES_FOR, {"repository": repository, "namespace": namespace_of(repository)})
            return [_rule(row) for row in result.all()]

    async def get_rule(self, rule_id: int) -> ImmutableRule | None:
        """A rule by id."""
        async with self._store.reading() as conn:
            row = (await conn.execute(select(immutable_rules).where(immutable_rules.c.id == rule_id))).first()
        return None if row is None else _rule(row)

    async def add_rule(
        self, scope_kind: Literal["repository", "namespace"], scope: str, pattern: str, created_by: str | None
    ) -> ImmutableRule:
        """A new rule; ``Conflict`` if the same pattern is already set on the scope."""
        try:
            async with self._store.writing() as conn:
                result = await conn.execute(
                    immutable_rules.insert().values(
                        scope_kind=scope_kind, scope=scope, pattern=pattern, created_by=created_by, created_at=utcnow()
                    )
                )
                rule_id = int(cast(Any, result).inserted_primary_key[0])
        except IntegrityError as exc:
            raise Conflict(f"the {scope_kind} {scope!r} already has an immutable rule for {pattern!r}") from exc
        rule = await self.get_rule(rule_id)
        assert rule is not None
        return rule

    async def remove_rule(self, rule_id: int) -> bool:
        """Delete a rule; False if there was none."""
        async with self._store.writing() as conn:
            result = await conn.execute(delete(immutable_rules).where(immutable_rules.c.id == rule_id))
            return bool(result.rowcount)

    # Quotas

    async def quota_limit(self, namespace: str) -> int | None:
        """The namespace's own quota in bytes, or None."""
        async with self._store.reading() as conn:
            value = (await conn.execute(_QUOTA_LIMIT, {"p_namespace": namespace})).scalar_one_or_none()
        return None if value is None else int(value)

    async def list_quotas(self) -> list[tuple[str, int]]:
        """Every explicit quota, by namespace."""
        async with self._store.reading() as conn:
            rows = (await conn.execute(select(namespace_quotas).order_by(namespace_quotas.c.namespace))).all()
        return [(row.namespace, int(row.limit_bytes)) for row in rows]

    async def set_quota(self, namespace: str, limit_bytes: int | None) -> None:
        """Set (or with None, remove) a namespace's own quota."""
        async with self._store.writing() as conn:
            if limit_bytes is None:
                await conn.execute(delete(namespace_quotas).where(namespace_quotas.c.namespace == namespace))
                return
            now = utcnow()
            statement = self._store.insert(namespace_quotas).values(
                namespace=namespace, limit_bytes=limit_bytes, updated_at=now
            )
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[namespace_quotas.c.namespace],
                    set_={"limit_bytes": limit_bytes, "updated_at": now},
                )
            )

    async def namespace_usage(self, namespace: str) -> int:
        """Bytes the namespace uses: each distinct blob and manifest of its repositories counted once."""
        parameters = _namespace_parameters(namespace)
        async with self._store.reading() as conn:
            used_by_blobs = int((await conn.execute(_NAMESPACE_BLOB_BYTES, parameters)).scalar_one())
            used_by_manifests = int((await conn.execute(_NAMESPACE_MANIFEST_BYTES, parameters)).scalar_one())
        return used_by_blobs + used_by_manifests

    async def namespace_holds(self, namespace: str, digest: str) -> bool:
        """True if a repository of the namespace links the blob or holds the manifest (already counted)."""
        parameters = {**_namespace_parameters(namespace), "p_digest": digest}
        async with self._store.reading() as conn:
            if (await conn.execute(_NAMESPACE_LINKS_BLOB, parameters)).first() is not None:
                return True
            return (await conn.execute(_NAMESPACE_HOLDS_MANIFEST, parameters)).first() is not None

    # Repositories

    async def delete_repository(self, repository: str) -> dict[str, int] | None:
        """Remove a repository with its tags, manifests, links and history; None if there is no such repository.

        Blob bytes stay for garbage collection (other repositories may link them). Returns what went.
        """
        async with self._store.writing() as conn:
            repository_id = await self._store.repository_id(conn, repository)
            if repository_id is None:
                return None
            counts = {}
            for name, table in (("tags", tags), ("manifests", manifests), ("blob_links", repository_blobs)):
                column = table.c.repository_id
                counts[name] = int(
                    (
                        await conn.execute(select(func.count()).select_from(table).where(column == repository_id))
                    ).scalar_one()
                )
            # Explicit deletes, children first: the schema's cascades need SQLite's foreign_keys pragma.
            for table in (tag_history, tags, manifest_references, manifests, repository_blobs):
                await conn.execute(delete(table).where(table.c.repository_id == repository_id))
            await conn.execute(delete(repositories).where(repositories.c.id == repository_id))
            return counts
