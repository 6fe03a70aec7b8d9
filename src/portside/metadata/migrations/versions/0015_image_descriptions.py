"""A repository nobody wrote a description for shows its image's own.

Search documents now hold, as their description, the written one or else the
``org.opencontainers.image.description`` of the manifest (or index's child) whose tag moved last
(see ``portside.metadata.search_documents``). Documents written before hold only the written one;
this fills in the others.

Revision ID: 0015_image_descriptions
Revises: 0014_upload_first_chunk
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_image_descriptions"
down_revision = "0014_upload_first_chunk"
branch_labels = None
depends_on = None

# One repository (:rid) at a time, so that neither database walks every tag of the registry per row.
_IMAGE_DESCRIPTION = sa.text(
    "UPDATE search_documents SET description = COALESCE(("
    " SELECT substr(f.value, 1, 4096) FROM manifest_facets f JOIN ("
    "  SELECT t.digest AS digest, t.updated_at AS tagged_at FROM tags t WHERE t.repository_id = :rid"
    "  UNION"
    "  SELECT r.target_digest, t.updated_at FROM manifest_references r JOIN tags t"
    "   ON t.repository_id = r.repository_id AND t.digest = r.manifest_digest"
    "  WHERE r.repository_id = :rid AND r.kind = 'manifest'"
    " ) live ON live.digest = f.manifest_digest"
    " WHERE f.repository_id = :rid AND f.key = 'org.opencontainers.image.description'"
    " AND f.kind IN ('annotation', 'label') AND trim(f.value) <> ''"
    " ORDER BY live.tagged_at DESC, f.kind, f.manifest_digest LIMIT 1"
    "), '') WHERE repository_id = :rid"
)


def upgrade() -> None:
    """Give each document without a description its image's, if one says."""
    bind = op.get_bind()
    undescribed = sa.text("SELECT repository_id FROM search_documents WHERE description = ''")
    for (repository_id,) in bind.execute(undescribed).all():
        bind.execute(_IMAGE_DESCRIPTION, {"rid": repository_id})


def downgrade() -> None:
    """Documents hold only written descriptions again."""
    op.execute(
        sa.text(
            "UPDATE search_documents SET description = COALESCE("
            "(SELECT description FROM repositories WHERE repositories.id = search_documents.repository_id), '')"
        )
    )
