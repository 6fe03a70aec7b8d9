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

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from portside.metadata.engines import Writer
from portside.metadata.fast_sqlite import prebuilt
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


# Statements built once (building one costs several times what running it does): the
# repository's id is ``rid``, the tag's name ``tag``.
_RID = bindparam("rid", type_=tags.c.repository_id.type)
_TAG = bindparam("tag", type_=tags.c.name.type)
_CURRENT = select(tags.c.digest).where(tags.c.repository_id == _RID, tags.c.name == _TAG)
_CURRENT_LOCKED = prebuilt(_CURRENT.with_for_update())
_MOVE = prebuilt(
    update(tags)
    .where(tags.c.repository_id == _RID, tags.c.name == _TAG)
    .values(
        digest=bindparam("new_digest", type_=tags.c.digest.type),
        updated_at=bindparam("at", type_=tags.c.updated_at.type),
    )
)
_RECORD = prebuilt(tag_history.insert())


def _create(dialect: str) -> Any:
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    return insert(tags).on_conflict_do_nothing()


_CREATE = {dialect: prebuilt(_create(dialect)) for dialect in ("sqlite", "postgresql")}


async def current_digest(conn: Writer, repository_id: int, tag: str, *, lock: bool) -> str | None:
    """The digest ``tag`` points at now (row-locked on PostgreSQL when ``lock``)."""
    query = _CURRENT_LOCKED if lock else _CURRENT
    value = (await conn.execute(query, {"rid": repository_id, "tag": tag})).scalar_one_or_none()
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
        _RECORD,
        {
            "repository_id": repository_id,
            "tag": tag,
            "old_digest": old_digest,
            "new_digest": new_digest,
            "action": action,
            "actor": actor,
            "recorded_at": at,
        },
    )


async def point_tag(
    conn: Writer,
    dialect: str,
    repository_id: int,
    tag: str,
    digest: str,
    *,
    actor: str | None,
    guard: TagGuard | None,
    at: datetime,
    restoring: bool = False,
    known: bool = False,
    known_digest: str | None = None,
) -> str | None:
    """Point ``tag`` at ``digest`` and record the change; the digest it had (None: it was absent).

    ``dialect`` is the store's (``sqlite`` or ``postgresql``). A tag that already points at
    ``digest`` is left alone and nothing is recorded. Moving a tag ``guard`` protects raises
    ``TagLocked``, also when another transaction created the tag a moment before this one: the
    insert below waits for that transaction and then sees its row, so two concurrent first
    pushes of a protected tag cannot both win. With ``known``, the caller already read (and
    locked) the tag in this transaction and found ``known_digest``, so it is not read again.
    """
    old = known_digest if known else await current_digest(conn, repository_id, tag, lock=True)
    if old is None:
        created = await conn.execute(
            _CREATE[dialect], {"repository_id": repository_id, "name": tag, "digest": digest, "updated_at": at}
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
    await conn.execute(_MOVE, {"rid": repository_id, "tag": tag, "new_digest": digest, "at": at})
    await record_tag_change(conn, repository_id, tag, "restored" if restoring else "moved", old, digest, actor, at)
    return old
