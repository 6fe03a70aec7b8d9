"""Storage use for site administrators: the whole registry, each namespace and each repository."""

from __future__ import annotations

from dataclasses import dataclass

from portside.auth.management.guards import Caller, require_site_admin
from portside.metadata.usage_store import RepositoryUsage, StoredTotals, UsageStore


@dataclass(frozen=True)
class NamespaceUsage:
    """The sum over a namespace's repositories (a blob linked by two of them counts in each)."""

    name: str
    repositories: int
    blobs: int
    blob_bytes: int
    manifests: int
    manifest_bytes: int
    tags: int


@dataclass(frozen=True)
class StorageReport:
    """Storage use: distinct totals, then per namespace and per repository (largest first)."""

    totals: StoredTotals
    namespaces: list[NamespaceUsage]
    repositories: list[RepositoryUsage]


def namespace_of(repository: str) -> str:
    """A repository's namespace: its first path component."""
    return repository.split("/", 1)[0]


def by_namespace(repositories: list[RepositoryUsage]) -> list[NamespaceUsage]:
    """Repository usage summed per namespace, largest (blob bytes, then name) first."""
    sums: dict[str, list[int]] = {}
    for usage in repositories:
        row = sums.setdefault(namespace_of(usage.name), [0, 0, 0, 0, 0, 0])
        for index, value in enumerate(
            (1, usage.blobs, usage.blob_bytes, usage.manifests, usage.manifest_bytes, usage.tags)
        ):
            row[index] += value
    namespaces = [NamespaceUsage(name, *values) for name, values in sums.items()]
    return sorted(namespaces, key=lambda usage: (-usage.blob_bytes, usage.name))


class StorageUsageService:
    """Answers how much the registry stores [site admins only]."""

    def __init__(self, store: UsageStore) -> None:
        self._store = store

    async def report(self, caller: Caller) -> StorageReport:
        """The storage report; ``401``/``403`` unless the caller is a site administrator."""
        require_site_admin(caller)
        totals = await self._store.totals()
        repositories = await self._store.per_repository()
        largest_first = sorted(repositories, key=lambda usage: (-usage.blob_bytes, usage.name))
        return StorageReport(totals, by_namespace(repositories), largest_first)
