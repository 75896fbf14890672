"""Corpora, files, chunks and symbols; each corpus gets its own FTS5 table (retrieval/lexical)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None
#: sizes and nanosecond mtimes outgrow PostgreSQL's 32-bit INTEGER (SQLite's INTEGER is 64-bit)
BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the foundation tables."""
    op.create_table(
        "corpora",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("root", sa.Text, nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("git_head", sa.String(64)),
        sa.Column("git_remote", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("indexed_at", sa.Float),
        sa.Column("index_seconds", sa.Float),
    )
    op.create_table(
        "files",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "corpus_id", sa.Integer, sa.ForeignKey("corpora.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("blob_sha", sa.String(40), nullable=False),
        sa.Column("size", BIG, nullable=False),
        sa.Column("mtime_ns", BIG, nullable=False),
        sa.Column("language", sa.String(32), nullable=False),
        sa.Column("line_count", sa.Integer, nullable=False),
        sa.Column("decode_errors", sa.Integer, nullable=False, server_default="0"),
        sa.Column("imports", sa.Text, nullable=False, server_default=""),
        sa.Column("identifiers", sa.Text, nullable=False, server_default=""),
        sa.UniqueConstraint("corpus_id", "path"),
    )
    op.create_index("ix_files_blob", "files", ["blob_sha"])
    op.create_table(
        "chunks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "file_id", sa.Integer, sa.ForeignKey("files.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("start_line", sa.Integer, nullable=False),
        sa.Column("end_line", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("symbol", sa.Text),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_index("ix_chunks_file", "chunks", ["file_id"])
    op.create_table(
        "symbols",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "file_id", sa.Integer, sa.ForeignKey("files.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("qualname", sa.Text, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("start_line", sa.Integer, nullable=False),
        sa.Column("end_line", sa.Integer, nullable=False),
    )
    op.create_index("ix_symbols_name", "symbols", ["name"])
    op.create_index("ix_symbols_file", "symbols", ["file_id"])


def downgrade() -> None:
    """Drop the foundation tables."""
    for table in ("symbols", "chunks", "files", "corpora"):
        op.drop_table(table)
