"""Agent sessions: each asked question, its trajectory and how it ended."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create agent_sessions."""
    op.create_table(
        "agent_sessions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "corpus_id", sa.Integer, sa.ForeignKey("corpora.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stopped_by", sa.String(32)),
        sa.Column("trajectory", sa.Text, nullable=False),
        sa.Column("result", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("steps", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_agent_sessions_corpus", "agent_sessions", ["corpus_id"])


def downgrade() -> None:
    """Drop agent_sessions."""
    op.drop_table("agent_sessions")
