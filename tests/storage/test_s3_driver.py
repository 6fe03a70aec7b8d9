"""What only the S3 driver has to get right: what it leaves in the bucket, retries, and its settings."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from portside.config import REVEAL_SECRETS, Settings
from portside.registry.services import build_storage
from portside.storage.base import ObjectMissing, OffsetMismatch
from portside.storage.filesystem import FilesystemStorage
from portside.storage.s3 import S3Storage
from tests.storage.conftest import S3Server
from tests.storage.test_driver_conformance import BLOB, MIB, UPLOAD, pseudo_random, read_all, stream, upload

pytestmark = pytest.mark.anyio


@pytest.fixture
async def storage(s3_server: S3Server, s3_prefix: str) -> AsyncIterator[S3Storage]:
    driver = S3Storage(s3_server.options(s3_prefix))
    yield driver
    await driver.close()


async def test_objects_are_kept_under_the_prefix_and_commit_leaves_no_upload_behind(
    storage: S3Storage, s3_server: S3Server, s3_prefix: str
) -> None:
    await upload(storage, UPLOAD, [b"a", pseudo_random(9 * MIB), b"b"])
    names = s3_server.object_names(s3_prefix)
    assert names and all(name.startswith(f"{s3_prefix}/{UPLOAD}~") for name in names)
    await storage.commit(UPLOAD, BLOB)
    assert s3_server.object_names(s3_prefix) == [f"{s3_prefix}/{BLOB}"]
    assert s3_server.multipart_uploads(s3_prefix) == []


async def test_a_single_large_segment_is_committed_by_server_side_copy(
    storage: S3Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = await upload(storage, UPLOAD, [pseudo_random(11 * MIB)])
    reads: list[object] = []
    original = storage._gather

    async def counting(part: Any) -> bytes:
        reads.append(part)
        return await original(part)

    monkeypatch.setattr(storage, "_gather", counting)
    await storage.commit(UPLOAD, BLOB)
    assert reads == []
    assert await read_all(storage, BLOB) == data


async def test_a_body_that_fails_midway_leaves_the_upload_unchanged_and_no_multipart_upload(
    storage: S3Storage, s3_server: S3Server, s3_prefix: str
) -> None:
    data = await upload(storage, UPLOAD, [b"kept"])

    async def broken() -> AsyncIterator[bytes]:
        async for chunk in stream(pseudo_random(20 * MIB)):
            yield chunk
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await storage.append(UPLOAD, broken(), 4)
    assert await read_all(storage, UPLOAD) == data
    assert s3_server.multipart_uploads(s3_prefix) == []
    assert await storage.append(UPLOAD, stream(b"!"), 4) == 5


async def test_the_loser_of_a_race_leaves_no_multipart_upload(
    storage: S3Storage, s3_server: S3Server, s3_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await upload(storage, UPLOAD, [b"x"])
    other = S3Storage(s3_server.options(s3_prefix))
    try:
        # The other node claims offset 1 after our size check but before our claim.
        original = storage._resolve
        ran = False

        async def then_race(key: str) -> Any:
            nonlocal ran
            stored = await original(key)
            if not ran:
                ran = True
                await other.append(UPLOAD, stream(b"theirs"), 1)
            return stored

        monkeypatch.setattr(storage, "_resolve", then_race)
        with pytest.raises(OffsetMismatch) as raised:
            await storage.append(UPLOAD, stream(pseudo_random(10 * MIB)), 1)
        assert raised.value.actual == 7
    finally:
        await other.close()
    assert s3_server.multipart_uploads(s3_prefix) == []
    assert await read_all(storage, UPLOAD) == b"xtheirs"


@pytest.mark.parametrize("size", [10, 9 * MIB], ids=["put", "multipart"])
async def test_a_retried_claim_that_finds_its_own_segment_succeeds(
    storage: S3Storage, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    await upload(storage, UPLOAD, [b"x"])
    original = storage._conditional

    async def response_lost(write: Callable[[], Awaitable[Any]]) -> Any:
        await original(write)  # the first attempt lands, but its answer never arrives
        return await original(write)

    monkeypatch.setattr(storage, "_conditional", response_lost)
    data = pseudo_random(size)
    assert await storage.append(UPLOAD, stream(data), 1) == 1 + size
    assert await read_all(storage, UPLOAD) == b"x" + data


async def test_an_upload_deleted_while_it_is_read_raises_object_missing(storage: S3Storage) -> None:
    await upload(storage, UPLOAD, [b"first", b"second"])
    reader = storage.read(UPLOAD)
    assert await reader.__anext__() == b"first"
    await storage.delete(UPLOAD)
    with pytest.raises(ObjectMissing):
        await reader.__anext__()


@pytest.mark.parametrize("size", [10, 11 * MIB], ids=["put", "multipart"])
async def test_a_commit_that_loses_a_race_to_the_target_keeps_the_first_blob(
    storage: S3Storage, s3_server: S3Server, s3_prefix: str, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    first = await upload(storage, "uploads/small-1", [b"first"])
    await storage.commit("uploads/small-1", BLOB)
    await upload(storage, UPLOAD, [pseudo_random(size)])

    async def not_yet(name: str) -> bool:  # the other commit lands between our check and our write
        return False

    monkeypatch.setattr(storage, "_exists", not_yet)
    await storage.commit(UPLOAD, BLOB)
    assert await read_all(storage, BLOB) == first
    assert await storage.stat(UPLOAD) is None
    assert s3_server.multipart_uploads(s3_prefix) == []


async def test_a_conditional_write_meeting_a_concurrent_one_is_tried_again(storage: S3Storage) -> None:
    attempts = 0

    async def conflicted_twice() -> str:
        nonlocal attempts
        attempts += 1
        if attempts <= 2:
            raise ClientError({"Error": {"Code": "ConditionalRequestConflict"}, "ResponseMetadata": {}}, "PutObject")
        return "done"

    assert await storage._conditional(conflicted_twice) == "done"
    assert attempts == 3

    async def always_conflicted() -> str:
        raise ClientError({"Error": {"Code": "ConditionalRequestConflict"}, "ResponseMetadata": {}}, "PutObject")

    with pytest.raises(ClientError):
        await storage._conditional(always_conflicted)


async def test_an_orphaned_segment_is_no_object_but_delete_removes_it(
    storage: S3Storage, s3_server: S3Server, s3_prefix: str
) -> None:
    await upload(storage, UPLOAD, [b"abc"])
    s3_server.client().delete_object(Bucket=s3_server.bucket, Key=f"{s3_prefix}/{UPLOAD}~")
    s3_server.client().delete_object(Bucket=s3_server.bucket, Key=f"{s3_prefix}/{UPLOAD}~{0:020d}")
    s3_server.client().put_object(Bucket=s3_server.bucket, Key=f"{s3_prefix}/{UPLOAD}~{3:020d}", Body=b"late")
    assert await storage.stat(UPLOAD) is None
    with pytest.raises(ObjectMissing):
        await storage.append(UPLOAD, stream(b"x"), 0)
    assert [key async for key in storage.list("uploads/")] == [UPLOAD]
    await storage.delete(UPLOAD)
    assert s3_server.object_names(s3_prefix) == []


# Settings


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in list(os.environ):
        if name.startswith("PORTSIDE_"):
            monkeypatch.delenv(name)
    yield monkeypatch


def test_s3_settings_come_from_portside_environment_variables(clean_environment: pytest.MonkeyPatch) -> None:
    values = {
        "STORAGE_DRIVER": "s3",
        "S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "S3_BUCKET": "registry",
        "S3_REGION": "eu-west-1",
        "S3_ACCESS_KEY_ID": "key",
        "S3_SECRET_ACCESS_KEY": "hunter2-value",
        "S3_PREFIX": "/cluster-a/",
        "S3_REDIRECT_BLOBS": "true",
    }
    for name, value in values.items():
        clean_environment.setenv(f"PORTSIDE_{name}", value)
    settings = Settings()
    assert settings.storage_driver == "s3"
    assert settings.s3_bucket == "registry"
    assert settings.s3_redirect_blobs is True
    assert "hunter2" not in repr(settings)
    # `portside serve` hands settings to its workers as JSON: the secret must survive that.
    assert Settings.model_validate_json(settings.model_dump_json(context=REVEAL_SECRETS)) == settings
    storage = build_storage(settings)
    assert isinstance(storage, S3Storage)
    assert storage.options.endpoint_url == "http://127.0.0.1:9000"
    assert storage.options.region == "eu-west-1"
    assert storage.options.secret_access_key == "hunter2-value"
    assert storage.options.redirect_blobs is True
    assert storage._prefix == "cluster-a/"


def test_the_filesystem_is_the_default_driver(clean_environment: pytest.MonkeyPatch) -> None:
    assert isinstance(build_storage(Settings()), FilesystemStorage)


@pytest.mark.parametrize(
    "values",
    [{"STORAGE_DRIVER": "s3"}, {"STORAGE_DRIVER": "s3", "S3_BUCKET": "b", "S3_ACCESS_KEY_ID": "only-the-id"}],
)
def test_incomplete_s3_settings_are_refused(clean_environment: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name, value in values.items():
        clean_environment.setenv(f"PORTSIDE_{name}", value)
    with pytest.raises(ValueError, match="s3_"):
        Settings()
