"""PostgreSQL only: rebuild the Porter-stemmed full-text indexes (code, past requests, file
profiles) from the stored rows, since peek's stemmer there now stems identifiers with `_` and
digits as SQLite's FTS5 porter tokenizer does (`test_filters` -> `test_filt`). On sympy that
cut the words whose stem class differs from SQLite's from 1363 to 41. SQLite: nothing to do.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Rebuild the stemmed indexes on PostgreSQL."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        from peek.storecopy import rebuild_stemmed

        rebuild_stemmed(bind)


def downgrade() -> None:
    """Nothing to undo: the indexes keep the stems the stemmer now gives."""
