"""Episodic memory: turns, windows, episodes, GSW nodes and the per-corpus memory state."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _corpus_fk(primary_key: bool = False) -> sa.Column[int]:
    return sa.Column(
        "corpus_id", sa.Integer, sa.ForeignKey("corpora.id", ondelete="CASCADE"),
        nullable=False, primary_key=primary_key,
    )


def upgrade() -> None:
    """Create the memory tables."""
    op.create_table(
        "memory_state",
        _corpus_fk(primary_key=True),
        sa.Column("embedder", sa.String(16), nullable=False),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("fitted_n", sa.Integer, nullable=False),
        sa.Column("embedder_state", sa.LargeBinary),
        sa.Column("clustered_windows", sa.Integer, nullable=False),
        sa.Column("next_node", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "memory_turns",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _corpus_fk(),
        sa.Column("turn_id", sa.Text, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("speaker", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("time", sa.Text),
        sa.Column("session", sa.Text),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("terms", sa.Text, nullable=False),
        sa.Column("vector", sa.LargeBinary),
        sa.Column("blobs", sa.Text, nullable=False),
        sa.Column("stale", sa.Boolean, nullable=False),
        sa.Column("window", sa.Integer, nullable=False),
    )
    op.create_index("ix_memory_turns_corpus_turn", "memory_turns", ["corpus_id", "turn_id"],
                    unique=True)
    op.create_index("ix_memory_turns_corpus_seq", "memory_turns", ["corpus_id", "seq"])
    op.create_table(
        "memory_windows",
        _corpus_fk(primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("first_seq", sa.Integer, nullable=False),
        sa.Column("last_seq", sa.Integer, nullable=False),
        sa.Column("session", sa.Text),
        sa.Column("vector", sa.LargeBinary),
        sa.Column("episode", sa.Integer),
    )
    op.create_table(
        "memory_episodes",
        _corpus_fk(primary_key=True),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("centroid", sa.LargeBinary, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("medoids", sa.Text, nullable=False),
        sa.Column("prefix", sa.Text, nullable=False),
        sa.Column("prefix_sha256", sa.String(64), nullable=False),
        sa.Column("tokens", sa.Integer, nullable=False),
    )
    op.create_table(
        "memory_nodes",
        _corpus_fk(primary_key=True),
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("norm", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("vector", sa.LargeBinary),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("stale", sa.Boolean, nullable=False),
    )
    op.create_index("ix_memory_nodes_corpus_norm", "memory_nodes", ["corpus_id", "norm"])


def downgrade() -> None:
    """Drop the memory tables."""
    for table in ("memory_nodes", "memory_episodes", "memory_windows", "memory_turns",
                  "memory_state"):
        op.drop_table(table)
