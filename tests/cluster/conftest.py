"""Cluster tests reuse the S3-API server (moto) of the storage tests and the session's PostgreSQL."""

from tests.storage.conftest import s3_server

__all__ = ["s3_server"]
