"""The registry's services, built once per app and reached through the app's state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from portside.config import Settings
from portside.metadata.store import MetadataStore
from portside.registry.blobs import BlobService
from portside.registry.listings import ListingService
from portside.registry.manifests import ManifestService
from portside.registry.referrers import ReferrerService
from portside.registry.uploads import UploadService
from portside.storage.base import BlobStorage
from portside.storage.filesystem import FilesystemStorage


@dataclass
class Registry:
    """Every service of one registry, wired to one metadata store and one blob storage."""

    settings: Settings
    store: MetadataStore
    storage: BlobStorage
    blobs: BlobService
    uploads: UploadService
    manifests: ManifestService
    listings: ListingService
    referrers: ReferrerService

    async def close(self) -> None:
        """Release database connections and storage handles."""
        await self.store.close()
        await self.storage.close()


def build_storage(settings: Settings) -> BlobStorage:
    """The blob storage driver the settings choose."""
    return FilesystemStorage(settings.blob_root)


def build_registry(settings: Settings) -> Registry:
    """Wire the services for ``settings``."""
    store = MetadataStore(settings.resolved_database_url)
    storage = build_storage(settings)
    blobs = BlobService(store, storage)
    return Registry(
        settings=settings,
        store=store,
        storage=storage,
        blobs=blobs,
        uploads=UploadService(store, storage, timedelta(seconds=settings.upload_expiry_seconds)),
        manifests=ManifestService(store, blobs, settings.max_manifest_bytes),
        listings=ListingService(store),
        referrers=ReferrerService(store),
    )
