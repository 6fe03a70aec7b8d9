"""Keeps the search index in step with the registry: called by the manifest service on every push,
retag, tag delete and manifest delete, before the client gets its answer.

The cost on the push path: for an image manifest, one read of its config blob (a few KiB) and
a few statements in the push's own write transaction that store the facets and, for a
tagged push, rebuild the repository's search document (see docs/search.md for measurements).
"""

from __future__ import annotations

import logging

from portside.metadata.search_store import SearchStore
from portside.metadata.store import InTransaction, MetadataStore
from portside.oci.errors import RegistryError
from portside.oci.manifest import ParsedManifest, parse_manifest
from portside.search.facets import MAX_CONFIG_BYTES, Facet, facets_of, wants_config
from portside.storage.base import BlobStorage, ObjectMissing
from portside.storage.paths import blob_key

log = logging.getLogger("portside.search")


class SearchIndex:
    """The manifest service's listener that maintains ``manifest_facets`` and the search documents."""

    def __init__(self, store: SearchStore, metadata: MetadataStore, storage: BlobStorage) -> None:
        self._store = store
        self._metadata = metadata
        self._storage = storage

    async def _config_bytes(self, manifest: ParsedManifest) -> bytes | None:
        if not wants_config(manifest):
            return None
        assert manifest.config is not None
        kept = await self._metadata.blob_content(str(manifest.config.digest))
        if kept is not None:
            return kept[:MAX_CONFIG_BYTES]
        parts: list[bytes] = []
        try:
            async for chunk in self._storage.read(blob_key(manifest.config.digest), 0, MAX_CONFIG_BYTES):
                parts.append(chunk)
        except ObjectMissing:
            # A config linked but not (yet) readable only costs its labels in search.
            log.warning("config blob %s unreadable; indexing without its labels", manifest.config.digest)
            return None
        return b"".join(parts)

    async def storing_manifest(
        self, repository: str, digest: str, manifest: ParsedManifest, tag: str | None
    ) -> InTransaction:
        """A manifest is being pushed (tagged, if ``tag``): read its config now, record it in the push's commit."""
        facets = facets_of(manifest, await self._config_bytes(manifest))
        return self._store.recording(digest, facets, tagged=tag is not None)

    async def manifest_deleted(self, repository: str, digest: str) -> None:
        """A manifest and its tags were deleted."""
        await self._store.forget_manifest(repository, digest)

    async def tag_deleted(self, repository: str, tag: str) -> None:
        """A tag was deleted; the manifest stays."""
        await self._store.refresh(repository)

    async def repository_changed(self, repository: str) -> None:
        """Its description, README or tags changed (a restore, retention), or it was deleted."""
        await self._store.refresh(repository)

    async def reindex(self, repository: str) -> int:
        """Re-read every manifest (and image config) of a repository and rebuild its index entry; how many manifests."""
        facets: dict[str, list[Facet]] = {}
        for digest in await self._store.manifest_digests(repository):
            record = await self._metadata.get_manifest(repository, digest)
            if record is None:
                continue
            try:
                parsed = parse_manifest(record.content, record.media_type)
            except RegistryError:
                # Stored before validation was as strict; it simply adds nothing to search.
                continue
            facets[digest] = facets_of(parsed, await self._config_bytes(parsed))
        await self._store.replace_facets(repository, facets)
        return len(facets)

    async def backfill(self) -> str:
        """Index the repositories that have no search document yet (run at start by the background leader)."""
        names = await self._store.unindexed_repositories()
        for name in names:
            await self.reindex(name)
        return f"{len(names)} repositories indexed"
