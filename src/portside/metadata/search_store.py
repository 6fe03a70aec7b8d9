"""The search index in the database: documents, facets, and the full-text queries over them.

SQLite (the embedded default) uses the FTS5 virtual table ``search_fts``; PostgreSQL the generated
``tsvector`` column ``search_documents.document`` with a GIN index (migration 0006_search). The
dialect-specific SQL is confined to :func:`_text_match` and the migration (which keeps ``search_fts``
in step with ``search_documents`` by triggers); everything else is shared SQLAlchemy Core.

Documents are rebuilt per repository by :func:`refresh_document`, inside the write transaction
of whatever changed the repository, so a search right after a push's ``201`` already sees it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    and_,
    case,
    column,
    delete,
    exists,
    func,
    or_,
    select,
    text,
)

from portside.metadata.engines import Writer
from portside.metadata.records import Visibility
from portside.metadata.search_documents import (
    INSERT_MANIFEST_FACETS,
    MAX_FACET_KEY,
    MAX_FACET_VALUE,
    NOTE_PUSH,
    SHOWN_DESCRIPTION,
    WITH_DOCUMENT,
    refresh_document,
)
from portside.metadata.store import InTransaction, MetadataStore, as_utc, utcnow
from portside.metadata.tables import (
    manifest_facets,
    manifests,
    repositories,
    search_documents,
    search_facets,
    tags,
)
from portside.metadata.visibility import visibility_filter
from portside.search.facets import Facet
from portside.search.query import SearchQuery
from portside.search.results import SearchHit

# Weights of the FTS5 columns (name_terms, description, body) for bm25.
SQLITE_RANK = "bm25(search_fts, 10.0, 4.0, 1.0)"


def namespace_of(name: str) -> str:
    """The first path component: a user's or an organization's name."""
    return name.split("/", 1)[0]


def _namespace_condition(namespace: str) -> Any:
    prefix = f"{namespace}/"
    return or_(repositories.c.name == namespace, func.substr(repositories.c.name, 1, len(prefix)) == prefix)


def _text_match(dialect: str, terms: Sequence[str]) -> Any:
    """A subquery of (repository_id, rank) for documents holding every term as a word prefix; lower rank is better.

    Terms are letters, digits and underscores only (see :func:`text_terms`), so they cannot carry
    query syntax; they are still passed as bound parameters.
    """
    if dialect == "sqlite":
        match = " AND ".join(f'"{term}"*' for term in terms)
        statement = text(
            f"SELECT rowid AS repository_id, {SQLITE_RANK} AS rank FROM search_fts WHERE search_fts MATCH :match"  # noqa: S608 - constants only
        ).bindparams(match=match)
    else:
        parts = [f"(to_tsquery('simple', :t{i}) || to_tsquery('english', :t{i}))" for i in range(len(terms))]
        tsquery = " && ".join(parts)
        statement = text(
            "SELECT repository_id, -ts_rank_cd(document, tsq.q) AS rank FROM search_documents, "  # noqa: S608 - placeholders only
            f"(SELECT {tsquery} AS q) AS tsq WHERE document @@ tsq.q"
        ).bindparams(**{f"t{i}": f"{term}:*" for i, term in enumerate(terms)})
    return statement.columns(column("repository_id", Integer), column("rank", Float)).subquery("fts")


def _facet_exists(kind: str, key: str | None, value: str | None = None, key_prefix: str | None = None) -> Any:
    conditions = [search_facets.c.repository_id == repositories.c.id, search_facets.c.kind == kind]
    if key is not None and key_prefix is not None:
        conditions.append(
            or_(
                search_facets.c.key == key,
                func.substr(search_facets.c.key, 1, len(key_prefix)) == key_prefix,
            )
        )
    elif key is not None:
        conditions.append(search_facets.c.key == key)
    if value is not None:
        conditions.append(search_facets.c.value == value[:MAX_FACET_VALUE])
    return exists(select(1).where(*conditions))


def filter_conditions(query: SearchQuery, visible: Visibility) -> list[Any]:
    """WHERE conditions on ``repositories`` for everything but the free text."""
    conditions: list[Any] = []
    if not visible.everything:
        conditions.append(visibility_filter(visible))
    if query.namespace:
        conditions.append(_namespace_condition(query.namespace))
    for label in query.labels:
        conditions.append(_facet_exists("label", label.key, label.value))
    for annotation in query.annotations:
        conditions.append(_facet_exists("annotation", annotation.key, annotation.value))
    if query.artifact_type:
        conditions.append(_facet_exists("artifact_type", query.artifact_type))
    if query.platform:
        conditions.append(_facet_exists("platform", query.platform.key, key_prefix=f"{query.platform.key}/"))
    return conditions


class SearchStore:
    """Index maintenance and queries, over the registry's metadata store."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._store.dialect

    # Maintenance

    def recording(self, digest: str, facets: Iterable[Facet], tagged: bool) -> InTransaction:
        """What a manifest push's transaction does for search: keep the manifest's facets, note the
        push time and, if it was tagged, rebuild the repository's document."""
        rows = [{"kind": f.kind, "key": f.key[:MAX_FACET_KEY], "value": f.value} for f in facets]

        async def record(conn: Writer, repository_id: int) -> None:
            if rows:
                await conn.execute(
                    INSERT_MANIFEST_FACETS[self.dialect],
                    [{"repository_id": repository_id, "manifest_digest": digest, **row} for row in rows],
                )
            if tagged:
                await refresh_document(conn, self.dialect, repository_id, pushed_at=utcnow())
            else:
                await conn.execute(NOTE_PUSH, {"rid": repository_id, "pushed_at": utcnow()})

        return record

    async def forget_manifest(self, repository: str, digest: str) -> None:
        """Drop a deleted manifest's facets and refresh the repository's document."""
        async with self._store.writing() as conn:
            repository_id = await self._store.repository_id(conn, repository)
            if repository_id is None:
                return
            await conn.execute(
                delete(manifest_facets).where(
                    manifest_facets.c.repository_id == repository_id, manifest_facets.c.manifest_digest == digest
                )
            )
            await refresh_document(conn, self.dialect, repository_id)

    async def refresh(self, repository: str) -> None:
        """Rebuild a repository's document (after a tag was deleted or its description changed)."""
        async with self._store.writing() as conn:
            repository_id = await self._store.repository_id(conn, repository)
            if repository_id is not None:
                await refresh_document(conn, self.dialect, repository_id)

    async def unindexed_repositories(self) -> list[str]:
        """Names of repositories without a search document (created before migration 0006, say)."""
        query = (
            select(repositories.c.name)
            .where(~exists(select(1).where(search_documents.c.repository_id == repositories.c.id)))
            .order_by(repositories.c.name)
        )
        async with self._store.reading() as conn:
            return list((await conn.execute(query)).scalars())

    async def manifest_digests(self, repository: str) -> list[str]:
        """Digests of every manifest of a repository."""
        query = (
            select(manifests.c.digest)
            .select_from(manifests.join(repositories, repositories.c.id == manifests.c.repository_id))
            .where(repositories.c.name == repository)
            .order_by(manifests.c.digest)
        )
        async with self._store.reading() as conn:
            return list((await conn.execute(query)).scalars())

    async def replace_facets(self, repository: str, facets: dict[str, list[Facet]]) -> None:
        """Set these manifests' facets anew (by digest) and rebuild the document, in one transaction."""
        async with self._store.writing() as conn:
            repository_id = await self._store.repository_id(conn, repository)
            if repository_id is None:
                return
            # Only the manifests that were re-read: a push landing meanwhile keeps what it recorded.
            digests = sorted(facets)
            for start in range(0, len(digests), 500):
                await conn.execute(
                    delete(manifest_facets).where(
                        manifest_facets.c.repository_id == repository_id,
                        manifest_facets.c.manifest_digest.in_(digests[start : start + 500]),
                    )
                )
            rows = [
                {
                    "repository_id": repository_id,
                    "manifest_digest": digest,
                    "kind": f.kind,
                    "key": f.key[:MAX_FACET_KEY],
                    "value": f.value,
                }
                for digest, found in facets.items()
                for f in {(f.kind, f.key[:MAX_FACET_KEY]): f for f in found}.values()
            ]
            if rows:
                await conn.execute(manifest_facets.insert(), rows)
            await refresh_document(conn, self.dialect, repository_id)

    async def indexed_count(self) -> tuple[int, int]:
        """(repositories, search documents): a difference means the index needs rebuilding."""
        async with self._store.reading() as conn:
            repos = (await conn.execute(select(func.count()).select_from(repositories))).scalar_one()
            docs = (await conn.execute(select(func.count()).select_from(search_documents))).scalar_one()
        return int(repos), int(docs)

    # Queries

    async def search(self, query: SearchQuery, visible: Visibility) -> tuple[list[SearchHit], int]:
        """One page of matching repositories in rank order, and the number of matches in all."""
        conditions = filter_conditions(query, visible)
        source: Any = WITH_DOCUMENT
        terms = query.terms
        order: list[Any] = []
        if terms:
            fts = _text_match(self.dialect, terms)
            documents = search_documents
            source = WITH_DOCUMENT.join(fts, fts.c.repository_id == repositories.c.id)
            phrase = query.phrase
            n = len(phrase)
            tier = case(
                (or_(documents.c.name == phrase, documents.c.short_name == phrase), 0),
                (
                    or_(
                        func.substr(documents.c.name, 1, n) == phrase,
                        func.substr(documents.c.short_name, 1, n) == phrase,
                    ),
                    1,
                ),
                else_=2,
            )
            if query.sort == "relevance":
                order = [tier, fts.c.rank]
        order += _sort_order(query)
        columns = [
            repositories.c.id,
            repositories.c.name,
            SHOWN_DESCRIPTION.label("description"),
            repositories.c.visibility,
            repositories.c.star_count,
            repositories.c.pull_count,
            repositories.c.last_pushed_at,
        ]
        page_query = (
            select(*columns)
            .select_from(source)
            .where(*conditions)
            .order_by(*order)
            .limit(query.per_page)
            .offset(query.offset)
        )
        count_query = select(func.count()).select_from(source).where(*conditions)
        async with self._store.reading() as conn:
            total = int((await conn.execute(count_query)).scalar_one())
            rows = (await conn.execute(page_query)).all() if total > query.offset else []
            ids = [int(row.id) for row in rows]
            matched_tags = await self._matched_tags(conn, ids, terms)
            matched_facets = await self._matched_facets(conn, ids, terms, query)
        hits = [
            SearchHit(
                name=row.name,
                namespace=namespace_of(row.name),
                description=row.description,
                visibility=row.visibility,
                stars=int(row.star_count),
                pulls=int(row.pull_count),
                last_pushed_at=None if row.last_pushed_at is None else as_utc(row.last_pushed_at),
                matched_tags=tuple(matched_tags.get(int(row.id), ())),
                matched_labels=tuple(matched_facets.get((int(row.id), "label"), ())),
                matched_annotations=tuple(matched_facets.get((int(row.id), "annotation"), ())),
            )
            for row in rows
        ]
        return hits, total

    async def _matched_tags(self, conn: Any, ids: list[int], terms: Sequence[str]) -> dict[int, list[str]]:
        if not ids or not terms:
            return {}
        lowered = func.lower(tags.c.name)
        query = (
            select(tags.c.repository_id, tags.c.name)
            .where(tags.c.repository_id.in_(ids), or_(*(lowered.contains(t, autoescape=True) for t in terms)))
            .order_by(tags.c.repository_id, self._store.ordered(tags.c.name))
        )
        found: dict[int, list[str]] = {}
        for row in (await conn.execute(query)).all():
            names = found.setdefault(int(row.repository_id), [])
            if len(names) < 20:
                names.append(row.name)
        return found

    async def _matched_facets(
        self, conn: Any, ids: list[int], terms: Sequence[str], query: SearchQuery
    ) -> dict[tuple[int, str], list[str]]:
        if not ids:
            return {}
        wanted: list[Any] = []
        key, value = func.lower(search_facets.c.key), func.lower(search_facets.c.value)
        for term in terms:
            wanted += [key.contains(term, autoescape=True), value.contains(term, autoescape=True)]
        for kind, filters in (("label", query.labels), ("annotation", query.annotations)):
            for f in filters:
                wanted.append(and_(search_facets.c.kind == kind, search_facets.c.key == f.key))
        if not wanted:
            return {}
        statement = (
            select(search_facets.c.repository_id, search_facets.c.kind, search_facets.c.key, search_facets.c.value)
            .where(
                search_facets.c.repository_id.in_(ids),
                search_facets.c.kind.in_(["label", "annotation"]),
                or_(*wanted),
            )
            .order_by(search_facets.c.repository_id, search_facets.c.kind, search_facets.c.key)
        )
        found: dict[tuple[int, str], list[str]] = {}
        for row in (await conn.execute(statement)).all():
            entries = found.setdefault((int(row.repository_id), row.kind), [])
            if len(entries) < 20:
                entries.append(f"{row.key}={row.value}")
        return found


def _sort_order(query: SearchQuery) -> list[Any]:
    popularity = [repositories.c.star_count.desc(), repositories.c.pull_count.desc()]
    recent = [repositories.c.last_pushed_at.desc().nulls_last()]
    name = [repositories.c.name]
    if query.sort == "recent":
        return recent + popularity + name
    if query.sort == "popular":
        return [repositories.c.pull_count.desc(), repositories.c.star_count.desc(), *recent, *name]
    if query.sort == "stars":
        return popularity + recent + name
    if query.sort == "name":
        return name
    return popularity + recent + name
