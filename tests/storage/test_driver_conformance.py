"""The behaviour every blob storage driver shares, checked against each of them.

The services rely on exactly this: an upload is created, appended to at an expected
offset while a hash is fed, stat'ed, re-read from byte 0 (when a request lands on
another process), committed atomically into place, read by ranges, listed and deleted.
"""

from __future__ import annotations

import hashlib
import random
import tracemalloc
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from portside.registry.hashing import hash_stored
from portside.storage.base import BlobStorage, ObjectMissing, OffsetMismatch
from portside.storage.s3 import S3Storage
from tests.storage.conftest import DriverFactory

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024
UPLOAD = "uploads/0123456789abcdef0123456789abcdef"
OTHER_UPLOAD = "uploads/fedcba9876543210fedcba9876543210"
BLOB = "blobs/sha256/ab/ab" + "0" * 62
OTHER_BLOB = "blobs/sha256/cd/cd" + "1" * 62


def pseudo_random(size: int, seed: int = 0) -> bytes:
    """Incompressible, reproducible bytes."""
    return random.Random(seed).randbytes(size)


async def stream(data: bytes, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    """A request body as the server receives it: many small chunks."""
    for start in range(0, len(data), chunk):
        yield data[start : start + chunk]


async def read_all(storage: BlobStorage, key: str, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key, offset, length)])


async def upload(storage: BlobStorage, key: str, pieces: list[bytes]) -> bytes:
    """Create ``key`` and append each piece in turn; the bytes it holds."""
    await storage.create(key)
    offset = 0
    for piece in pieces:
        offset = await storage.append(key, stream(piece), offset)
    return b"".join(pieces)


# Create, stat, append, read


async def test_create_makes_an_empty_object(driver: BlobStorage) -> None:
    await driver.create(UPLOAD)
    assert await driver.stat(UPLOAD) == 0
    assert await read_all(driver, UPLOAD) == b""


async def test_stat_of_a_missing_key_is_none(driver: BlobStorage) -> None:
    assert await driver.stat(UPLOAD) is None
    assert await driver.stat(BLOB) is None


async def test_read_of_a_missing_key_raises_object_missing(driver: BlobStorage) -> None:
    for key in (UPLOAD, BLOB):
        with pytest.raises(ObjectMissing):
            await read_all(driver, key)
        with pytest.raises(ObjectMissing):
            await read_all(driver, key, 0, 0)


async def test_append_returns_the_new_size_and_stat_agrees(driver: BlobStorage) -> None:
    await driver.create(UPLOAD)
    assert await driver.append(UPLOAD, stream(b"hello "), 0) == 6
    assert await driver.stat(UPLOAD) == 6
    assert await driver.append(UPLOAD, stream(b"world"), 6) == 11
    assert await driver.stat(UPLOAD) == 11
    assert await read_all(driver, UPLOAD) == b"hello world"


async def test_append_of_nothing_keeps_the_size(driver: BlobStorage) -> None:
    data = await upload(driver, UPLOAD, [b"abc"])
    assert await driver.append(UPLOAD, stream(b""), 3) == 3
    assert await read_all(driver, UPLOAD) == data


async def test_append_to_a_missing_object_raises_object_missing(driver: BlobStorage) -> None:
    with pytest.raises(ObjectMissing):
        await driver.append(UPLOAD, stream(b"data"), 0)


async def test_create_empties_an_existing_object(driver: BlobStorage) -> None:
    await upload(driver, UPLOAD, [b"old bytes", b"more"])
    await driver.create(UPLOAD)
    assert await driver.stat(UPLOAD) == 0
    assert await driver.append(UPLOAD, stream(b"new"), 0) == 3
    assert await read_all(driver, UPLOAD) == b"new"
    await driver.commit(UPLOAD, BLOB)
    await driver.create(BLOB)
    assert await driver.stat(BLOB) == 0
    assert await read_all(driver, BLOB) == b""


