"""The GC protocol's locks on each database, interleaved on purpose (see docs/lifecycle.md).

Each test holds one side's transaction open at the critical point, starts the other side, gives
it every chance to run, and then checks the outcome the protocol promises. Without the lock the
other side would finish first and the outcome (or the recorded order) would differ; with it the
outcome is the same however the two are scheduled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from portside.metadata import migrate
from portside.metadata.gc_protocol import BlobVanished, ReferencesVanished, lock_references
from portside.metadata.gc_store import GcStore
from portside.metadata.records import Reference
from portside.metadata.store import MetadataStore, utcnow
from portside.metadata.tables import blobs, manifest_references, repository_blobs
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.integration

DIGEST = "sha256:" + "ab" * 32
# Everything counts as old enough: the locks alone decide these races.
LATER = timedelta(hours=1)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'portside.db'}"
    else:
        postgres: PostgresServer = request.getfixturevalue("postgres")
        url = postgres.create_database()
    yield url


@contextlib.asynccontextmanager
async def _opened(url: str) -> AsyncIterator[MetadataStore]:
    await migrate.upgrade(url)
    store = MetadataStore(url)
    try:
        yield store
    finally:
        await store.close()


async def _linked(store: MetadataStore) -> int:
    """``DIGEST`` stored and linked into ``acme/app``; the repository's id."""
    await store.claim_blob(DIGEST, 3)
    await store.link_blob("acme/app", DIGEST, 3)
    async with store.reading() as conn:
        repository_id = await store.repository_id(conn, "acme/app")
    assert repository_id is not None
    return repository_id


def test_a_claim_waiting_on_a_blob_sweep_finds_the_row_and_bytes_gone(database_url: str) -> None:
    async def scenario() -> None:
        async with _opened(database_url) as store:
            gc = GcStore(store)
            await store.claim_blob(DIGEST, 3)
            events: list[str] = []
            claim: asyncio.Task[None] | None = None

            async def delete_bytes(digest: str) -> None:
                # Row deleted, transaction open: a commit of the same blob claims it now.
                nonlocal claim
                claim = asyncio.create_task(store.claim_blob(digest, 3))
                await asyncio.sleep(0.5)
                events.append("bytes deleted")

            removed = await gc.delete_blobs_if_unlinked([DIGEST], utcnow() + LATER, delete_bytes)
            assert removed == [(DIGEST, 3)]
            assert claim is not None
            await claim
            events.append("claimed")
            # The claim ran after the sweep committed: it made a new row, so the committing
            # upload writes the bytes again before it links them.
            assert events == ["bytes deleted", "claimed"]
            async with store.reading() as conn:
                row = (await conn.execute(select(blobs.c.touched_at).where(blobs.c.digest == DIGEST))).first()
            assert row is not None

    asyncio.run(scenario())


def test_a_claimed_blob_is_not_swept(database_url: str) -> None:
    async def scenario() -> None:
        async with _opened(database_url) as store:
            gc = GcStore(store)
            await store.claim_blob(DIGEST, 3)
            deleted: list[str] = []

            async def delete_bytes(digest: str) -> None:
                deleted.append(digest)

            # Claimed just now, within a one-hour grace: the sweep leaves it.
            removed = await gc.delete_blobs_if_unlinked([DIGEST], utcnow() - LATER, delete_bytes)
            assert removed == [] and deleted == []

    asyncio.run(scenario())


def test_a_link_sweep_waiting_on_a_manifest_put_sees_its_reference(database_url: str) -> None:
    async def scenario() -> None:
        async with _opened(database_url) as store:
            gc = GcStore(store)
            repository_id = await _linked(store)
            sweep: asyncio.Task[list[str]] | None = None
            async with store.writing() as conn:
                # A manifest put has validated and share-locked the link ...
                await lock_references(conn, repository_id, [Reference(DIGEST, "blob")])
                sweep = asyncio.create_task(gc.delete_links_if_unreferenced(repository_id, [DIGEST], utcnow() + LATER))
                await asyncio.sleep(0.5)
                # ... and records its reference before it commits.
                await conn.execute(
                    insert(manifest_references).values(
                        repository_id=repository_id,
                        manifest_digest="sha256:" + "cd" * 32,
                        target_digest=DIGEST,
                        kind="blob",
                    )
                )
            assert await sweep == []
            async with store.reading() as conn:
                links = (await conn.execute(select(repository_blobs.c.digest))).scalars().all()
            assert list(links) == [DIGEST]

    asyncio.run(scenario())


def test_a_manifest_put_after_a_link_sweep_is_refused(database_url: str) -> None:
    async def scenario() -> None:
        async with _opened(database_url) as store:
            gc = GcStore(store)
            repository_id = await _linked(store)
            assert await gc.delete_links_if_unreferenced(repository_id, [DIGEST], utcnow() + LATER) == [DIGEST]
            with pytest.raises(ReferencesVanished):
                async with store.writing() as conn:
                    await lock_references(conn, repository_id, [Reference(DIGEST, "blob")])

    asyncio.run(scenario())


def test_on_sqlite_bytes_placed_before_the_claim_and_swept_meanwhile_are_not_linked(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'portside.db'}"
    placed = tmp_path / "blob-bytes"

    async def scenario() -> None:
        async with _opened(url) as store:
            gc = GcStore(store)
            # An old, unlinked row of the same blob: the sweep is about to take it and its bytes.
            await store.claim_blob(DIGEST, 3)
            placed.write_bytes(b"abc")  # the new upload's bytes, renamed into place
            link: asyncio.Task[None] | None = None

            async def delete_bytes(digest: str) -> None:
                nonlocal link
                # The sweep's transaction is open: the upload's claim-and-link waits for it.
                link = asyncio.create_task(store.link_blob("acme/app", digest, 3, bytes_present=placed.is_file))
                await asyncio.sleep(0.3)
                assert not link.done()
                placed.unlink()

            removed = await gc.delete_blobs_if_unlinked([DIGEST], utcnow() + LATER, delete_bytes)
            assert removed == [(DIGEST, 3)]
            assert link is not None
            with pytest.raises(BlobVanished):
                await link
            # Refused whole: neither a row nor a link points at the missing bytes.
            async with store.reading() as conn:
                assert (await conn.execute(select(blobs.c.digest))).first() is None
                assert (await conn.execute(select(repository_blobs.c.digest))).first() is None

            # Bytes still in place when the claim-and-link runs: linked, and spared by the next sweep.
            placed.write_bytes(b"abc")
            await store.link_blob("acme/app", DIGEST, 3, bytes_present=placed.is_file)
            assert await store.linked_blob("acme/app", DIGEST) is not None
            assert await gc.delete_blobs_if_unlinked([DIGEST], utcnow() + LATER, delete_bytes) == []

    asyncio.run(scenario())
