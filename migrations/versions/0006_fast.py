"""Speed: the saved file graph (edges, references, PageRank) of each corpus."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the graph table; the next `peek index` fills it."""
    op.create_table(
        "file_graphs",
        sa.Column("corpus_id", sa.Integer, sa.ForeignKey("corpora.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("built_at", sa.Float, nullable=False),
        sa.Column("paths", sa.Text, nullable=False),  # newline-joined, node order
        sa.Column("names", sa.Text, nullable=False),  # newline-joined reference names
        *(sa.Column(c, sa.LargeBinary, nullable=False)
          for c in ("src", "dst", "weight", "ref_src", "ref_dst", "ref_name", "ref_weight",
                    "ranks")),
    )


def downgrade() -> None:
    """Drop the graph table."""
    op.drop_table("file_graphs")
