"""Dense retrieval: chunk vectors keyed by blob and line span, and one faiss index per corpus.

Vectors are keyed by (embedder, blob_sha, start_line, end_line), not by chunk id: a file that is
re-indexed with the same content, renamed, or present in two corpora reuses its vectors.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create chunk_vectors and dense_indexes."""
    op.create_table(
        "chunk_vectors",
        sa.Column("embedder", sa.String(64), nullable=False),
        sa.Column("blob_sha", sa.String(40), nullable=False),
        sa.Column("start_line", sa.Integer, nullable=False),
        sa.Column("end_line", sa.Integer, nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("embedder", "blob_sha", "start_line", "end_line"),
    )
    op.create_table(
        "dense_indexes",
        sa.Column(
            "corpus_id", sa.Integer, sa.ForeignKey("corpora.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("embedder", sa.String(64), nullable=False),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("built_at", sa.Float, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    """Drop the dense tables."""
    op.drop_table("dense_indexes")
    op.drop_table("chunk_vectors")
