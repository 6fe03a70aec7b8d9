"""Search documents: how one repository's document and live facets are rebuilt, inside the
transaction of whatever changed the repository (see :mod:`portside.metadata.search_store`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Text, and_, bindparam, delete, func, literal, select, union, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from portside.free_text import MAX_DESCRIPTION
from portside.metadata.engines import Writer
from portside.metadata.fast_sqlite import prebuilt
from portside.metadata.store import utcnow
from portside.metadata.tables import (
    manifest_facets,
    manifest_references,
    repositories,
    search_documents,
    search_facets,
    tags,
)

MAX_FACET_KEY = 255
MAX_FACET_VALUE = 512
# The annotation (and, by convention, the image label) an image describes itself with.
IMAGE_DESCRIPTION_KEY = "org.opencontainers.image.description"


def name_terms(name: str) -> str:
    """The words a repository's name is found by: the name, and each component also without separators."""
    components = name.lower().split("/")
    squashed = [c.replace("-", "").replace("_", "").replace(".", "") for c in components]
    return " ".join([name.lower(), *components, *squashed])


# A repository with its search document, if it has one (not before ``portside search reindex``,
# for repositories older than migration 0006).
WITH_DOCUMENT = repositories.outerjoin(search_documents, search_documents.c.repository_id == repositories.c.id)
# The description lists and search results show (select from WITH_DOCUMENT): the document's,
# which is the written one or else the image's own, or the written one of an unindexed repository.
SHOWN_DESCRIPTION = func.coalesce(func.nullif(search_documents.c.description, ""), repositories.c.description)


# The statements of refresh_document, built once (building costs far more than running them):
# the repository's id is the bound parameter ``rid`` in each.
_RID = bindparam("rid", type_=Integer)


def _live_digests() -> Any:
    """The digests of a repository's live content: its tagged manifests and the children of tagged
    indexes, each with when its tag last moved (``tagged_at``)."""
    tagged = select(tags.c.digest.label("digest"), tags.c.updated_at.label("tagged_at")).where(
        tags.c.repository_id == _RID
    )
    children = (
        select(manifest_references.c.target_digest.label("digest"), tags.c.updated_at.label("tagged_at"))
        .select_from(
            manifest_references.join(
                tags,
                and_(
                    tags.c.repository_id == manifest_references.c.repository_id,
                    tags.c.digest == manifest_references.c.manifest_digest,
                ),
            )
        )
        .where(manifest_references.c.repository_id == _RID, manifest_references.c.kind == "manifest")
    )
    return union(tagged, children).subquery()


_COLUMNS = (repositories.c.name, repositories.c.description, repositories.c.readme)
NOTE_PUSH = prebuilt(
    update(repositories)
    .where(repositories.c.id == _RID)
    .values(last_pushed_at=bindparam("pushed_at", type_=repositories.c.last_pushed_at.type))
)
# The row lock (UPDATE, or FOR UPDATE on PostgreSQL) serialises concurrent refreshes of one repository.
_NOTE_PUSH_AND_LOCK = prebuilt(NOTE_PUSH.returning(*_COLUMNS))
_LOCK = prebuilt(select(*_COLUMNS).where(repositories.c.id == _RID).with_for_update())
_CLEAR_FACETS = prebuilt(delete(search_facets).where(search_facets.c.repository_id == _RID))
_LIVE = _live_digests()
_FILL_FACETS = prebuilt(
    search_facets.insert().from_select(
        ["repository_id", "kind", "key", "value"],
        select(
            _RID,
            manifest_facets.c.kind,
            func.substr(manifest_facets.c.key, 1, MAX_FACET_KEY),
            func.substr(manifest_facets.c.value, 1, MAX_FACET_VALUE),
        )
        .where(
            manifest_facets.c.repository_id == _RID,
            manifest_facets.c.manifest_digest.in_(select(_LIVE.c.digest)),
        )
        .distinct(),
    )
)


