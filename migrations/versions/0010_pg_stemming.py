"""PostgreSQL only: rebuild the Porter-stemmed full-text indexes (code, past requests, file
profiles) from the stored rows, since peek's stemmer there now does what SQLite's FTS5
`porter unicode61` tokenizer does in two more cases: identifiers with `_` and digits are
stemmed (`test_filters` -> `test_filt`), and Latin letters lose their diacritics first
(`héllo` -> `hello`). Over sympy's words, those whose stem class differs from SQLite's went
from 1363 to 26 (`benchmarks/postgres_bench.py stemmers`). SQLite: nothing to do.
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
