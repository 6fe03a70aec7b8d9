"""Search and repository metadata: README, stars, pull counts, last push, the search index.

SQLite gets an FTS5 virtual table (``search_fts``, rowid = repository id); PostgreSQL a generated
``tsvector`` column on ``search_documents`` with a GIN index. Existing repositories are indexed
by ``portside search reindex`` (run automatically by ``portside serve`` when the index is empty).

Revision ID: 0006_search
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_search"
down_revision = "0003"
branch_labels = None
depends_on = None

# The name (weight A) matters most, then the description (B), then README, tags, labels... (C).
# 'simple' keeps names and tags verbatim; 'english' stems prose.
PG_DOCUMENT = (
    "setweight(to_tsvector('simple', name_terms), 'A') || "
    "setweight(to_tsvector('english', description), 'B') || "
    "setweight(to_tsvector('simple', description), 'B') || "
    "setweight(to_tsvector('english', body), 'C') || "
    "setweight(to_tsvector('simple', body), 'C')"
)


# No conflict clauses inside the triggers: an outer upsert would override them.
FTS_TRIGGERS = (
    "CREATE TRIGGER search_documents_fts_insert AFTER INSERT ON search_documents BEGIN "
    "INSERT INTO search_fts (rowid, name_terms, description, body) "
    "VALUES (new.repository_id, new.name_terms, new.description, new.body); END",
    "CREATE TRIGGER search_documents_fts_update AFTER UPDATE ON search_documents BEGIN "
    "DELETE FROM search_fts WHERE rowid = old.repository_id; "
    "INSERT INTO search_fts (rowid, name_terms, description, body) "
    "VALUES (new.repository_id, new.name_terms, new.description, new.body); END",
    "CREATE TRIGGER search_documents_fts_delete AFTER DELETE ON search_documents BEGIN "
    "DELETE FROM search_fts WHERE rowid = old.repository_id; END",
)


def upgrade() -> None:
    """Add the metadata columns and the search tables."""
    op.add_column("repositories", sa.Column("readme", sa.Text, nullable=True))
    op.add_column("repositories", sa.Column("pull_count", sa.BigInteger, nullable=False, server_default="0"))
    op.add_column("repositories", sa.Column("star_count", sa.Integer, nullable=False, server_default="0"))
    op.add_column("repositories", sa.Column("last_pushed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "repository_stars",
        sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_repository_stars_user", "repository_stars", ["user_id"])
    op.create_table(
        "manifest_facets",
        sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("manifest_digest", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "search_facets",
        sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.String(512), primary_key=True),
    )
    op.create_index("ix_search_facets_lookup", "search_facets", ["kind", "key", "value"])
    op.create_table(
        "search_documents",
        sa.Column("repository_id", sa.Integer, sa.ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("short_name", sa.String(255), nullable=False),
        sa.Column("name_terms", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"ALTER TABLE search_documents ADD COLUMN document tsvector GENERATED ALWAYS AS ({PG_DOCUMENT}) STORED"
        )
        op.execute("CREATE INDEX ix_search_documents_document ON search_documents USING GIN (document)")
    else:
        # Porter stemming over unicode61 words; the search store keeps it in step with search_documents.
        op.execute(
            "CREATE VIRTUAL TABLE search_fts USING fts5(name_terms, description, body, "
            "tokenize = 'porter unicode61 remove_diacritics 2')"
        )
        # search_documents is the truth; these keep the full-text table in step inside SQLite
        # (a repository's rows cascade away with it, and so does its full-text row).
        for trigger in FTS_TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    """Drop the search tables and the metadata columns."""
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TABLE IF EXISTS search_fts")
    op.drop_table("search_documents")
    op.drop_table("search_facets")
    op.drop_table("manifest_facets")
    op.drop_table("repository_stars")
    with op.batch_alter_table("repositories") as batch:
        for column in ("last_pushed_at", "star_count", "pull_count", "readme"):
            batch.drop_column(column)
