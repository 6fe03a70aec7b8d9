"""One head again after the features that added their tables side by side (0004 to 0010).

Revision ID: 0011_merge_features
Revises: 0004_lifecycle, 0005_retention, 0006_search, 0007_web, 0008_proxy, 0009_ratelimits, 0010_webhooks
Create Date: 2026-11-28
"""

from __future__ import annotations

revision = "0011_merge_features"
down_revision = (
    "0004_lifecycle",
    "0005_retention",
    "0006_search",
    "0007_web",
    "0008_proxy",
    "0009_ratelimits",
    "0010_webhooks",
)
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: this revision only joins the branches, so that the next one has one parent."""


def downgrade() -> None:
    """Nothing to undo."""