@pytest.mark.parametrize(
    ("offset", "length"),
    [(0, None), (0, 1), (5, None), (9, 3), (10, 12), (11, 4), (29, 1), (0, 30), (20, 100), (30, None), (30, 5)],
)
async def test_read_honours_offset_and_length_across_appends(
    driver: BlobStorage, offset: int, length: int | None
) -> None:
    data = await upload(driver, UPLOAD, [b"0123456789", b"abcdefghij", b"ABCDEFGHIJ"])
    end = None if length is None else offset + length
    assert await read_all(driver, UPLOAD, offset, length) == data[offset:end]


@pytest.mark.parametrize(
    ("offset", "length"),
    [(0, None), (1, 10), (MIB - 3, 7), (2 * MIB, None), (3 * MIB, 10), (5, 0), (3 * MIB + 5, None), (4 * MIB, 1)],
)
async def test_read_of_a_committed_object_honours_offset_and_length(
    driver: BlobStorage, offset: int, length: int | None
) -> None:
    data = await upload(driver, UPLOAD, [pseudo_random(3 * MIB + 5)])
    await driver.commit(UPLOAD, BLOB)
    end = None if length is None else offset + length
    assert await read_all(driver, BLOB, offset, length) == data[offset:end]


# Offsets and concurrency


@pytest.mark.parametrize("expected", [0, 3, 5, 100])
async def test_append_at_another_offset_raises_offset_mismatch_with_the_actual_size(
    driver: BlobStorage, expected: int
) -> None:
    data = await upload(driver, UPLOAD, [b"abcd"])
    with pytest.raises(OffsetMismatch) as raised:
        await driver.append(UPLOAD, stream(b"xyz"), expected)
    assert raised.value.actual == 4
    assert await read_all(driver, UPLOAD) == data


@pytest.mark.parametrize("size", [1000, 9 * MIB], ids=["small", "multipart"])
async def test_concurrent_appends_at_one_offset_one_wins_the_other_gets_offset_mismatch(
    make_driver: DriverFactory, size: int
) -> None:
    node_a, node_b = make_driver(), make_driver()
    await upload(node_a, UPLOAD, [b"0123456789"])
    data = {"a": pseudo_random(size, 1), "b": pseudo_random(size, 2)}
    a_started, release_a = anyio.Event(), anyio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield data["a"][:1]
        a_started.set()
        await release_a.wait()
        async for chunk in stream(data["a"][1:]):
            yield chunk

    results: dict[str, int | OffsetMismatch] = {}

    async def append(name: str, storage: BlobStorage, body: AsyncIterator[bytes]) -> None:
        try:
            results[name] = await storage.append(UPLOAD, body, 10)
        except OffsetMismatch as exc:
            results[name] = exc

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(append, "a", node_a, slow_body())
        await a_started.wait()
        # Both appends have now checked the size (10); b runs to its end while a is mid-stream.
        await append("b", node_b, stream(data["b"]))
        release_a.set()

    winners = [name for name, result in results.items() if isinstance(result, int)]
    assert len(winners) == 1, results
    (winner,) = winners
    (loser,) = set(results) - {winner}
    assert results[winner] == 10 + size
    mismatch = results[loser]
    assert isinstance(mismatch, OffsetMismatch)
    assert mismatch.actual in (10, 10 + size)
    assert await node_a.stat(UPLOAD) == 10 + size
    assert await read_all(node_b, UPLOAD) == b"0123456789" + data[winner]


async def test_simultaneous_appends_at_one_offset_have_exactly_one_winner(make_driver: DriverFactory) -> None:
    nodes = [make_driver() for _ in range(4)]
    await upload(nodes[0], UPLOAD, [b"base"])
    results: list[int | OffsetMismatch] = []

    async def append(index: int) -> None:
        try:
            results.append(await nodes[index].append(UPLOAD, stream(pseudo_random(200_000, index)), 4))
        except OffsetMismatch as exc:
            results.append(exc)

    async with anyio.create_task_group() as tasks:
        for index in range(len(nodes)):
            tasks.start_soon(append, index)
    assert sorted(result for result in results if isinstance(result, int)) == [200_004]
    assert all(exc.actual in (4, 200_004) for exc in results if isinstance(exc, OffsetMismatch))
    assert await nodes[0].stat(UPLOAD) == 200_004


