"""Pull rate limits: one fixed-window counter per caller (user or client address) and window.

Revision ID: 0009_ratelimits
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_ratelimits"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create pull_counters."""
    op.create_table(
        "pull_counters",
        sa.Column("subject", sa.String(300), primary_key=True),
        sa.Column("window_start", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("pulls", sa.Integer, nullable=False),
    )
    op.create_index("ix_pull_counters_window_start", "pull_counters", ["window_start"])


def downgrade() -> None:
    """Drop pull_counters."""
    op.drop_table("pull_counters")
