"""Reads for the web UI's repository pages: every tag with its manifest in a constant number of queries."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select

from portside.metadata.store import MetadataStore, as_utc
from portside.metadata.tables import manifest_facets, manifests, repositories, tags


@dataclass(frozen=True)
class TaggedManifestRow:
    """A tag, when it last moved, and the manifest it points at."""

    tag: str
    digest: str
    updated_at: datetime
    media_type: str
    size: int
    content: bytes


class BrowseStore:
    """Queries that would otherwise run once per tag."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    async def tagged_manifests(self, repository: str) -> list[TaggedManifestRow]:
        """Every tag of ``repository`` with its manifest's bytes, most recently pushed first (one query)."""
        query = (
            select(
                tags.c.name,
                tags.c.digest,
                tags.c.updated_at,
                manifests.c.media_type,
                manifests.c.size,
                manifests.c.content,
            )
            .select_from(
                tags.join(repositories, repositories.c.id == tags.c.repository_id).join(
                    manifests,
                    and_(manifests.c.repository_id == tags.c.repository_id, manifests.c.digest == tags.c.digest),
                )
            )
            .where(repositories.c.name == repository)
            .order_by(tags.c.updated_at.desc(), self._store.ordered(tags.c.name))
        )
        async with self._store.reading() as conn:
            rows = (await conn.execute(query)).all()
        return [
            TaggedManifestRow(
                row.name, row.digest, as_utc(row.updated_at), row.media_type, int(row.size), bytes(row.content)
            )
            for row in rows
        ]

    async def manifests_content(self, repository: str, digests: set[str]) -> dict[str, tuple[str, bytes]]:
        """(media type, bytes) of the named manifests of ``repository`` (one query; absent ones left out)."""
        if not digests:
            return {}
        query = (
            select(manifests.c.digest, manifests.c.media_type, manifests.c.content)
            .select_from(manifests.join(repositories, repositories.c.id == manifests.c.repository_id))
            .where(repositories.c.name == repository, manifests.c.digest.in_(sorted(digests)))
        )
        async with self._store.reading() as conn:
            rows = (await conn.execute(query)).all()
        return {row.digest: (row.media_type, bytes(row.content)) for row in rows}

    async def platforms(self, repository: str) -> dict[str, list[str]]:
        """``os/arch[/variant]`` of each manifest of ``repository`` that has any, as the search index read them."""
        query = (
            select(manifest_facets.c.manifest_digest, manifest_facets.c.key)
            .select_from(manifest_facets.join(repositories, repositories.c.id == manifest_facets.c.repository_id))
            .where(repositories.c.name == repository, manifest_facets.c.kind == "platform")
            .order_by(manifest_facets.c.manifest_digest, manifest_facets.c.key)
        )
        async with self._store.reading() as conn:
            rows = (await conn.execute(query)).all()
        found: dict[str, list[str]] = defaultdict(list)
        for row in rows:
            found[row.manifest_digest].append(row.key)
        return dict(found)
