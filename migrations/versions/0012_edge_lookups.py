"""Memory edges by node carry the verb id, so reading an entity's verbs is index-only."""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Replace the node indexes with covering ones (node, open|seq, verb)."""
    op.drop_index("ix_memory_edges_node", "memory_edges")
    op.drop_index("ix_memory_edges_node_seq", "memory_edges")
    op.create_index("ix_memory_edges_node", "memory_edges",
                    ["corpus_id", "node_id", "open", "verb_id"])
    op.create_index("ix_memory_edges_node_seq", "memory_edges",
                    ["corpus_id", "node_id", "seq", "verb_id"])


def downgrade() -> None:
    """Back to the node indexes without the verb id."""
    op.drop_index("ix_memory_edges_node_seq", "memory_edges")
    op.drop_index("ix_memory_edges_node", "memory_edges")
    op.create_index("ix_memory_edges_node", "memory_edges", ["corpus_id", "node_id", "open"])
    op.create_index("ix_memory_edges_node_seq", "memory_edges", ["corpus_id", "node_id", "seq"])
