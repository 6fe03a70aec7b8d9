"""Statements of the manifest and tag methods of the metadata store, built once.

Building a SQLAlchemy statement costs several times what SQLite takes to run it, so the hot ones
are built at import with bind parameters. Dialect-specific ones are keyed by the dialect's name.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Integer, and_, bindparam, delete, literal, select, union_all
from sqlalchemy.dialects import postgresql, sqlite

from portside.metadata.fast_sqlite import prebuilt
from portside.metadata.records import ManifestRecord
from portside.metadata.tables import manifest_references, manifests, repositories, repository_blobs, tags

# Statements of the manifest and tag methods, built once: building a statement costs several
# times what SQLite takes to run it. Dialect-specific ones are keyed by the dialect's name.
DIALECTS = ("sqlite", "postgresql")
RID = bindparam("rid", type_=Integer)
DIGEST = bindparam("digest", type_=manifests.c.digest.type)
TAG = bindparam("tag", type_=tags.c.name.type)


def _present(kind: str, table: Any, digests: str) -> Any:
    """Which of the ``digests`` (an expanding bind) ``table`` holds in the named repository."""
    return prebuilt(
        select(literal(kind).label("kind"), table.c.digest.label("digest"))
        .select_from(table.join(repositories, repositories.c.id == table.c.repository_id))
        .where(repositories.c.name == bindparam("repository"), table.c.digest.in_(bindparam(digests, expanding=True)))
    )


PRESENT_LINKS = _present("blob", repository_blobs, "blob_digests")
PRESENT_MANIFESTS = _present("manifest", manifests, "manifest_digests")
# By (any blobs wanted, any manifests wanted): an empty IN list costs more to expand than a query to skip.
PRESENT_REFERENCES = {
    (True, False): PRESENT_LINKS,
    (False, True): PRESENT_MANIFESTS,
    (True, True): prebuilt(union_all(PRESENT_LINKS, PRESENT_MANIFESTS)),
}
MANIFEST_BY_DIGEST = prebuilt(
    select(manifests)
    .select_from(manifests.join(repositories, repositories.c.id == manifests.c.repository_id))
    .where(repositories.c.name == bindparam("repository"), manifests.c.digest == DIGEST)
)
MANIFEST_BY_TAG = prebuilt(
    select(manifests)
    .select_from(
        tags.join(repositories, repositories.c.id == tags.c.repository_id).join(
            manifests,
            and_(manifests.c.repository_id == tags.c.repository_id, manifests.c.digest == tags.c.digest),
        )
    )
    .where(repositories.c.name == bindparam("repository"), tags.c.name == TAG)
)
TAGS_POINTING_LOCKED = prebuilt(
    select(tags.c.name)
    .where(tags.c.repository_id == RID, tags.c.digest == DIGEST)
    .order_by(tags.c.name)
    .with_for_update()
)
DELETE_MANIFEST = prebuilt(delete(manifests).where(manifests.c.repository_id == RID, manifests.c.digest == DIGEST))
DELETE_REFERENCES = prebuilt(
    delete(manifest_references).where(
        manifest_references.c.repository_id == RID, manifest_references.c.manifest_digest == DIGEST
    )
)
DELETE_TAGS_POINTING = prebuilt(delete(tags).where(tags.c.repository_id == RID, tags.c.digest == DIGEST))
DELETE_TAG = prebuilt(delete(tags).where(tags.c.repository_id == RID, tags.c.name == TAG))


def dialect_insert(dialect: str, table: Any) -> Any:
    return (sqlite.insert if dialect == "sqlite" else postgresql.insert)(table)


def manifest_upsert(dialect: str) -> Any:
    upsert = dialect_insert(dialect, manifests)
    # touched_at of the row being inserted is the push's time: a re-push renews it.
    return upsert.on_conflict_do_update(
        index_elements=[manifests.c.repository_id, manifests.c.digest],
        set_={"touched_at": upsert.excluded.touched_at},
    )


def tag_listing(dialect: str, after: bool, limit: bool) -> Any:
    # Lexical (byte-wise) order as the spec asks; PostgreSQL's default collation is not.
    name = tags.c.name.collate("C") if dialect == "postgresql" else tags.c.name
    query = select(tags.c.name).where(tags.c.repository_id == RID).order_by(name)
    if after:
        query = query.where(name > bindparam("after", type_=tags.c.name.type))
    if limit:
        query = query.limit(bindparam("limit", type_=Integer))
    return query


UPSERT_MANIFEST = {dialect: prebuilt(manifest_upsert(dialect)) for dialect in DIALECTS}
INSERT_REFERENCES = {
    dialect: prebuilt(dialect_insert(dialect, manifest_references).on_conflict_do_nothing()) for dialect in DIALECTS
}
LIST_TAGS = {
    (dialect, after, limit): tag_listing(dialect, after, limit)
    for dialect in DIALECTS
    for after in (False, True)
    for limit in (False, True)
}


def manifest_record(row: Any) -> ManifestRecord:
    """The record of a ``manifests`` row."""
    return ManifestRecord(
        digest=row.digest,
        media_type=row.media_type,
        content=bytes(row.content),
        artifact_type=row.artifact_type,
        subject_digest=row.subject_digest,
        annotations=json.loads(row.annotations) if row.annotations else {},
    )
