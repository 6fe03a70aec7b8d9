"""Running hashes of uploads: a bounded, least-recently-stored-first table."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portside.oci.digest import new_hasher
from portside.registry.hashing import RunningHash, RunningHashes, hash_stored


def state(offset: int = 0) -> RunningHash:
    return RunningHash(offset, new_hasher())


# --- RunningHash -------------------------------------------------------------------------


@settings(deadline=None)
@given(chunks=st.lists(st.binary(max_size=256), max_size=10))
def test_running_hash_counts_and_hashes_every_chunk_fed_to_it(chunks: list[bytes]) -> None:
    running = state()
    for chunk in chunks:
        running.update(chunk)
    whole = b"".join(chunks)
    assert running.offset == len(whole)
    assert running.hasher.hexdigest() == hashlib.sha256(whole).hexdigest()


# --- RunningHashes -----------------------------------------------------------------------


def test_unknown_upload_has_no_state() -> None:
    assert RunningHashes().take("nope") is None


def test_taking_a_state_returns_it_and_removes_it() -> None:
    table = RunningHashes()
    kept = state(10)
    table.put("u1", kept)
    assert table.take("u1") is kept
    assert table.take("u1") is None


def test_putting_again_replaces_the_state() -> None:
    table = RunningHashes()
    table.put("u1", state(1))
    newer = state(2)
    table.put("u1", newer)
    assert table.take("u1") is newer


def test_discard_forgets_a_state() -> None:
    table = RunningHashes()
    table.put("u1", state())
    table.discard("u1")
    assert table.take("u1") is None


def test_discarding_an_unknown_upload_is_harmless() -> None:
    RunningHashes().discard("nope")


def test_table_over_capacity_evicts_the_least_recently_stored() -> None:
    table = RunningHashes(capacity=2)
    table.put("u1", state())
    table.put("u2", state())
    table.put("u3", state())
    assert table.take("u1") is None
    assert table.take("u2") is not None
    assert table.take("u3") is not None


def test_storing_a_state_again_makes_it_the_most_recent() -> None:
    table = RunningHashes(capacity=2)
    table.put("u1", state())
    table.put("u2", state())
    table.put("u1", state())
    table.put("u3", state())
    assert table.take("u2") is None
    assert table.take("u1") is not None
    assert table.take("u3") is not None


def test_taken_states_free_room_in_the_table() -> None:
    table = RunningHashes(capacity=2)
    table.put("u1", state())
    table.put("u2", state())
    table.take("u1")
    table.put("u3", state())
    assert table.take("u2") is not None
    assert table.take("u3") is not None


def test_default_capacity_holds_4096_uploads() -> None:
    table = RunningHashes()
    for i in range(4097):
        table.put(f"u{i}", state())
    assert table.take("u0") is None
    assert all(table.take(f"u{i}") is not None for i in range(1, 4097))


def test_zero_capacity_table_keeps_nothing() -> None:
    table = RunningHashes(capacity=0)
    table.put("u1", state())
    assert table.take("u1") is None


@settings(deadline=None)
@given(capacity=st.integers(1, 8), ids=st.lists(st.sampled_from("abcdefghijkl"), max_size=40))
def test_table_keeps_exactly_the_most_recently_stored_uploads(capacity: int, ids: list[str]) -> None:
    table = RunningHashes(capacity=capacity)
    for upload_id in ids:
        table.put(upload_id, state())
    recent: list[str] = []
    for upload_id in reversed(ids):
        if upload_id not in recent:
            recent.append(upload_id)
    kept = set(recent[:capacity])
    assert {upload_id for upload_id in "abcdefghijkl" if table.take(upload_id) is not None} == kept


# --- hash_stored -------------------------------------------------------------------------


class ChunkedStorage:
    """Just enough of BlobStorage: ``read`` streams fixed chunks."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.keys: list[str] = []

    async def read(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        self.keys.append(key)
        for chunk in self.chunks:
            yield chunk


@pytest.mark.anyio
@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
async def test_hash_stored_hashes_an_object_from_its_first_byte(algorithm: str) -> None:
    storage = ChunkedStorage([b"hello ", b"", b"world"])
    running = await hash_stored(storage, "uploads/u1", algorithm)  # type: ignore[arg-type]
    assert storage.keys == ["uploads/u1"]
    assert running.offset == 11
    assert running.hasher.hexdigest() == hashlib.new(algorithm, b"hello world").hexdigest()


@pytest.mark.anyio
async def test_hash_stored_of_an_empty_object_is_the_empty_hash() -> None:
    running = await hash_stored(ChunkedStorage([]), "k")  # type: ignore[arg-type]
    assert running.offset == 0
    assert running.hasher.hexdigest() == hashlib.sha256(b"").hexdigest()
