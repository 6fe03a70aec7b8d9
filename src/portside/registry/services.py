"""The registry's services, built once per app and reached through the app's state."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import timedelta

from portside.api.access import Gate
from portside.auth.accounts import AccountService, LoginLimits
from portside.auth.audit import AuditLog
from portside.auth.passwords import Passwords
from portside.auth.tokens import KeyRing, TokenIssuer
from portside.config import Settings
from portside.lifecycle.changes import RetentionScanned
from portside.lifecycle.deletes import RepositoryDeletes
from portside.lifecycle.gc import GcService, GcSettings, gc_lock
from portside.lifecycle.history import HistoryService
from portside.lifecycle.immutability import ImmutabilityService
from portside.lifecycle.quotas import QuotaService
from portside.lifecycle.retention import PullRecorder, RetentionService
from portside.metadata.accounts_store import AccountStore
from portside.metadata.gc_store import GcStore
from portside.metadata.lifecycle_store import LifecycleStore
from portside.metadata.ratelimit_store import PullCounterStore
from portside.metadata.repository_info_store import RepositoryInfoStore
from portside.metadata.retention_store import RetentionStore
from portside.metadata.search_store import SearchStore
from portside.metadata.store import MetadataStore
from portside.metadata.webhook_store import WebhookStore
from portside.notifications.events import RetentionScan, Source
from portside.notifications.service import Notifier, NotifierOptions
from portside.registry.blobs import BlobService
from portside.registry.listings import ListingService
from portside.registry.maintenance import Maintenance
from portside.registry.manifests import ManifestService
from portside.registry.ratelimits import PullLimiter, PullLimits
from portside.registry.referrers import ReferrerService
from portside.registry.repository_info import RepositoryInfoService
from portside.registry.uploads import UploadService
from portside.search.index import SearchIndex
from portside.search.service import SearchService
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
    accounts: AccountService
    audit: AuditLog
    gate: Gate
    # Lifecycle (tag history, immutable tags, quotas, repository deletes)
    immutability: ImmutabilityService
    history: HistoryService
    quotas: QuotaService
    repository_deletes: RepositoryDeletes
    # Garbage collection and retention (migration 0005_retention)
    gc: GcService
    retention: RetentionService
    pulls: PullRecorder
    # Search (#4): queries, the index the manifest service keeps current, and repository metadata.
    search: SearchService
    search_index: SearchIndex
    repository_info: RepositoryInfoService
    notifier: Notifier
    maintenance: Maintenance

    # Pull rate limits (None when switched off: no cost on the pull path).
    pull_limits: PullLimiter | None = None

    async def close(self) -> None:
        """Release database connections and storage handles."""
        await self.gc.stop()
        await self.store.close()
        await self.storage.close()


def build_storage(settings: Settings) -> BlobStorage:
    """The blob storage driver the settings choose."""
    if settings.storage_driver == "s3":
        # Imported here so that filesystem deployments do not load botocore in every worker.
        from portside.storage.s3 import S3Options, S3Storage

        assert settings.s3_bucket is not None  # checked by the settings
        secret = settings.s3_secret_access_key
        return S3Storage(
            S3Options(
                bucket=settings.s3_bucket,
                endpoint_url=settings.s3_endpoint_url,
                region=settings.s3_region,
                access_key_id=settings.s3_access_key_id,
                secret_access_key=None if secret is None else secret.get_secret_value(),
                prefix=settings.s3_prefix,
                redirect_blobs=settings.s3_redirect_blobs,
            )
        )
    return FilesystemStorage(settings.blob_root)


def build_pull_limiter(settings: Settings, store: MetadataStore) -> PullLimiter | None:
    """The pull rate limiter, or ``None`` when ``pull_rate_limit`` is off."""
    if not settings.pull_rate_limit:
        return None
    limits = PullLimits(
        settings.pull_limit_anonymous, settings.pull_limit_authenticated, settings.pull_limit_window_seconds
    )
    return PullLimiter(PullCounterStore(store), limits)


def build_token_issuer(settings: Settings) -> TokenIssuer:
    """The token signer/verifier; creates the first signing key under the data dir if there is none."""
    return TokenIssuer(
        KeyRing(settings.resolved_keys_dir),
        settings.token_issuer,
        settings.token_service,
        settings.token_lifetime_seconds,
    )


def build_registry(settings: Settings) -> Registry:
    """Wire the services for ``settings``."""
    store = MetadataStore(settings.resolved_database_url, default_visibility=settings.default_visibility)
    storage = build_storage(settings)
    blobs = BlobService(store, storage)
    account_store = AccountStore(store)
    limits = LoginLimits(
        window=timedelta(seconds=settings.login_failure_window_seconds),
        per_account=settings.login_failures_per_account,
        per_address=settings.login_failures_per_address,
    )
    accounts = AccountService(account_store, Passwords(), limits)
    audit = AuditLog(account_store)
    lifecycle_store = LifecycleStore(store)
    immutability = ImmutabilityService(lifecycle_store, accounts, audit)
    quotas = QuotaService(lifecycle_store, settings.default_namespace_quota_bytes, accounts, audit)
    search_store = SearchStore(store)
    search_index = SearchIndex(search_store, store, storage)
    manifests = ManifestService(
        store, blobs, settings.max_manifest_bytes, immutability, quotas, listeners=(search_index,)
    )
    retention_store = RetentionStore(store)
    pulls = PullRecorder(retention_store)
    gc_store = GcStore(store)
    changed = (search_index.repository_changed,)
    webhook_store = WebhookStore(store)
    notifier = Notifier(
        webhook_store,
        NotifierOptions(settings.webhooks_enabled, settings.webhook_endpoint_cache_seconds),
        Source(f"{settings.node_name}:{settings.port}", str(uuid.uuid4())),
    )

    async def retention_scanned(scan: RetentionScanned) -> None:
        await notifier.retention_scan(
            scan.repository, RetentionScan(scan.policy, scan.candidates, scan.removed, scan.dry_run)
        )

    retention = RetentionService(
        retention_store,
        store,
        gc_store,
        immutability,
        accounts,
        audit,
        pulls,
        changed=changed,
        scanned=(retention_scanned,),
    )
    return Registry(
        settings=settings,
        store=store,
        storage=storage,
        blobs=blobs,
        uploads=UploadService(
            store,
            storage,
            timedelta(seconds=settings.upload_expiry_seconds),
            quotas,
            inline_max_bytes=settings.inline_blob_max_bytes,
        ),
        manifests=manifests,
        listings=ListingService(store),
        referrers=ReferrerService(store),
        accounts=accounts,
        audit=audit,
        gate=Gate(settings.auth, accounts, build_token_issuer(settings), settings.token_realm),
        immutability=immutability,
        history=HistoryService(
            lifecycle_store, immutability, accounts, audit, timedelta(days=settings.tag_history_days), changed
        ),
        quotas=quotas,
        repository_deletes=RepositoryDeletes(
            store, lifecycle_store, immutability, accounts, audit, settings.delete_enabled, changed
        ),
        gc=GcService(
            gc_store,
            storage,
            gc_lock(store.dialect, store.leadership_engine(), settings.data_dir),
            GcSettings(
                grace=timedelta(seconds=settings.gc_grace_seconds),
                history_window=timedelta(days=settings.tag_history_days),
            ),
            node=f"{settings.node_name}:{settings.port}/{os.getpid()}",
            retained=retention.kept_manifests,
        ),
        retention=retention,
        pulls=pulls,
        search=SearchService(search_store, open_access=settings.auth == "none"),
        search_index=search_index,
        repository_info=RepositoryInfoService(
            RepositoryInfoStore(store), accounts, audit, open_access=settings.auth == "none"
        ),
        pull_limits=build_pull_limiter(settings, store),
        notifier=notifier,
        maintenance=Maintenance(webhook_store, settings.read_only, settings.maintenance_cache_seconds),
    )
