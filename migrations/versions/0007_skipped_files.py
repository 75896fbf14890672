"""Skipped files: binary or unreadable files remembered by stat, so they are not re-read."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None
#: sizes and nanosecond mtimes outgrow PostgreSQL's 32-bit INTEGER (SQLite's INTEGER is 64-bit)
BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create skipped_files."""
    op.create_table(
        "skipped_files",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "corpus_id", sa.Integer, sa.ForeignKey("corpora.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("size", BIG, nullable=False),
        sa.Column("mtime_ns", BIG, nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.UniqueConstraint("corpus_id", "path"),
    )


def downgrade() -> None:
    """Drop skipped_files."""
    op.drop_table("skipped_files")
