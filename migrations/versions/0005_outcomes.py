"""Session outcomes: what was edited after each answer, and whether it worked (issue 9)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Outcomes (one row per recorded session), the learned ranker, stored ask rankings."""
    op.create_table(
        "session_outcomes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "corpus_id", sa.Integer, sa.ForeignKey("corpora.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("session", sa.String(64), nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("edited", sa.Text, nullable=False),
        sa.Column("success", sa.Boolean),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("recorded_at", sa.Float, nullable=False),
        sa.UniqueConstraint("corpus_id", "session"),
    )
    op.create_table(
        "ranker_state",
        sa.Column(
            "corpus_id", sa.Integer, sa.ForeignKey("corpora.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("weights", sa.Text, nullable=False),
        sa.Column("updates", sa.Integer, nullable=False),
    )
    with op.batch_alter_table("agent_sessions") as batch:
        batch.add_column(sa.Column("ranking", sa.LargeBinary))


def downgrade() -> None:
    """Drop session_outcomes, ranker_state and agent_sessions.ranking."""
    with op.batch_alter_table("agent_sessions") as batch:
        batch.drop_column("ranking")
    op.drop_table("ranker_state")
    op.drop_table("session_outcomes")
