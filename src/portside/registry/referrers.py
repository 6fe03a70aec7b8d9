"""The referrers API: manifests whose ``subject`` is a given manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from portside.metadata.referrer_store import list_referrers
from portside.metadata.store import MetadataStore
from portside.oci import media_types as mt
from portside.oci.digest import Digest
from portside.oci.errors import ErrorKind, RegistryError


@dataclass(frozen=True)
class ReferrersIndex:
    """The OCI index the referrers API answers with, and whether a filter was applied."""

    content: bytes
    filtered: bool


class ReferrerService:
    """Builds referrers indexes from recorded subjects."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    async def list(self, repository: str, subject: Digest, artifact_type: str | None) -> ReferrersIndex:
        """All referrers of ``subject`` in ``repository``, optionally of one artifact type."""
        if not await self._store.repository_exists(repository):
            raise RegistryError(ErrorKind.NAME_UNKNOWN, detail={"name": repository})
        descriptors: list[dict[str, Any]] = []
        for referrer in await list_referrers(self._store, repository, str(subject)):
            if artifact_type and referrer.artifact_type != artifact_type:
                continue
            descriptor: dict[str, Any] = {
                "mediaType": referrer.media_type,
                "digest": referrer.digest,
                "size": referrer.size,
            }
            if referrer.artifact_type:
                descriptor["artifactType"] = referrer.artifact_type
            if referrer.annotations:
                descriptor["annotations"] = referrer.annotations
            descriptors.append(descriptor)
        index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": descriptors}
        return ReferrersIndex(json.dumps(index).encode(), bool(artifact_type))
