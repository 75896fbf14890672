"""Outcome summaries (issue 9): what a recorded change did, in words (e.g. its commit message).

A nullable text column on `session_outcomes`. Existing outcomes have none, so their indexed
documents (the question alone) stay exactly as they are: upgrading converts nothing. On SQLite
the column is added and dropped in place (DROP COLUMN needs SQLite >= 3.35), so row ids, the
keys of the outcome index, stay. Downgrading drops the column and rebuilds the outcome indexes
of the corpora that had summaries, so their documents are the questions alone again, as 0014's
code makes them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add `session_outcomes.summary`."""
    op.add_column("session_outcomes", sa.Column("summary", sa.Text))


def downgrade() -> None:
    """Drop `session_outcomes.summary`; re-index what summaries had added to."""
    conn = op.get_bind()
    corpora = [int(r[0]) for r in conn.execute(sa.text(
        "SELECT DISTINCT corpus_id FROM session_outcomes WHERE summary IS NOT NULL "
        "ORDER BY corpus_id"))]
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("ALTER TABLE session_outcomes DROP COLUMN summary")
    else:
        op.drop_column("session_outcomes", "summary")
    if corpora:
        from peek.storecopy import rebuild_outcome_indexes  # the code that builds those indexes

        rebuild_outcome_indexes(conn, corpora)