def _image_description() -> Any:
    """What the live content says it is, for a repository nobody wrote a description for: the
    ``org.opencontainers.image.description`` of the manifest (or index's child) whose tag moved
    last, an annotation before a label; NULL if none says."""
    value = func.substr(manifest_facets.c.value, 1, MAX_DESCRIPTION)
    return (
        select(value)
        .select_from(manifest_facets.join(_LIVE, _LIVE.c.digest == manifest_facets.c.manifest_digest))
        .where(
            manifest_facets.c.repository_id == _RID,
            manifest_facets.c.key == IMAGE_DESCRIPTION_KEY,
            manifest_facets.c.kind.in_(("annotation", "label")),
            func.trim(manifest_facets.c.value) != "",
        )
        .order_by(_LIVE.c.tagged_at.desc(), manifest_facets.c.kind, manifest_facets.c.manifest_digest)
        .limit(1)
        .scalar_subquery()
    )


def _document_upsert(dialect: str) -> Any:
    # aggregate_strings renders its separator into the SQL at every execution; the dialect's own
    # function (the one aggregate_strings compiles to) takes it as an ordinary bound parameter.
    aggregate = func.group_concat if dialect == "sqlite" else func.string_agg
    tag_words = select(aggregate(tags.c.name, " ", type_=Text)).where(tags.c.repository_id == _RID).scalar_subquery()
    facet_words = (
        select(aggregate(search_facets.c.key + " " + search_facets.c.value, "\n", type_=Text))
        .where(search_facets.c.repository_id == _RID)
        .scalar_subquery()
    )
    body = (
        bindparam("readme_line", type_=Text)
        + func.coalesce(tag_words, "")
        + literal("\n", Text)
        + func.coalesce(facet_words, "")
    )
    values: dict[str, Any] = {
        key: bindparam(f"doc_{key}", type_=search_documents.c[key].type) for key in ("name", "short_name", "name_terms")
    }
    # What lists and search results show: the written description, else the image's own.
    written = func.nullif(bindparam("written_description", type_=Text), "")
    values["description"] = func.coalesce(written, _image_description(), literal("", Text))
    values["body"] = body
    values["updated_at"] = bindparam("doc_updated_at", type_=search_documents.c.updated_at.type)
    # On SQLite, triggers on search_documents keep the FTS5 table in step (migration 0006_search).
    upsert = (sqlite_insert if dialect == "sqlite" else postgresql_insert)(search_documents)
    return upsert.values(repository_id=_RID, **values).on_conflict_do_update(
        index_elements=[search_documents.c.repository_id],
        set_={key: upsert.excluded[key] for key in values},
    )


def _facets_insert(dialect: str) -> Any:
    return (sqlite_insert if dialect == "sqlite" else postgresql_insert)(manifest_facets).on_conflict_do_nothing()


_UPSERT_DOCUMENT = {dialect: prebuilt(_document_upsert(dialect)) for dialect in ("sqlite", "postgresql")}
INSERT_MANIFEST_FACETS = {dialect: prebuilt(_facets_insert(dialect)) for dialect in ("sqlite", "postgresql")}


async def refresh_document(conn: Writer, dialect: str, repository_id: int, pushed_at: datetime | None = None) -> None:
    """Rebuild one repository's search document and live facets from what the database holds now.

    With ``pushed_at``, also note it as the repository's last push (in the same statement).
    """
    rid = {"rid": repository_id}
    if pushed_at is not None:
        repo = (await conn.execute(_NOTE_PUSH_AND_LOCK, {"rid": repository_id, "pushed_at": pushed_at})).first()
    else:
        repo = (await conn.execute(_LOCK, rid)).first()
    if repo is None:
        return
    # Facets of the live content: tagged manifests and the children of tagged indexes. The rest
    # is done by the database (no rows travel), in as few statements as possible.
    await conn.execute(_CLEAR_FACETS, rid)
    await conn.execute(_FILL_FACETS, rid)
    name = repo.name.lower()
    await conn.execute(
        _UPSERT_DOCUMENT[dialect],
        {
            "rid": repository_id,
            "readme_line": (repo.readme or "") + "\n",
            "doc_name": name,
            "doc_short_name": name.rsplit("/", 1)[-1],
            "doc_name_terms": name_terms(repo.name),
            "written_description": repo.description or "",
            "doc_updated_at": utcnow(),
        },
    )
