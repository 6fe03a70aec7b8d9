"""A private PostgreSQL server on 127.0.0.1 for the test session (Debian's postgresql package)."""

from deploy.processes import PostgresServer, postgres_bin

__all__ = ["PostgresServer", "postgres_bin"]
