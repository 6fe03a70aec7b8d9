"""Prebuilt statements for the blob push path: repositories, blob rows, blob links, upload sessions.

Building a SQLAlchemy statement costs far more than SQLite takes to run it (about 130 us against
20-60 us); built once here with ``bindparam`` and executed with a parameter dict, SQLAlchemy
compiles each one once per dialect and reuses the compiled form. Upserts differ per dialect,
so they are built for both, keyed by :attr:`MetadataStore.dialect`.

Bind parameter names carry a ``p_`` prefix: SQLAlchemy reserves a column's own name for the
VALUES or SET clause of an INSERT or UPDATE on its table.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, null, select, update
from sqlalchemy.dialects import postgresql, sqlite

from portside.metadata.fast_sqlite import prebuilt
from portside.metadata.tables import blob_contents, blobs, namespace_quotas, repositories, repository_blobs, uploads

# Each dialect's INSERT, which has ``on_conflict_do_nothing``/``_do_update`` and ``excluded``.
_INSERTS: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}

# Repositories

REPOSITORY_ID: Any = prebuilt(select(repositories.c.id).where(repositories.c.name == bindparam("p_name")))


def _create_repository(dialect: str) -> Any:
    return (
        _INSERTS[dialect](repositories)
        .values(name=bindparam("p_name"), created_at=bindparam("p_now"))
        .on_conflict_do_nothing()
    )


CREATE_REPOSITORY: dict[str, Any] = {dialect: prebuilt(_create_repository(dialect)) for dialect in _INSERTS}

# Blob rows


def _claim_blob(dialect: str) -> Any:
    statement = _INSERTS[dialect](blobs).values(
        digest=bindparam("p_digest"),
        size=bindparam("p_size"),
        created_at=bindparam("p_now"),
        touched_at=bindparam("p_now"),
    )
    # ``excluded.touched_at`` is the ``now`` just offered: the same renewal as setting it again.
    return statement.on_conflict_do_update(
        index_elements=[blobs.c.digest], set_={"touched_at": statement.excluded.touched_at}
    )


CLAIM_BLOB: dict[str, Any] = {dialect: prebuilt(_claim_blob(dialect)) for dialect in _INSERTS}
TOUCH_BLOB: Any = prebuilt(
    update(blobs).where(blobs.c.digest == bindparam("p_digest")).values(touched_at=bindparam("p_now"))
)
BLOB_SIZE: Any = prebuilt(select(blobs.c.size).where(blobs.c.digest == bindparam("p_digest")))

# Small blobs' bytes, kept in the database

STORE_CONTENT: dict[str, Any] = {
    dialect: prebuilt(
        _INSERTS[dialect](blob_contents)
        .values(digest=bindparam("p_digest"), content=bindparam("p_content"))
        .on_conflict_do_nothing()
    )
    for dialect in _INSERTS
}
BLOB_CONTENT: Any = prebuilt(select(blob_contents.c.content).where(blob_contents.c.digest == bindparam("p_digest")))
HOLDS_CONTENT: Any = prebuilt(select(blob_contents.c.digest).where(blob_contents.c.digest == bindparam("p_digest")))

# Blob links


def _link_blob(dialect: str) -> Any:
    statement = _INSERTS[dialect](repository_blobs).values(
        repository_id=bindparam("p_repository_id"), digest=bindparam("p_digest"), created_at=bindparam("p_now")
    )
    return statement.on_conflict_do_update(
        index_elements=[repository_blobs.c.repository_id, repository_blobs.c.digest],
        set_={"created_at": statement.excluded.created_at},
    )


LINK_BLOB: dict[str, Any] = {dialect: prebuilt(_link_blob(dialect)) for dialect in _INSERTS}
LINKED_BLOB_SIZE: Any = prebuilt(
    select(blobs.c.size)
    .select_from(
        repository_blobs.join(repositories, repositories.c.id == repository_blobs.c.repository_id).join(
            blobs, blobs.c.digest == repository_blobs.c.digest
        )
    )
    .where(repositories.c.name == bindparam("p_repository"), repository_blobs.c.digest == bindparam("p_digest"))
)
UNLINK_BLOB: Any = prebuilt(
    delete(repository_blobs).where(
        repository_blobs.c.repository_id == bindparam("p_repository_id"),
        repository_blobs.c.digest == bindparam("p_digest"),
    )
)

# Upload sessions

GET_UPLOAD: Any = prebuilt(select(uploads).where(uploads.c.id == bindparam("p_id")))
# The session and its namespace's own quota (NULL without one) in one lookup: an upload's PATCH or
# PUT needs both, and a read transaction costs more than the statement.
GET_UPLOAD_WITH_QUOTA: Any = prebuilt(
    select(
        uploads,
        select(namespace_quotas.c.limit_bytes)
        .where(namespace_quotas.c.namespace == bindparam("p_namespace"))
        .scalar_subquery()
        .label("quota_limit"),
    ).where(uploads.c.id == bindparam("p_id"))
)
TOUCH_UPLOAD: Any = prebuilt(
    update(uploads).where(uploads.c.id == bindparam("p_id")).values(updated_at=bindparam("p_now"))
)
# The first write to a session with a signed id makes its row (nothing if it has one already),
# with that write's bytes when they are small enough to keep there.
OPEN_UPLOAD: dict[str, Any] = {
    dialect: prebuilt(
        _INSERTS[dialect](uploads)
        .values(
            id=bindparam("p_id"),
            repository=bindparam("p_repository"),
            created_at=bindparam("p_created"),
            updated_at=bindparam("p_now"),
            first_chunk=bindparam("p_first_chunk"),
        )
        .on_conflict_do_nothing()
    )
    for dialect in _INSERTS
}
# Finishing or cancelling a session marks its row closed, making one if it had none, and drops
# the bytes its row kept.
CLOSE_UPLOAD: dict[str, Any] = {
    dialect: prebuilt(
        _INSERTS[dialect](uploads)
        .values(
            id=bindparam("p_id"),
            repository=bindparam("p_repository"),
            created_at=bindparam("p_now"),
            updated_at=bindparam("p_now"),
            closed_at=bindparam("p_now"),
        )
        .on_conflict_do_update(
            index_elements=[uploads.c.id],
            set_={"updated_at": bindparam("p_now"), "closed_at": bindparam("p_now"), "first_chunk": null()},
        )
    )
    for dialect in _INSERTS
}
IDLE_UPLOADS: Any = prebuilt(
    select(uploads.c.id, uploads.c.repository).where(
        uploads.c.updated_at < bindparam("p_before"), uploads.c.closed_at.is_(None)
    )
)
OPEN_UPLOADS_AMONG: Any = prebuilt(
    select(uploads.c.id).where(uploads.c.id.in_(bindparam("p_ids", expanding=True)), uploads.c.closed_at.is_(None))
)
FORGET_CLOSED_UPLOADS: Any = prebuilt(delete(uploads).where(uploads.c.closed_at < bindparam("p_before")))
