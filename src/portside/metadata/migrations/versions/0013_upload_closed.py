"""Closed upload sessions are kept, marked, until they expire.

Upload ids are signed (portside.registry.upload_ids): an empty session needs no row, so a row
is what tells a finished or cancelled session from an open one until its id has expired.

Revision ID: 0013_upload_closed
Revises: 0012_blob_contents
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_upload_closed"
down_revision = "0012_blob_contents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add uploads.closed_at."""
    with op.batch_alter_table("uploads") as batch:
        batch.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop the closed sessions' rows, then uploads.closed_at."""
    op.execute(sa.text("DELETE FROM uploads WHERE closed_at IS NOT NULL"))
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("closed_at")