async def test_a_second_node_reads_and_extends_an_upload(make_driver: DriverFactory) -> None:
    node_a, node_b = make_driver(), make_driver()
    first = await upload(node_a, UPLOAD, [b"from a", pseudo_random(100_000)])
    assert await node_b.stat(UPLOAD) == len(first)
    assert (await hash_stored(node_b, UPLOAD)).hasher.hexdigest() == hashlib.sha256(first).hexdigest()
    size = await node_b.append(UPLOAD, stream(b"from b"), len(first))
    await node_a.commit(UPLOAD, BLOB)
    assert await node_b.stat(BLOB) == size
    assert await read_all(node_b, BLOB) == first + b"from b"


# Sizes around S3's 5 MiB part minimum, and a large upload in small appends


async def test_small_chunks_and_chunks_spanning_the_part_minimum_assemble_exactly(driver: BlobStorage) -> None:
    sizes = [1, 100, 5 * MIB - 1, 2, 5 * MIB + 3, 7, 5 * MIB, 12 * MIB + 1, 3, 6 * MIB]
    pieces = [pseudo_random(size, seed) for seed, size in enumerate(sizes)]
    data = await upload(driver, UPLOAD, pieces)
    assert await driver.stat(UPLOAD) == len(data)
    assert await read_all(driver, UPLOAD, 5 * MIB - 10, 20) == data[5 * MIB - 10 : 5 * MIB + 10]
    await driver.commit(UPLOAD, BLOB)
    assert await driver.stat(BLOB) == len(data)
    assert hashlib.sha256(await read_all(driver, BLOB)).digest() == hashlib.sha256(data).digest()
    assert await read_all(driver, BLOB, 10 * MIB, MIB) == data[10 * MIB : 11 * MIB]


async def test_large_upload_of_many_small_appends_hashes_as_it_goes(driver: BlobStorage) -> None:
    rng = random.Random(7)
    total = 64 * MIB + 12_345
    data = pseudo_random(total, 3)
    running = hashlib.sha256()
    await driver.create(UPLOAD)
    offset = appends = 0
    while offset < total:
        size = min(rng.randint(256 * 1024, 1536 * 1024), total - offset)
        new = await driver.append(UPLOAD, stream(data[offset : offset + size]), offset, observer=running.update)
        assert new == offset + size
        offset, appends = new, appends + 1
    assert appends > 60
    assert running.hexdigest() == hashlib.sha256(data).hexdigest()
    assert await driver.stat(UPLOAD) == total
    assert (await hash_stored(driver, UPLOAD)).hasher.hexdigest() == running.hexdigest()
    await driver.commit(UPLOAD, BLOB)
    assert (await hash_stored(driver, BLOB)).hasher.hexdigest() == running.hexdigest()


async def test_one_append_of_thousands_of_tiny_chunks_keeps_every_byte_in_order(driver: BlobStorage) -> None:
    # More chunks in one batch than a single writev(2) takes (1,024 here), some of them empty.
    data = pseudo_random(3 * MIB + 17, 11)
    running = hashlib.sha256()
    await driver.create(UPLOAD)
    assert await driver.append(UPLOAD, stream(data, 700), 0, observer=running.update) == len(data)
    assert running.hexdigest() == hashlib.sha256(data).hexdigest()
    assert await read_all(driver, UPLOAD) == data


