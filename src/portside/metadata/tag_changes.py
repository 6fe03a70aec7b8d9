"""Tag changes inside the metadata store's write transactions: history rows and immutability guards.

Every write that creates, moves or deletes a tag calls into here on the same connection, so a
tag change and its history row commit (or roll back) together, and the immutability check sees
exactly the tag state that is about to be changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select, update

from portside.metadata.engines import Writer
from portside.metadata.tables import tag_history, tags

TagAction = Literal["created", "moved", "deleted", "restored"]


@dataclass(frozen=True)
class ImmutableRule:
    """Tags matching ``pattern`` in ``scope`` (a repository or a namespace) may not move or go."""

    id: int
    scope_kind: Literal["repository", "namespace"]
    scope: str
    pattern: str
    created_by: str | None
    created_at: datetime

    def describe(self) -> str:
        """How the rule is named in error messages."""
        return f"immutable rule {self.id} ({self.scope_kind} {self.scope!r}, pattern {self.pattern!r})"


@dataclass(frozen=True)
class TagHistoryEntry:
    """One recorded change of a tag."""

    id: int
    repository: str
    tag: str
    action: TagAction
    old_digest: str | None
    new_digest: str | None
    actor: str | None
    recorded_at: datetime


# Given a tag name, the rule that protects it, or None. Built by the service from the rules
# that apply to the repository, evaluated inside the write transaction.
TagGuard = Callable[[str], ImmutableRule | None]


class TagLocked(Exception):
    """A change to a tag that an immutable rule protects."""

    def __init__(self, tag: str, rule: ImmutableRule, change: str) -> None:
        super().__init__(f"tag {tag!r} is protected by {rule.describe()}: it cannot be {change}")
        self.tag = tag
        self.rule = rule
        self.change = change


def check_guard(guard: TagGuard | None, tag: str, change: str) -> None:
    """Raise ``TagLocked`` if ``guard`` protects ``tag``."""
    if guard is None:
        return
    rule = guard(tag)
    if rule is not None:
        raise TagLocked(tag, rule, change)


async def current_digest(conn: Writer, repository_id: int, tag: str, *, lock: bool) -> str | None:
    """The digest ``tag`` points at now (row-locked on PostgreSQL when ``lock``)."""
    query: Any = select(tags.c.digest).where(tags.c.repository_id == repository_id, tags.c.name == tag)
    if lock:
        query = query.with_for_update()
    value = (await conn.execute(query)).scalar_one_or_none()
    return None if value is None else str(value)


async def record_tag_change(
    conn: Writer,
    repository_id: int,
    tag: str,
    action: TagAction,
    old_digest: str | None,
    new_digest: str | None,
    actor: str | None,
    at: datetime,
) -> None:
    """Append one history row, in the caller's transaction."""
    await conn.execute(
        tag_history.insert().values(
            repository_id=repository_id,
            tag=tag,
            old_digest=old_digest,
            new_digest=new_digest,
            action=action,
            actor=actor,
            recorded_at=at,
        )
    )


async def point_tag(
    conn: Writer,
    insert: Callable[[Any], Any],
    repository_id: int,
    tag: str,
    digest: str,
    *,
    actor: str | None,
    guard: TagGuard | None,
    at: datetime,
    restoring: bool = False,
) -> str | None:
    """Point ``tag`` at ``digest`` and record the change; the digest it had (None: it was absent).

    ``insert`` is the store's dialect INSERT. A tag that already points at ``digest`` is left
    alone and nothing is recorded. Moving a tag ``guard`` protects raises ``TagLocked``, also
    when another transaction created the tag a moment before this one: the insert below waits
    for that transaction and then sees its row, so two concurrent first pushes of a protected
    tag cannot both win.
    """
    old = await current_digest(conn, repository_id, tag, lock=True)
    if old is None:
        created = await conn.execute(
            insert(tags)
            .values(repository_id=repository_id, name=tag, digest=digest, updated_at=at)
            .on_conflict_do_nothing()
        )
        if created.rowcount:
            await record_tag_change(
                conn, repository_id, tag, "restored" if restoring else "created", None, digest, actor, at
            )
            return None
        old = await current_digest(conn, repository_id, tag, lock=True)
    if old == digest:
        return old
    check_guard(guard, tag, f"{'restored' if restoring else 'moved'} to {digest}")
    await conn.execute(
        update(tags)
        .where(tags.c.repository_id == repository_id, tags.c.name == tag)
        .values(digest=digest, updated_at=at)
    )
    await record_tag_change(conn, repository_id, tag, "restored" if restoring else "moved", old, digest, actor, at)
    return old
