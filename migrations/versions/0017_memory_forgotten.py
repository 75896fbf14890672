"""Forgetting memory (issue 9, "corrections stick"): the audit log of forgotten turns.

`peek memory forget` removes a turn and everything derived from it; this table keeps what was
forgotten, when and why, with a sha256 of the removed text (never the text), so a user can
show what went and prove which text it was. Existing stores have forgotten nothing: the table
starts empty and upgrading converts nothing; downgrading drops it (the turns stay forgotten).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create `memory_forgotten`."""
    op.create_table(
        "memory_forgotten",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("corpus_id", sa.Integer, sa.ForeignKey("corpora.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("turn_id", sa.Text, nullable=False),
        sa.Column("session", sa.Text),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("text_sha256", sa.String(64)),
        sa.Column("reason", sa.Text),
        sa.Column("forgotten_at", sa.Float, nullable=False),
    )
    op.create_index("ix_memory_forgotten_corpus_turn", "memory_forgotten",
                    ["corpus_id", "turn_id"])


def downgrade() -> None:
    """Drop `memory_forgotten`."""
    op.drop_index("ix_memory_forgotten_corpus_turn", "memory_forgotten")
    op.drop_table("memory_forgotten")
