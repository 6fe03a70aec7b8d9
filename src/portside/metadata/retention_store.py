"""SQL of retention: policies, runs, the facts a policy is evaluated on, and last-pulled times."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from portside.metadata.lifecycle_store import in_namespace
from portside.metadata.retention_records import ManifestInfo, Policy, RepositoryFacts, TagFacts
from portside.metadata.store import MetadataStore, as_utc, utcnow
from portside.metadata.tables import (
    manifest_pulls,
    manifest_references,
    manifests,
    repositories,
    retention_policies,
    retention_runs,
    tags,
)


@dataclass(frozen=True)
class PolicyRecord:
    """A stored retention policy and what it covers."""

    id: int
    scope_kind: str
    scope: str
    policy: Policy
    created_by: str | None
    created_at: datetime


@dataclass(frozen=True)
class RetentionRunRecord:
    """One retention run and what it removed (or, dry, would remove)."""

    id: int
    started_at: datetime
    finished_at: datetime | None
    dry_run: bool
    trigger: str
    actor: str | None
    status: str
    removed: list[dict[str, str]]
    error: str | None


def _seconds(value: timedelta | None) -> int | None:
    return None if value is None else int(value.total_seconds())


def _duration(value: Any) -> timedelta | None:
    return None if value is None else timedelta(seconds=int(value))


def _policy_record(row: Any) -> PolicyRecord:
    return PolicyRecord(
        id=int(row.id),
        scope_kind=row.scope_kind,
        scope=row.scope,
        policy=Policy(
            tag_pattern=row.tag_pattern,
            keep_last=row.keep_last,
            delete_older_than=_duration(row.delete_older_than_seconds),
            untagged_after=_duration(row.untagged_after_seconds),
            keep_pulled_within=_duration(row.keep_pulled_within_seconds),
        ),
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
    )


def _run_record(row: Any) -> RetentionRunRecord:
    return RetentionRunRecord(
        id=int(row.id),
        started_at=as_utc(row.started_at),
        finished_at=None if row.finished_at is None else as_utc(row.finished_at),
        dry_run=bool(row.dry_run),
        trigger=row.trigger,
        actor=row.actor,
        status=row.status,
        removed=json.loads(row.removed),
        error=row.error,
    )


class RetentionStore:
    """Retention's reads and writes."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    # Policies

    async def add_policy(self, scope_kind: str, scope: str, policy: Policy, created_by: str | None) -> PolicyRecord:
        """Store a policy."""
        async with self._store.writing() as conn:
            result = await conn.execute(
                insert(retention_policies).values(
                    scope_kind=scope_kind,
                    scope=scope,
                    tag_pattern=policy.tag_pattern,
                    keep_last=policy.keep_last,
                    delete_older_than_seconds=_seconds(policy.delete_older_than),
                    untagged_after_seconds=_seconds(policy.untagged_after),
                    keep_pulled_within_seconds=_seconds(policy.keep_pulled_within),
                    created_by=created_by,
                    created_at=utcnow(),
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            row = (await conn.execute(select(retention_policies).where(retention_policies.c.id == key[0]))).one()
        return _policy_record(row)

    async def get_policy(self, policy_id: int) -> PolicyRecord | None:
        """A policy by id."""
        async with self._store.reading() as conn:
            row = (await conn.execute(select(retention_policies).where(retention_policies.c.id == policy_id))).first()
        return None if row is None else _policy_record(row)

    async def remove_policy(self, policy_id: int) -> bool:
        """Delete a policy; False if there was none."""
        async with self._store.writing() as conn:
            result = await conn.execute(delete(retention_policies).where(retention_policies.c.id == policy_id))
            return bool(result.rowcount)

    async def list_policies(self, scope_kind: str | None = None, scope: str | None = None) -> list[PolicyRecord]:
        """Policies, optionally of one scope, oldest first."""
        query = select(retention_policies).order_by(retention_policies.c.id)
        if scope_kind is not None:
            query = query.where(retention_policies.c.scope_kind == scope_kind)
        if scope is not None:
            query = query.where(retention_policies.c.scope == scope)
        async with self._store.reading() as conn:
            rows = (await conn.execute(query)).all()
        return [_policy_record(row) for row in rows]

    async def repositories_in(self, scope_kind: str, scope: str) -> list[tuple[int, str]]:
        """(id, name) of the repositories a scope covers."""
        condition = repositories.c.name == scope if scope_kind == "repository" else in_namespace(scope)
        query = select(repositories.c.id, repositories.c.name).where(condition).order_by(repositories.c.name)
        async with self._store.reading() as conn:
            rows = (await conn.execute(query)).all()
        return [(int(row.id), str(row.name)) for row in rows]

    # Facts

    async def facts(self, repository_id: int) -> RepositoryFacts:
        """A repository's tags, manifests (with children and subjects) and last pulls."""
        async with self._store.reading() as conn:
            tag_rows = (
                await conn.execute(
                    select(tags.c.name, tags.c.digest, tags.c.updated_at).where(tags.c.repository_id == repository_id)
                )
            ).all()
            manifest_rows = (
                await conn.execute(
                    select(
                        manifests.c.digest,
                        func.coalesce(manifests.c.touched_at, manifests.c.created_at).label("created_at"),
                        manifests.c.subject_digest,
                    ).where(manifests.c.repository_id == repository_id)
                )
            ).all()
            child_rows = (
                await conn.execute(
                    select(manifest_references.c.manifest_digest, manifest_references.c.target_digest).where(
                        manifest_references.c.repository_id == repository_id, manifest_references.c.kind == "manifest"
                    )
                )
            ).all()
            pull_rows = (
                await conn.execute(
                    select(manifest_pulls.c.digest, manifest_pulls.c.last_pulled_at).where(
                        manifest_pulls.c.repository_id == repository_id
                    )
                )
            ).all()
        children: dict[str, set[str]] = {}
        for row in child_rows:
            children.setdefault(str(row.manifest_digest), set()).add(str(row.target_digest))
        return RepositoryFacts(
            tags=[TagFacts(str(r.name), str(r.digest), as_utc(r.updated_at)) for r in tag_rows],
            manifests={
                str(r.digest): ManifestInfo(
                    str(r.digest), as_utc(r.created_at), r.subject_digest, frozenset(children.get(str(r.digest), ()))
                )
                for r in manifest_rows
            },
            last_pulled={str(r.digest): as_utc(r.last_pulled_at) for r in pull_rows},
        )

    async def record_pulls(self, pulls: Mapping[tuple[str, str], datetime]) -> None:
        """Note when manifests were last pulled ((repository name, digest) -> time), in one transaction."""
        if not pulls:
            return
        async with self._store.writing() as conn:
            names = sorted({name for name, _ in pulls})
            rows = (
                await conn.execute(select(repositories.c.id, repositories.c.name).where(repositories.c.name.in_(names)))
            ).all()
            ids = {str(row.name): int(row.id) for row in rows}
            values = [
                {"repository_id": ids[name], "digest": digest, "last_pulled_at": at}
                for (name, digest), at in sorted(pulls.items())
                if name in ids
            ]
            if values:
                statement = self._store.insert(manifest_pulls).values(values)
                await conn.execute(
                    statement.on_conflict_do_update(
                        index_elements=[manifest_pulls.c.repository_id, manifest_pulls.c.digest],
                        set_={"last_pulled_at": statement.excluded.last_pulled_at},
                    )
                )

    # Runs

    async def start_run(self, dry_run: bool, trigger: str, actor: str | None) -> int:
        """Record a run as it starts."""
        async with self._store.writing() as conn:
            result = await conn.execute(
                insert(retention_runs).values(
                    started_at=utcnow(), dry_run=dry_run, trigger=trigger, actor=actor, status="running", removed="[]"
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    async def finish_run(
        self, run_id: int, status: str, removed: list[dict[str, str]], error: str | None = None
    ) -> RetentionRunRecord:
        """Record how a run ended and what it removed."""
        async with self._store.writing() as conn:
            await conn.execute(
                update(retention_runs)
                .where(retention_runs.c.id == run_id)
                .values(status=status, removed=json.dumps(removed), error=error, finished_at=utcnow())
            )
            row = (await conn.execute(select(retention_runs).where(retention_runs.c.id == run_id))).one()
        return _run_record(row)

    async def list_runs(self, limit: int) -> list[RetentionRunRecord]:
        """The latest runs, newest first."""
        async with self._store.reading() as conn:
            rows = (await conn.execute(select(retention_runs).order_by(retention_runs.c.id.desc()).limit(limit))).all()
        return [_run_record(row) for row in rows]
