"""Storage drivers under test: the filesystem in a temporary directory, and S3 against moto on loopback."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from deploy.processes import MotoServer
from portside.storage.base import BlobStorage
from portside.storage.direct_io import open_direct
from portside.storage.filesystem import FilesystemStorage
from portside.storage.s3 import S3Options, S3Storage

BUCKET = "portside-tests"
REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "portside-test", "aws_secret_access_key": "portside-test-secret"}


@dataclass(frozen=True)
class S3Server:
    """An S3-API server on 127.0.0.1 with one bucket."""

    endpoint_url: str
    bucket: str

    def client(self) -> Any:
        """A synchronous boto3 client, to look at the bucket from outside the driver."""
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=REGION, **CREDENTIALS)

    def options(self, prefix: str, **extra: Any) -> S3Options:
        """Driver options for a private key prefix in the shared bucket."""
        return S3Options(
            bucket=self.bucket,
            endpoint_url=self.endpoint_url,
            region=REGION,
            access_key_id=CREDENTIALS["aws_access_key_id"],
            secret_access_key=CREDENTIALS["aws_secret_access_key"],
            prefix=prefix,
            **extra,
        )

    def object_names(self, prefix: str) -> list[str]:
        """Every object name under ``prefix``."""
        names: list[str] = []
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            names.extend(item["Key"] for item in page.get("Contents", []))
        return names

    def multipart_uploads(self, prefix: str) -> list[str]:
        """Keys of multipart uploads started under ``prefix`` and neither completed nor aborted."""
        listing = self.client().list_multipart_uploads(Bucket=self.bucket, Prefix=prefix)
        return [upload["Key"] for upload in listing.get("Uploads", [])]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto in server mode, in its own process on an ephemeral loopback port, for the whole session."""
    moto = MotoServer(
        tmp_path_factory.mktemp("moto") / "moto.log",
        bucket=BUCKET,
        region=REGION,
        access_key_id=CREDENTIALS["aws_access_key_id"],
        secret_access_key=CREDENTIALS["aws_secret_access_key"],
    ).start()
    try:
        yield S3Server(moto.endpoint_url, BUCKET)
    finally:
        moto.stop()


@pytest.fixture
def anyio_backend() -> str:
    """The drivers run on asyncio."""
    return "asyncio"


@pytest.fixture
def s3_prefix() -> str:
    """A key prefix no other test uses, so tests share the bucket without seeing each other."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["filesystem", "s3"])
def driver_name(request: pytest.FixtureRequest) -> str:
    """Which driver a conformance test runs against."""
    return str(request.param)


@dataclass
class DriverFactory:
    """Makes drivers over one shared store, as separate server processes (nodes) would have."""

    name: str
    root: Path
    s3: S3Server | None
    prefix: str
    made: list[BlobStorage]

    def __call__(self, **extra: Any) -> BlobStorage:
        storage: BlobStorage = (
            FilesystemStorage(self.root) if self.s3 is None else S3Storage(self.s3.options(self.prefix, **extra))
        )
        self.made.append(storage)
        return storage


@pytest.fixture
async def make_driver(
    driver_name: str, tmp_path: Path, request: pytest.FixtureRequest, s3_prefix: str
) -> AsyncIterator[DriverFactory]:
    """A factory of drivers over one store; all are closed after the test."""
    s3 = request.getfixturevalue("s3_server") if driver_name == "s3" else None
    factory = DriverFactory(driver_name, tmp_path / "storage", s3, s3_prefix, [])
    yield factory
    for storage in factory.made:
        await storage.close()


@pytest.fixture
async def driver(make_driver: DriverFactory) -> BlobStorage:
    """The driver under test."""
    return make_driver()


def _temporary_directory_supports_direct() -> bool:
    """Whether files under the temporary directory (where ``tmp_path`` lives) open with ``O_DIRECT``."""
    with tempfile.NamedTemporaryFile() as probe:
        fd = open_direct(probe.name)
    if fd is None:
        return False
    os.close(fd)
    return True


needs_o_direct = pytest.mark.skipif(
    not _temporary_directory_supports_direct(),
    reason="the temporary directory's filesystem refuses O_DIRECT (tmpfs before Linux 6.6)",
)
