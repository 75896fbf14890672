"""How current a corpus's index and map are: what `peek status` and MCP `peek_status` report."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from peek.retrieval.skipped import load_skipped, still_skipped
from peek.retrieval.walk import git_state, walk_corpus

if TYPE_CHECKING:
    from pathlib import Path

    from peek.db import Database


@dataclass(frozen=True, slots=True)
class CorpusStatus:
    """Whether the index still describes the corpus, and the map version agents will see."""

    corpus: str
    indexed: bool
    indexed_commit: str | None
    head_commit: str | None
    index_age_seconds: float | None
    files: int
    changed: list[str]
    added: list[str]
    removed: list[str]
    map_version: int
    sessions: int = 0  # asks stored for this corpus
    outcomes: int = 0  # outcomes recorded: what taught the ranker, the map and memory
    ranker_updates: int = 0  # learning steps the ranker took from them
    corrections: int = 0  # outcomes corrected or retracted (the audit trail's rows)

    @property
    def dirty(self) -> bool:
        """True when files changed on disk (or HEAD moved) since the last index."""
        moved = self.head_commit is not None and self.head_commit != self.indexed_commit
        return bool(self.changed or self.added or self.removed or moved)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, with `dirty` included."""
        return {**asdict(self), "dirty": self.dirty}


def not_indexed(root: Path) -> CorpusStatus:
    """The status of a corpus the store does not know (its git HEAD, nothing indexed)."""
    git = git_state(root)
    return CorpusStatus(str(root), False, None, git.head if git else None, None, 0, [], [], [], 0)


def corpus_status(db: Database, root: Path, corpus_id: int, max_file_bytes: int) -> CorpusStatus:
    """Compare the store with the tree by stat only (no file is read), like `git status`.

    The map version is the stored one; a later view that finds anchors outdated by files
    changed since makes a new version, and then `dirty` is already true.
    """
    git = git_state(root)
    head = git.head if git else None
    with db.query() as conn:
        indexed_at, indexed_commit = conn.execute(
            "SELECT indexed_at, git_head FROM corpora WHERE id = ?", (corpus_id,)).fetchone()
        known = {r[0]: (r[1], r[2]) for r in conn.execute(
            "SELECT path, size, mtime_ns FROM files WHERE corpus_id = ?", (corpus_id,))}
        version = conn.execute("SELECT version FROM map_state WHERE corpus_id = ?",
                               (corpus_id,)).fetchone()
        learned = conn.execute(_LEARNED_SQL, {"c": corpus_id}).fetchone()
    skipped = load_skipped(db, corpus_id)
    on_disk = {e.path: (e.size, e.mtime_ns) for e in
               walk_corpus(root, max_file_bytes).files
               if not still_skipped(e, skipped)}
    changed = sorted(p for p in known.keys() & on_disk.keys() if known[p] != on_disk[p])
    age = time.time() - indexed_at if indexed_at else None
    return CorpusStatus(
        str(root), True, indexed_commit, head, age, len(known), changed,
        sorted(on_disk.keys() - known.keys()), sorted(known.keys() - on_disk.keys()),
        int(version[0]) if version else 0, *(int(n) for n in learned),
    )


_LEARNED_SQL = """
SELECT (SELECT COUNT(*) FROM agent_sessions WHERE corpus_id = :c),
       (SELECT COUNT(*) FROM session_outcomes WHERE corpus_id = :c),
       COALESCE((SELECT updates FROM ranker_state WHERE corpus_id = :c), 0),
       (SELECT COUNT(*) FROM outcome_corrections WHERE corpus_id = :c)
"""


@dataclass(frozen=True, slots=True)
class StoredCorpus:
    """One corpus a store holds: where it is, when it was indexed, and what peek learned."""

    root: str
    kind: str
    indexed_at: float | None
    indexed_commit: str | None
    files: int
    map_version: int
    map_entries: int
    memory_turns: int

    def to_dict(self) -> dict[str, Any]:
        """Plain data (a `peek corpora --json` row)."""
        return asdict(self)


_CORPORA_SQL = """
SELECT c.root, c.kind, c.indexed_at, c.git_head,
       (SELECT COUNT(*) FROM files f WHERE f.corpus_id = c.id),
       COALESCE((SELECT s.version FROM map_state s WHERE s.corpus_id = c.id), 0),
       (SELECT COUNT(*) FROM map_entries e WHERE e.corpus_id = c.id),
       (SELECT COUNT(*) FROM memory_turns t WHERE t.corpus_id = c.id)
FROM corpora c ORDER BY c.root
"""


def list_corpora(db: Database) -> list[StoredCorpus]:
    """Every corpus in the store, by root path (read only; what `peek corpora` lists)."""
    with db.query() as conn:
        rows = conn.execute(_CORPORA_SQL).fetchall()
    return [StoredCorpus(str(r[0]), str(r[1]), r[2], r[3], int(r[4]), int(r[5]), int(r[6]),
                         int(r[7])) for r in rows]
