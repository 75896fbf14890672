"""Memory records which text analysis made its stored terms, so a new one can re-derive them.

Existing stores were analysed with the light suffix stripper (analysis 1); peek re-derives
their memory terms, indexes and fitted embedder with Porter's stemmer on first use
(`peek.memory.pipeline.reanalyze`), at run time, where the code matches the schema.

On PostgreSQL every full-text table holds lexemes peek stemmed, and words with `_` or digits
were left unstemmed before (SQLite's porter tokenizer stems them): those tables are rebuilt
here from the stored rows, so search on PostgreSQL matches SQLite again.
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
    if op.get_bind().dialect.name == "postgresql":
        from peek.storecopy import restem_postgres  # the code that builds those tables

        restem_postgres(op.get_bind())


def downgrade() -> None:
    """Drop the column."""
    with op.batch_alter_table("memory_state") as batch:
        batch.drop_column("analysis")
