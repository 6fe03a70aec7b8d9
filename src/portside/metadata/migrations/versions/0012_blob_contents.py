"""The bytes of small blobs, kept in the database.

Revision ID: 0012_blob_contents
Revises: 0011_merge_features
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_blob_contents"
down_revision = "0011_merge_features"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create blob_contents."""
    op.create_table(
        "blob_contents",
        sa.Column("digest", sa.String(200), sa.ForeignKey("blobs.digest", ondelete="CASCADE"), primary_key=True),
        sa.Column("content", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    """Drop blob_contents, only while it is empty: its rows are the only copy of those blobs."""
    held = op.get_bind().execute(sa.text("SELECT count(*) FROM blob_contents")).scalar_one()
    if held:
        raise RuntimeError(f"blob_contents holds {held} blobs; export the registry before downgrading")
    op.drop_table("blob_contents")