async def test_one_large_append_streams_in_bounded_memory(driver: BlobStorage) -> None:
    total = 80 * MIB
    running = hashlib.sha256()
    expected = hashlib.sha256()

    async def generated() -> AsyncIterator[bytes]:
        rng = random.Random(11)
        for _ in range(total // (64 * 1024)):
            chunk = rng.randbytes(64 * 1024)
            expected.update(chunk)
            yield chunk

    await driver.create(UPLOAD)
    tracemalloc.start()
    try:
        assert await driver.append(UPLOAD, generated(), 0, observer=running.update) == total
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert running.hexdigest() == expected.hexdigest()
    assert peak < 32 * MIB, f"peak {peak / MIB:.1f} MiB while appending {total / MIB:.0f} MiB"


# Commit


async def test_commit_is_atomic_the_target_is_absent_until_it_is_complete(driver: BlobStorage) -> None:
    data = await upload(driver, UPLOAD, [pseudo_random(6 * MIB), b"tail"])
    assert await driver.stat(BLOB) is None
    with pytest.raises(ObjectMissing):
        await read_all(driver, BLOB)
    assert [key async for key in driver.list("blobs/")] == []
    await driver.commit(UPLOAD, BLOB)
    assert await driver.stat(BLOB) == len(data)
    assert await read_all(driver, BLOB) == data
    assert await driver.stat(UPLOAD) is None


async def test_commit_onto_an_existing_target_keeps_it_and_drops_the_source(driver: BlobStorage) -> None:
    kept = await upload(driver, OTHER_UPLOAD, [b"committed first"])
    await driver.commit(OTHER_UPLOAD, BLOB)
    await upload(driver, UPLOAD, [b"committed second"])
    await driver.commit(UPLOAD, BLOB)
    assert await read_all(driver, BLOB) == kept
    assert await driver.stat(UPLOAD) is None


async def test_commit_of_an_empty_upload_makes_an_empty_object(driver: BlobStorage) -> None:
    await driver.create(UPLOAD)
    await driver.commit(UPLOAD, BLOB)
    assert await driver.stat(BLOB) == 0
    assert await read_all(driver, BLOB) == b""


async def test_commit_of_a_missing_source_raises_object_missing(driver: BlobStorage) -> None:
    with pytest.raises(ObjectMissing):
        await driver.commit(UPLOAD, BLOB)
    assert await driver.stat(BLOB) is None


# Delete and list


async def test_delete_removes_uploads_and_committed_objects_and_is_idempotent(driver: BlobStorage) -> None:
    await upload(driver, UPLOAD, [b"one", b"two"])
    await upload(driver, OTHER_UPLOAD, [b"blob"])
    await driver.commit(OTHER_UPLOAD, BLOB)
    for key in (UPLOAD, BLOB):
        await driver.delete(key)
        assert await driver.stat(key) is None
        with pytest.raises(ObjectMissing):
            await read_all(driver, key)
        await driver.delete(key)


async def test_list_names_each_key_under_a_prefix_once(driver: BlobStorage) -> None:
    await upload(driver, UPLOAD, [b"a", b"b", b"c"])
    await driver.create(OTHER_UPLOAD)
    staging = "uploads/small-0123"
    for source, target in ((staging, BLOB), (staging + "4", OTHER_BLOB)):
        await upload(driver, source, [b"x", b"y"])
        await driver.commit(source, target)
    assert sorted([key async for key in driver.list("uploads/")]) == sorted([UPLOAD, OTHER_UPLOAD])
    assert sorted([key async for key in driver.list("blobs/")]) == sorted([BLOB, OTHER_BLOB])
    assert [key async for key in driver.list("blobs/sha256/cd/")] == [OTHER_BLOB]
    assert [key async for key in driver.list("nothing/")] == []


# Redirects


async def test_redirect_url_is_offered_only_where_configured(make_driver: DriverFactory) -> None:
    plain = make_driver()
    await upload(plain, UPLOAD, [b"bytes"])
    await plain.commit(UPLOAD, BLOB)
    assert await plain.redirect_url(BLOB) is None
    if make_driver.name == "s3":
        redirecting = make_driver(redirect_blobs=True)
        url = await redirecting.redirect_url(BLOB)
        assert url is not None
        async with httpx.AsyncClient() as http:
            assert (await http.get(url)).content == b"bytes"


async def test_presigned_url_serves_the_bytes_and_ranges(make_driver: DriverFactory) -> None:
    if make_driver.name != "s3":
        pytest.skip(reason="only S3 presigns URLs")
    storage = make_driver()
    assert isinstance(storage, S3Storage)
    data = await upload(storage, UPLOAD, [pseudo_random(2 * MIB + 1)])
    await storage.commit(UPLOAD, BLOB)
    url = await storage.presigned_url(BLOB, expires_in=60)
    assert url.startswith(storage.options.endpoint_url or "")
    async with httpx.AsyncClient() as http:
        whole = await http.get(url)
        assert whole.status_code == 200
        assert whole.content == data
        part = await http.get(url, headers={"Range": "bytes=1000-1999"})
        assert part.status_code == 206
        assert part.content == data[1000:2000]
