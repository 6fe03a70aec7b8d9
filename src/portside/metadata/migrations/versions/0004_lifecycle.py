"""Lifecycle: tag history, immutable tag rules and namespace quotas.

Revision ID: 0004_lifecycle
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_lifecycle"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create tag_history, immutable_rules and namespace_quotas."""
    op.create_table(
        "tag_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
        sa.Column("tag", sa.String(128), nullable=False),
        sa.Column("old_digest", sa.String(200), nullable=True),
        sa.Column("new_digest", sa.String(200), nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_tag_history_repo_tag_at", "tag_history", ["repository_id", "tag", "recorded_at"])
    op.create_index("ix_tag_history_at", "tag_history", ["recorded_at"])
    op.create_table(
        "immutable_rules",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("scope_kind", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(255), nullable=False),
        sa.Column("pattern", sa.String(128), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("scope_kind", "scope", "pattern", name="uq_immutable_rules_scope_pattern"),
    )
    op.create_table(
        "namespace_quotas",
        sa.Column("namespace", sa.String(255), primary_key=True),
        sa.Column("limit_bytes", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Drop the lifecycle tables."""
    op.drop_table("namespace_quotas")
    op.drop_table("immutable_rules")
    op.drop_table("tag_history")
