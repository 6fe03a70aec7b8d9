"""Alembic environment: always run programmatically with a connection from portside.metadata.migrate."""

from __future__ import annotations

from alembic import context

from portside.metadata.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
