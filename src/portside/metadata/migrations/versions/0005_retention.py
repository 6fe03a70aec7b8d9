"""Retention policies and their runs, garbage collection runs, last-pulled times, blob touch times.

Revision ID: 0005_retention
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_retention"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add touched_at to blobs and manifests; create manifest_pulls, retention_policies and their runs, gc_runs."""
    with op.batch_alter_table("blobs") as batch:
        batch.add_column(sa.Column("touched_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("manifests") as batch:
        batch.add_column(sa.Column("touched_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "manifest_pulls",
        sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("digest", sa.String(200), primary_key=True),
        sa.Column("last_pulled_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "retention_policies",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("scope_kind", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(255), nullable=False),
        sa.Column("tag_pattern", sa.String(128), nullable=False),
        sa.Column("keep_last", sa.Integer, nullable=True),
        sa.Column("delete_older_than_seconds", sa.BigInteger, nullable=True),
        sa.Column("untagged_after_seconds", sa.BigInteger, nullable=True),
        sa.Column("keep_pulled_within_seconds", sa.BigInteger, nullable=True),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_retention_policies_scope", "retention_policies", ["scope_kind", "scope"])
    op.create_table(
        "retention_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("removed", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_table(
        "gc_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("node", sa.String(200), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.Column("repositories_total", sa.Integer, nullable=False),
        sa.Column("repositories_done", sa.Integer, nullable=False),
        sa.Column("manifests_removed", sa.Integer, nullable=False),
        sa.Column("links_removed", sa.Integer, nullable=False),
        sa.Column("blobs_removed", sa.Integer, nullable=False),
        sa.Column("bytes_freed", sa.BigInteger, nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_gc_runs_started", "gc_runs", ["started_at"])


def downgrade() -> None:
    """Drop what upgrade added."""
    op.drop_table("gc_runs")
    op.drop_table("retention_runs")
    op.drop_table("retention_policies")
    op.drop_table("manifest_pulls")
    with op.batch_alter_table("manifests") as batch:
        batch.drop_column("touched_at")
    with op.batch_alter_table("blobs") as batch:
        batch.drop_column("touched_at")
