"""Outcome corrections (issue 9): a recorded outcome can be retracted or corrected.

`session_outcomes.ranker_delta` keeps the step each outcome moved the ranker's weights by (JSON,
per feature), so a retraction takes exactly that step back; outcomes recorded before this
revision have none, and retracting one leaves the ranker as it is (the note says so).
`outcome_corrections` is the audit trail: what each retracted outcome said and what replaced
it. Upgrading converts nothing; downgrading drops both (a store downgraded keeps its outcomes).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add `session_outcomes.ranker_delta` and the `outcome_corrections` log."""
    op.add_column("session_outcomes", sa.Column("ranker_delta", sa.Text))
    op.create_table(
        "outcome_corrections",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "corpus_id", sa.Integer, sa.ForeignKey("corpora.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("session", sa.String(64), nullable=False),
        sa.Column("before", sa.Text, nullable=False),
        sa.Column("after", sa.Text),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_outcome_corrections_corpus_session", "outcome_corrections",
                    ["corpus_id", "session"])


def downgrade() -> None:
    """Drop the log and the column."""
    op.drop_index("ix_outcome_corrections_corpus_session", "outcome_corrections")
    op.drop_table("outcome_corrections")
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("ALTER TABLE session_outcomes DROP COLUMN ranker_delta")
    else:
        op.drop_column("session_outcomes", "ranker_delta")
