"""Memory records which text analysis made its stored terms, so a new one can re-derive them.

Existing stores were analysed with the light suffix stripper (analysis 1); peek re-derives
their terms, indexes and fitted embedder with Porter's stemmer on first use
(`peek.memory.pipeline.reanalyze`), at run time, where the code matches the schema.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add memory_state.analysis (1 for every existing row)."""
    with op.batch_alter_table("memory_state") as batch:
        batch.add_column(sa.Column("analysis", sa.Integer, nullable=False, server_default="1"))


def downgrade() -> None:
    """Drop the column."""
    with op.batch_alter_table("memory_state") as batch:
        batch.drop_column("analysis")
