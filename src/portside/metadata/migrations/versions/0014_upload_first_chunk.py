"""A small first PATCH of an upload session is kept in the session's row.

docker, podman and skopeo push every blob as one PATCH followed by an empty PUT: kept in the
row, a small blob needs no upload file, and its PUT stores it in the database (as 0012 does for
a blob pushed whole in one request).

Revision ID: 0014_upload_first_chunk
Revises: 0013_upload_closed
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_upload_first_chunk"
down_revision = "0013_upload_closed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add uploads.first_chunk."""
    with op.batch_alter_table("uploads") as batch:
        batch.add_column(sa.Column("first_chunk", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    """Close the sessions that kept a first chunk in their row (it may be their only copy), then drop it."""
    op.execute(
        sa.text("UPDATE uploads SET closed_at = CURRENT_TIMESTAMP WHERE first_chunk IS NOT NULL AND closed_at IS NULL")
    )
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("first_chunk")
