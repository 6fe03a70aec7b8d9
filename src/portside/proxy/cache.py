"""The pull-through cache: fill the local store from an upstream on demand, and keep tags fresh.

Manifests and blobs are stored through the registry's own store and upload commit, so
listings, garbage collection and quotas see cached content like pushed content.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx

from portside.digits import parse_digits
from portside.metadata.proxy_store import ProxyStore
from portside.metadata.store import utcnow
from portside.oci import media_types as mt
from portside.oci.digest import Digest, digest_of, looks_like_digest, parse_digest
from portside.oci.errors import ErrorKind, RegistryError
from portside.oci.manifest import parse_manifest
from portside.oci.names import validate_tag
from portside.proxy.routing import Mirror, Target, mirror_for, mirrors_from
from portside.proxy.upstream import UpstreamClient, UpstreamUnavailable
from portside.registry.blobs import bytes_held
from portside.registry.manifests import manifest_record, references_of
from portside.registry.services import Registry

log = logging.getLogger("portside.proxy")

# Everything a registry may hold under a tag: the upstream's own choice is stored as is, and
# the local read checks it against the client's Accept header.
MANIFEST_ACCEPT = ", ".join([mt.OCI_MANIFEST, mt.OCI_INDEX, mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST_LIST])
# Blob bytes exactly as stored upstream: the Content-Length passed on must be the blob's size.
IDENTITY = {"Accept-Encoding": "identity"}
# Chunks queued between the upstream reader and a slow first client.
TEE_QUEUE_CHUNKS = 32


def _unavailable(target: Target, what: str, cause: UpstreamUnavailable) -> RegistryError:
    log.warning("upstream %s unavailable for %s: %s", target.mirror.upstream, what, cause)
    return RegistryError(
        ErrorKind.UNAVAILABLE,
        f"upstream {target.mirror.upstream} is unavailable ({cause}) and {what} is not cached",
        {"upstream": target.mirror.upstream, "reason": str(cause)},
    )


class BlobTee:
    """One blob fetched from upstream into storage, its bytes also handed to the first client.

    The fetch runs as its own task: a client that goes away stops receiving, while the
    fetch finishes and commits the blob for the next one.
    """

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(TEE_QUEUE_CHUNKS)
        self._detached = False

    @property
    def size(self) -> int | None:
        """The blob's size as the upstream announced it."""
        return parse_digits(self.response.headers.get("content-length", ""))

    async def _offer(self, item: bytes | BaseException | None) -> None:
        if not self._detached:
            await self._queue.put(item)

    async def _source(self) -> AsyncIterator[bytes]:
        async for chunk in self.response.aiter_bytes():
            await self._offer(chunk)
            yield chunk

    async def run(self, registry: Registry, repository: str, digest: Digest) -> None:
        """Stream the upstream's body into an upload commit (which verifies the digest)."""
        try:
            await registry.uploads.monolithic(repository, digest, self._source())
        except asyncio.CancelledError:
            # No waiting while cancelled: a client that cannot take the news now is being cut off anyway.
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(RuntimeError("the server is shutting down"))
            raise
        except Exception as exc:
            log.warning("caching %s in %s failed: %s", digest, repository, exc)
            await self._offer(exc)
        else:
            await self._offer(None)
        finally:
            await self.response.aclose()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The bytes for the first client, as they arrive from the upstream."""
        # The last chunk is held back until the blob is verified and committed: a client never
        # completes an unverified body, and its next request finds the blob in the cache.
        held: bytes | None = None
        try:
            while True:
                item = await self._queue.get()
                if item is None:
                    if held is not None:
                        yield held
                    return
                if isinstance(item, BaseException):
                    # The client has had part of the body: break the connection rather than end it cleanly.
                    raise RuntimeError("fetching the blob from the upstream failed") from item
                if held is not None:
                    yield held
                held = item
        finally:
            self._detached = True
            while not self._queue.empty():
                self._queue.get_nowait()


class ProxyService:
    """Every mirror of one app, their upstream clients and the fetches in flight."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.mirrors = mirrors_from(registry.settings.mirrors)
        self.store = ProxyStore(registry.store)
        self._clients = {mirror.prefix: UpstreamClient.build(mirror) for mirror in self.mirrors}
        self._fetches: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        """Stop fetches in flight and close the upstream connections."""
        for task in list(self._fetches):
            task.cancel()
        for task in list(self._fetches):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for client in self._clients.values():
            await client.close()

    def upstream(self, mirror: Mirror) -> UpstreamClient:
        """The upstream client of ``mirror``."""
        return self._clients[mirror.prefix]

    async def target(self, name: str) -> Target | None:
        """The mirror that serves ``name``; ``None`` for a local repository.

        Under the whole-registry mirror a repository stored here before (pushed, not cached)
        stays local.
        """
        target = mirror_for(self.mirrors, name)
        if target is None or not target.mirror.whole_registry:
            return target
        if await self.registry.store.repository_exists(name) and not await self.store.is_mirrored(name):
            return None
        return target

    async def pull_rule(self, name: str, exists: bool) -> str | None:
        """The mirror's pull rule for ``name`` (the policy's ``mirror_pull``), if a mirror serves it."""
        target = mirror_for(self.mirrors, name)
        if target is None:
            return None
        if target.mirror.whole_registry and exists and not await self.store.is_mirrored(name):
            return None
        rule = target.mirror.settings.pull
        return None if rule == "grants" else rule

    # Manifests

    async def ensure_manifest(self, name: str, target: Target, reference: str) -> None:
        """Make the local store hold ``reference`` as fresh as the mirror's rules ask, or raise."""
        if looks_like_digest(reference):
            digest = parse_digest(reference)
            if await self.registry.store.get_manifest(name, str(digest)) is None:
                await self._fetch_manifest(name, target, str(digest), None)
            return
        tag = validate_tag(reference)
        cached = await self.store.cached_tag(name, tag)
        local = await self.registry.store.get_manifest_by_tag(name, tag)
        if local is not None and await self.registry.maintenance.read_only():
            # Read-only for maintenance: nothing is written, so a cached tag is served as it is.
            return
        if cached is not None and local is not None and local.digest == cached.digest:
            ttl = timedelta(seconds=target.mirror.settings.manifest_ttl_seconds)
            if utcnow() - cached.checked_at < ttl:
                return
            if await self._revalidate(name, target, tag, cached.digest):
                return
        try:
            await self._fetch_manifest(name, target, tag, tag)
        except RegistryError as error:
            if error.kind is ErrorKind.UNAVAILABLE and local is not None:
                log.info("upstream unavailable; serving cached %s:%s", name, tag)
                return
            raise

    async def _revalidate(self, name: str, target: Target, tag: str, digest: str) -> bool:
        """``HEAD`` the tag upstream: True if the cached digest still holds (or the upstream is down)."""
        client = self.upstream(target.mirror)
        try:
            response = await client.send("HEAD", target.upstream_name, f"manifests/{tag}", {"Accept": MANIFEST_ACCEPT})
        except UpstreamUnavailable as exc:
            log.info("upstream unavailable (%s); serving stale %s:%s", exc, name, tag)
            return True
        await response.aclose()
        if response.status_code == 404:
            raise RegistryError(ErrorKind.MANIFEST_UNKNOWN, "the tag is gone from the upstream", {"tag": tag})
        if response.status_code == 200 and response.headers.get("docker-content-digest") == digest:
            await self.store.confirm_tag(name, tag, digest, utcnow())
            return True
        return False

    async def _refuse_fill_while_read_only(self, target: Target, what: str) -> None:
        if await self.registry.maintenance.read_only():
            raise RegistryError(
                ErrorKind.UNAVAILABLE,
                f"the registry is in read-only mode for maintenance and {what} is not cached",
                {"upstream": target.mirror.upstream, "readOnly": True},
            )

    async def _fetch_manifest(self, name: str, target: Target, reference: str, tag: str | None) -> None:
        await self._refuse_fill_while_read_only(target, f"manifest {reference}")
        client = self.upstream(target.mirror)
        try:
            response = await client.send(
                "GET", target.upstream_name, f"manifests/{reference}", {"Accept": MANIFEST_ACCEPT}
            )
        except UpstreamUnavailable as exc:
            raise _unavailable(target, f"manifest {reference}", exc) from exc
        if response.status_code == 404:
            raise RegistryError(
                ErrorKind.MANIFEST_UNKNOWN, "manifest unknown to the upstream registry", {"reference": reference}
            )
        if response.status_code != 200:
            raise _unavailable(target, f"manifest {reference}", UpstreamUnavailable(f"answer {response.status_code}"))
        content = response.content
        if len(content) > self.registry.manifests.max_bytes:
            raise RegistryError(ErrorKind.MANIFEST_TOO_LARGE, detail={"limit": self.registry.manifests.max_bytes})
        digest = self._verified_digest(content, reference, response.headers.get("docker-content-digest"))
        content_type = response.headers.get("content-type", "").split(";")[0].strip() or None
        parsed = parse_manifest(content, content_type)
        record = manifest_record(digest, content, parsed)
        await self.store.mark_mirrored(name, target.mirror.upstream)
        # Not ManifestService.put: layers and index children arrive later, when a client asks.
        await self.registry.store.put_manifest(name, record, references_of(parsed), tag, references_fetched_later=True)
        if tag is not None:
            await self.store.confirm_tag(name, tag, str(digest), utcnow())

    @staticmethod
    def _verified_digest(content: bytes, reference: str, announced: str | None) -> Digest:
        """The manifest's digest, checked against the digest asked for and the one the upstream announced."""
        for claimed in (reference, announced):
            if claimed and looks_like_digest(claimed):
                expected = parse_digest(claimed)
                actual = digest_of(content, expected.algorithm)
                if actual != expected:
                    # The upstream's fault, not the client's: nothing is cached, the client may retry.
                    log.warning("upstream sent manifest %s for %s", actual, expected)
                    raise RegistryError(
                        ErrorKind.UNAVAILABLE,
                        "the upstream sent a manifest whose digest does not match; nothing was cached",
                        {"expected": str(expected), "actual": str(actual)},
                    )
        return digest_of(content)

    # Blobs

    async def head_blob(self, target: Target, digest: Digest) -> int | None:
        """The blob's size upstream (``None`` if unknown), without caching it."""
        try:
            response = await self.upstream(target.mirror).send(
                "HEAD", target.upstream_name, f"blobs/{digest}", IDENTITY
            )
        except UpstreamUnavailable as exc:
            raise _unavailable(target, f"blob {digest}", exc) from exc
        await response.aclose()
        if response.status_code != 200:
            raise RegistryError(
                ErrorKind.BLOB_UNKNOWN, "blob unknown to the upstream registry", {"digest": str(digest)}
            )
        return parse_digits(response.headers.get("content-length", ""))

    async def link_known_blob(self, name: str, digest: Digest) -> bool:
        """Link a blob this registry already stores when a manifest cached in ``name`` references it.

        The upstream's manifest for this repository vouches for the digest, and the stored bytes
        were verified against it, so no second download is needed (Docker Hub images share layers).
        """
        if await self.registry.maintenance.read_only() or not await self.store.manifest_references_blob(
            name, str(digest)
        ):
            return False
        known = await self.registry.store.blob_known(str(digest))
        if known is None or not await bytes_held(self.registry.store, self.registry.storage, digest):
            return False
        await self.registry.store.link_blob(name, str(digest), known.size)
        return True

    async def fetch_blob(self, name: str, target: Target, digest: Digest) -> BlobTee:
        """Start caching a blob; the tee's ``chunks()`` stream it to the client meanwhile."""
        await self._refuse_fill_while_read_only(target, f"blob {digest}")
        try:
            response = await self.upstream(target.mirror).send(
                "GET", target.upstream_name, f"blobs/{digest}", IDENTITY, stream=True
            )
        except UpstreamUnavailable as exc:
            raise _unavailable(target, f"blob {digest}", exc) from exc
        if response.status_code != 200:
            await response.aclose()
            raise RegistryError(
                ErrorKind.BLOB_UNKNOWN, "blob unknown to the upstream registry", {"digest": str(digest)}
            )
        await self.store.mark_mirrored(name, target.mirror.upstream)
        tee = BlobTee(response)
        task = asyncio.create_task(tee.run(self.registry, name, digest))
        self._fetches.add(task)
        task.add_done_callback(self._fetches.discard)
        return tee
