"""The context map: per-corpus state, live entries, the edit log and recorded sessions."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _corpus_fk(primary_key: bool = False) -> sa.Column[int]:
    return sa.Column(
        "corpus_id", sa.Integer, sa.ForeignKey("corpora.id", ondelete="CASCADE"),
        nullable=False, primary_key=primary_key,
    )


def upgrade() -> None:
    """Create the context-map tables."""
    op.create_table(
        "map_state",
        _corpus_fk(primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("budget_tokens", sa.Integer, nullable=False),
        sa.Column("evolve_steps", sa.Integer),
        sa.Column("updates", sa.Integer, nullable=False),
        sa.Column("frozen", sa.Boolean, nullable=False),
        sa.Column("seeded", sa.Boolean, nullable=False),
        sa.Column("next_ids", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "map_entries",
        _corpus_fk(primary_key=True),
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("section", sa.String(8), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        *(sa.Column(name, sa.Integer, nullable=False) for name in
          ("helpful", "harmful", "stale", "uses", "created_step", "updated_step")),
        sa.Column("pinned", sa.Boolean, nullable=False),
        sa.Column("outdated", sa.Boolean, nullable=False),
        sa.Column("anchors", sa.Text, nullable=False),
    )
    op.create_table(
        "map_edits",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _corpus_fk(),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("op", sa.String(16), nullable=False),
        sa.Column("entry_id", sa.String(16)),
        sa.Column("before", sa.Text),
        sa.Column("after", sa.Text),
        sa.Column("session", sa.String(64)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_map_edits_corpus_version", "map_edits", ["corpus_id", "version"])
    op.create_table(
        "map_sessions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _corpus_fk(),
        sa.Column("session", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("trajectory", sa.LargeBinary, nullable=False),
        sa.Column("diagnosis", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_map_sessions_corpus_session", "map_sessions", ["corpus_id", "session"])


def downgrade() -> None:
    """Drop the context-map tables."""
    for table in ("map_sessions", "map_edits", "map_entries", "map_state"):
        op.drop_table(table)
