"""Manifests: validated on the way in, served byte-exact on the way out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from portside.lifecycle.immutability import locked_error
from portside.metadata.gc_protocol import ReferencesVanished
from portside.metadata.records import ManifestRecord, Reference
from portside.metadata.store import InTransaction, MetadataStore
from portside.metadata.tag_changes import TagGuard, TagLocked
from portside.oci import media_types as mt
from portside.oci.digest import Digest, digest_of, looks_like_digest, parse_digest
from portside.oci.errors import ErrorKind, RegistryError
from portside.oci.manifest import ParsedManifest, parse_manifest
from portside.oci.names import validate_tag
from portside.registry.blobs import BlobService

if TYPE_CHECKING:
    from portside.lifecycle.immutability import ImmutabilityService
    from portside.lifecycle.quotas import QuotaService


@dataclass(frozen=True)
class StoredManifest:
    """The outcome of a manifest PUT."""

    digest: Digest
    subject: str | None
    media_type: str = ""


def manifest_record(digest: Digest, content: bytes, parsed: ParsedManifest) -> ManifestRecord:
    """What the metadata store keeps of a manifest: its bytes and what queries read from them."""
    return ManifestRecord(
        digest=str(digest),
        media_type=parsed.media_type,
        content=content,
        artifact_type=parsed.referrer_artifact_type,
        subject_digest=str(parsed.subject.digest) if parsed.subject else None,
        annotations=parsed.annotations,
    )


def references_of(manifest: ParsedManifest) -> list[Reference]:
    """The blobs and child manifests a manifest needs in its repository (``subject`` excluded)."""
    refs: list[Reference] = []
    if manifest.config is not None:
        refs.append(Reference(str(manifest.config.digest), "blob"))
    refs.extend(Reference(str(layer.digest), "blob") for layer in manifest.layers if not layer.is_foreign)
    refs.extend(Reference(str(child.digest), "manifest") for child in manifest.children)
    return refs


class ManifestListener(Protocol):
    """Told of every manifest and tag change before the client gets its answer (the search index is one)."""

    async def storing_manifest(
        self, repository: str, digest: str, manifest: ParsedManifest, tag: str | None
    ) -> InTransaction | None:
        """A manifest is about to be stored (and ``tag`` pointed at it, if given).

        What it returns runs inside the transaction that stores the manifest, so that the
        listener's record commits (or fails) with it; slow work (reading blobs) belongs here,
        before the transaction.
        """

    async def manifest_deleted(self, repository: str, digest: str) -> None:
        """A manifest and the tags pointing at it were deleted."""

    async def tag_deleted(self, repository: str, tag: str) -> None:
        """A tag was deleted; its manifest stays."""


class ManifestService:
    """Reads, writes and deletes of manifests and tags."""

    def __init__(
        self,
        store: MetadataStore,
        blobs: BlobService,
        max_bytes: int,
        immutability: ImmutabilityService | None = None,
        quotas: QuotaService | None = None,
        listeners: tuple[ManifestListener, ...] = (),
    ) -> None:
        self._store = store
        self._blobs = blobs
        self.max_bytes = max_bytes
        self._immutability = immutability
        self._quotas = quotas
        self._listeners = listeners

    async def _guard(self, repository: str) -> TagGuard | None:
        return None if self._immutability is None else await self._immutability.guard_for(repository)

    async def get(self, repository: str, reference: str, accepted: list[str]) -> ManifestRecord:
        """A manifest by tag or digest. By tag, its type must be acceptable to the client."""
        if looks_like_digest(reference):
            digest = parse_digest(reference)
            record = await self._store.get_manifest(repository, str(digest))
        else:
            validate_tag(reference)
            record = await self._store.get_manifest_by_tag(repository, reference)
            if record is not None and not mt.accepts(accepted, record.media_type):
                raise RegistryError(
                    ErrorKind.MANIFEST_UNKNOWN,
                    f"manifest is {record.media_type}, which the Accept header does not allow",
                    {"tag": reference, "mediaType": record.media_type},
                )
        if record is None:
            await self._raise_unknown(repository, reference)
        assert record is not None
        return record

    async def _raise_unknown(self, repository: str, reference: str) -> None:
        if not await self._store.repository_exists(repository):
            raise RegistryError(ErrorKind.NAME_UNKNOWN, detail={"name": repository})
        raise RegistryError(ErrorKind.MANIFEST_UNKNOWN, detail={"reference": reference})

    async def put(
        self, repository: str, reference: str, content: bytes, content_type: str | None, actor: str | None = None
    ) -> StoredManifest:
        """Validate and store a manifest exactly as sent; tag it if ``reference`` is a tag.

        ``actor`` is recorded in the tag's history (None: anonymous). ``DENIED`` if the tag would
        move and an immutable rule protects it, or if the manifest would exceed the namespace's quota.
        """
        if len(content) > self.max_bytes:
            raise RegistryError(ErrorKind.MANIFEST_TOO_LARGE, detail={"limit": self.max_bytes})
        tag: str | None = None
        if looks_like_digest(reference):
            claimed = parse_digest(reference)
            digest = digest_of(content, claimed.algorithm)
            if digest != claimed:
                raise RegistryError(
                    ErrorKind.DIGEST_INVALID,
                    "manifest digest does not match the reference it was put to",
                    {"expected": str(claimed), "actual": str(digest)},
                )
        else:
            tag = validate_tag(reference)
            digest = digest_of(content)
        parsed = parse_manifest(content, content_type)
        references = await self._ensure_references(repository, parsed)
        record = manifest_record(digest, content, parsed)
        if self._quotas is not None:
            await self._quotas.check(repository, len(content), record.digest)
        guard = None if tag is None else await self._guard(repository)
        steps = [
            await listener.storing_manifest(repository, record.digest, parsed, tag) for listener in self._listeners
        ]
        try:
            await self._store.put_manifest(
                repository,
                record,
                references,
                tag,
                actor,
                guard,
                also=[step for step in steps if step is not None],
            )
        except TagLocked as exc:
            raise locked_error(exc) from exc
        except ReferencesVanished as exc:
            # Garbage collection (or a delete) removed a reference after it was validated.
            raise RegistryError(
                ErrorKind.MANIFEST_BLOB_UNKNOWN, str(exc), [{"digest": m.digest, "kind": m.kind} for m in exc.missing]
            ) from exc
        return StoredManifest(digest, record.subject_digest, record.media_type)

    async def _ensure_references(self, repository: str, parsed: ParsedManifest) -> list[Reference]:
        """The manifest's references, all of them present in ``repository``; else ``MANIFEST_BLOB_UNKNOWN``."""
        config = parsed.config
        if config is not None and str(config.digest) == mt.EMPTY_JSON_DIGEST and config.size == len(mt.EMPTY_JSON):
            # Artifacts use the well-known empty config; not every client uploads it.
            await self._blobs.put_small(repository, config.digest, mt.EMPTY_JSON)
        references = references_of(parsed)
        missing = await self._store.missing_references(repository, references)
        if missing:
            raise RegistryError(
                ErrorKind.MANIFEST_BLOB_UNKNOWN,
                f"{len(missing)} referenced blob(s) or manifest(s) are not in the repository",
                [{"digest": m.digest, "kind": m.kind} for m in missing],
            )
        return references

    async def delete(self, repository: str, reference: str, actor: str | None = None) -> None:
        """By digest: remove the manifest and its tags. By tag: remove only the tag.

        Each removed tag is recorded in history with ``actor``; ``DENIED`` if an immutable rule
        protects a tag that would go.
        """
        guard = await self._guard(repository)
        try:
            if looks_like_digest(reference):
                digest = parse_digest(reference)
                if not await self._store.delete_manifest(repository, str(digest), actor, guard):
                    await self._raise_unknown(repository, reference)
                for listener in self._listeners:
                    await listener.manifest_deleted(repository, str(digest))
                return
            validate_tag(reference)
            if not await self._store.delete_tag(repository, reference, actor, guard):
                await self._raise_unknown(repository, reference)
        except TagLocked as exc:
            raise locked_error(exc) from exc
        for listener in self._listeners:
            await listener.tag_deleted(repository, reference)
