"""Schema migrations with Alembic, run programmatically (``portside migrate``, and at start)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

_SCRIPTS = Path(__file__).parent / "migrations"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revisions() -> frozenset[str]:
    """The newest revisions this version of Portside knows.

    Features add their tables in migrations of their own, so the history may have several heads.
    """
    return frozenset(ScriptDirectory.from_config(_config()).get_heads())


def head_revision() -> str:
    """The newest revisions as one printable string."""
    return ", ".join(sorted(head_revisions()))


def _current(connection: Connection) -> frozenset[str]:
    return frozenset(MigrationContext.configure(connection).get_current_heads())


async def current_revisions(url: str) -> frozenset[str]:
    """The revisions the database is at (empty for an empty database)."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current)
    finally:
        await engine.dispose()


async def upgrade(url: str) -> None:
    """Bring the database to the newest schema."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync_conn: command.upgrade(_config(sync_conn), "heads"))
    finally:
        await engine.dispose()


class SchemaMismatch(Exception):
    """The database is not at the schema this version of Portside serves."""


async def check_schema(url: str) -> None:
    """Refuse to serve on a schema this version does not know (older, newer, or none)."""
    current, heads = await current_revisions(url), head_revisions()
    if current != heads:
        shown = ", ".join(sorted(current)) or "nothing"
        raise SchemaMismatch(
            f"database schema is at {shown}, this Portside needs {head_revision()}: run `portside migrate`"
        )
