"""Speed: the saved file graph of each corpus, memory's verb edges as indexed rows, and
indexes for the turn look-ups of memory search. Memory's FTS5 tables are per corpus and are
created (and filled from existing turns) on first use, like the code index."""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the graph table; the next `peek index` fills it."""
    op.create_table(
        "file_graphs",
        sa.Column("corpus_id", sa.Integer, sa.ForeignKey("corpora.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("built_at", sa.Float, nullable=False),
        sa.Column("paths", sa.Text, nullable=False),  # newline-joined, node order
        sa.Column("names", sa.Text, nullable=False),  # newline-joined reference names
        *(sa.Column(c, sa.LargeBinary, nullable=False)
          for c in ("src", "dst", "weight", "ref_src", "ref_dst", "ref_name", "ref_weight",
                    "ranks")),
    )


    op.create_table(
        "memory_edges",
        sa.Column("corpus_id", sa.Integer, sa.ForeignKey("corpora.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("verb_id", sa.String(32), primary_key=True),
        sa.Column("node_id", sa.String(32), primary_key=True),
        sa.Column("open", sa.Boolean, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
    )
    op.create_index("ix_memory_edges_node", "memory_edges", ["corpus_id", "node_id", "open"])
    op.create_index("ix_memory_edges_node_seq", "memory_edges", ["corpus_id", "node_id", "seq"])
    op.create_index("ix_memory_turns_corpus_session", "memory_turns", ["corpus_id", "session"])
    op.create_index("ix_memory_turns_corpus_speaker", "memory_turns",
                    ["corpus_id", "source", "speaker"])
    _backfill_edges()


def _backfill_edges() -> None:
    """Edges of the verbs already stored, read from their JSON once."""
    conn = op.get_bind()
    rows = conn.exec_driver_sql(
        "SELECT corpus_id, id, data, seq FROM memory_nodes WHERE kind = 'verb'").fetchall()
    edges: list[dict[str, object]] = []
    for corpus_id, verb_id, data, seq in rows:
        questions = json.loads(data).get("questions", [])
        is_open = any(all(a == "None" for a in q.get("answers", [])) for q in questions)
        nodes = {a for q in questions for a in q.get("answers", [])
                 if a != "None" and not a.startswith("TEXT:")}
        edges.extend({"c": corpus_id, "v": verb_id, "n": node, "o": is_open, "s": seq}
                     for node in sorted(nodes))
    if edges:  # bound through SQLAlchemy: the same statement on SQLite and PostgreSQL
        conn.execute(sa.text("INSERT INTO memory_edges (corpus_id, verb_id, node_id, open, seq) "
                             "VALUES (:c, :v, :n, :o, :s)"), edges)


def downgrade() -> None:
    """Drop the new tables."""
    op.drop_index("ix_memory_turns_corpus_speaker", "memory_turns")
    op.drop_index("ix_memory_turns_corpus_session", "memory_turns")
    op.drop_index("ix_memory_edges_node_seq", "memory_edges")
    op.drop_index("ix_memory_edges_node", "memory_edges")
    op.drop_table("memory_edges")
    op.drop_table("file_graphs")
