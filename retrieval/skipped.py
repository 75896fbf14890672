"""Files the index read and left out (binary by content, unreadable), remembered by stat.

Without this, a binary file with an unknown suffix is read again on every index and keeps
`peek status` dirty forever (it is on disk but never in the index).
"""

from __future__ import annotations

from peek.db import Database
from peek.retrieval.walk import FileEntry

Skipped = dict[str, tuple[int, int, str]]


def load_skipped(db: Database, corpus_id: int | None) -> Skipped:
    """Files an earlier index read and left out: path -> (size, mtime_ns, reason)."""
    if corpus_id is None:
        return {}
    with db.query() as conn:  # plain sqlite3: `peek status` never loads SQLAlchemy
        rows = conn.execute("SELECT path, size, mtime_ns, reason FROM skipped_files "
                            "WHERE corpus_id = ?", (corpus_id,))
        return {r[0]: (r[1], r[2], r[3]) for r in rows}


def still_skipped(entry: FileEntry, skipped: Skipped) -> bool:
    """Whether a file was skipped before and has not changed since (same size and mtime)."""
    found = skipped.get(entry.path)
    return found is not None and found[:2] == (entry.size, entry.mtime_ns)
