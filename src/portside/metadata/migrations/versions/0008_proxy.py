"""Pull-through cache: which repositories are mirrored, and when each cached tag was last checked.

Revision ID: 0008_proxy
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_proxy"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create proxy_repositories and proxy_tags."""
    op.create_table(
        "proxy_repositories",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("upstream", sa.String(2000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "proxy_tags",
        sa.Column("repository", sa.String(255), primary_key=True),
        sa.Column("tag", sa.String(128), primary_key=True),
        sa.Column("digest", sa.String(200), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Drop the pull-through cache's tables."""
    op.drop_table("proxy_tags")
    op.drop_table("proxy_repositories")
