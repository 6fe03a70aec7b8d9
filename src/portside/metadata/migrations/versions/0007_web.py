"""Web UI sign-in sessions: one row per signed-in browser, deleted on sign-out.

Revision ID: 0007_web
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_web"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create web_sessions."""
    op.create_table(
        "web_sessions",
        # SHA-256 of the cookie's secret: a leaked database does not hand out live sessions.
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("address", sa.String(64), nullable=True),
    )
    op.create_index("ix_web_sessions_user", "web_sessions", ["user_id"])
    op.create_index("ix_web_sessions_expires", "web_sessions", ["expires_at"])


def downgrade() -> None:
    """Drop web_sessions."""
    op.drop_table("web_sessions")
