"""Invalidation: memory that cites code goes stale when that code changes.

Remembered turns, entity roles and verb phrases that cite files carry the blob sha of each file
at the time (`blobs`). `invalidate` compares them with the files now: in a git work tree the
candidates come from `git diff --name-only <indexed commit>` plus untracked files, and each
candidate's working-tree blob sha (the sha `git hash-object` gives) decides; in a plain folder
every cited file is hashed on disk; when the root is gone, the indexed blobs decide. Stale items
stay in memory but are served marked as stale (and ranked lower), never as fact; an item whose
files match again is served normally again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, select, update

from peek.gitutil import run_git
from peek.memory import episodes as ep
from peek.memory.models import Entity, VerbPhrase
from peek.memory.store import Node, load_state, load_turns, nodes_by_id, save_nodes, save_state
from peek.memory.tables import MemoryNodeRow, MemoryTurnRow, MemoryWindowRow
from peek.schema import Corpus, File

if TYPE_CHECKING:
    from peek.db import Database



class CurrentBlobs:
    """The sha of each path now, computed once per path."""

    def __init__(self, conn: Connection, corpus_id: int, root: Path) -> None:
        self.conn, self.corpus_id, self.root = conn, corpus_id, root
        self.cache: dict[str, str | None] = {}
        self.indexed: dict[str, str] | None = None
        self.changed = _git_changed(conn, corpus_id, root)

    def unchanged(self, blobs: dict[str, str]) -> bool:
        """Whether every cited file still has the cited sha."""
        return all(self.sha(path, sha) == sha for path, sha in blobs.items())

    def sha(self, path: str, recorded: str) -> str | None:
        """The file's sha now (a path git reports unchanged keeps the recorded sha)."""
        if self.changed is not None and path not in self.changed:
            indexed = self._indexed(path)
            if indexed is None or indexed == recorded:
                return recorded
        if path not in self.cache:
            self.cache[path] = self._now(path)
        return self.cache[path]

    def _now(self, path: str) -> str | None:
        from peek.blobs import working_tree_sha

        if self.root.is_dir():
            return None if path.startswith(("/", "../")) else working_tree_sha(path, self.root)
        return self._indexed(path)

    def _indexed(self, path: str) -> str | None:
        if self.indexed is None:
            rows = self.conn.execute(select(File.path, File.blob_sha).where(
                File.corpus_id == self.corpus_id))
            self.indexed = {r[0]: r[1] for r in rows}
        return self.indexed.get(path)


def _git_changed(conn: Connection, corpus_id: int, root: Path) -> set[str] | None:
    """Paths changed since the indexed commit (committed, staged, unstaged, untracked), or None."""
    commit = conn.scalar(select(Corpus.git_head).where(Corpus.id == corpus_id))
    if not commit or not (root / ".git").exists():
        return None
    diff = run_git(root, "diff", "--name-only", "--no-renames", "--no-ext-diff", "--no-textconv",
                commit)
    untracked = run_git(root, "ls-files", "--others", "--exclude-standard")
    if diff is None or untracked is None:
        return None
    return set(diff.splitlines()) | set(untracked.splitlines())


def invalidate(db: Database, corpus_id: int, root: Path | str) -> int:
    """Mark memory citing changed code stale (and fresh again when it matches); returns how many
    items became stale."""
    with db.write() as conn:
        state = load_state(conn, corpus_id)
        if state is None:
            return 0
        now = CurrentBlobs(conn, corpus_id, Path(root))
        turns_stale, touched = _turns(conn, corpus_id, now)
        nodes_stale, nodes_changed = _nodes(conn, corpus_id, now)
        if touched:
            ep.refresh(conn, state, _episodes_of(conn, corpus_id, touched))
        if touched or nodes_changed:
            save_state(conn, state)
    return turns_stale + nodes_stale


def _turns(conn: Connection, corpus_id: int, now: CurrentBlobs) -> tuple[int, set[int]]:
    """Flip the stale mark of turns; (newly stale count, windows of every flipped turn)."""
    newly, windows = 0, set()
    for turn in load_turns(conn, corpus_id):
        if not turn.blobs:
            continue
        stale = not now.unchanged(turn.blobs)
        if stale != turn.stale:
            conn.execute(update(MemoryTurnRow).where(MemoryTurnRow.id == turn.row_id)
                         .values(stale=stale))
            newly += int(stale)
            windows.add(turn.window)
    return newly, windows


def _nodes(conn: Connection, corpus_id: int, now: CurrentBlobs) -> tuple[int, bool]:
    """Flip the stale marks of entity roles and verb phrases; (newly stale count, changed)."""
    newly, changed = 0, []
    for node in _cited_nodes(conn, corpus_id):
        flips = _flip(node, now)
        if flips:
            changed.append(node)
            newly += sum(1 for f in flips if f)
    save_nodes(conn, corpus_id, changed)
    return newly, bool(changed)


def _cited_nodes(conn: Connection, corpus_id: int) -> list[Node]:
    ids = list(conn.scalars(select(MemoryNodeRow.id).where(
        MemoryNodeRow.corpus_id == corpus_id, MemoryNodeRow.kind.in_(("entity", "verb")),
        MemoryNodeRow.cites)))
    return nodes_by_id(conn, corpus_id, ids)


def _flip(node: Node, now: CurrentBlobs) -> list[bool]:
    """Update the stale marks of one node's evidence; the new marks of those that changed."""
    items = node.roles if isinstance(node, Entity) else [node] if isinstance(node, VerbPhrase) \
        else []
    flips = []
    for item in items:
        if item.blobs:
            stale = not now.unchanged(item.blobs)
            if stale != item.stale:
                item.stale = stale
                flips.append(stale)
    return flips


def _episodes_of(conn: Connection, corpus_id: int, windows: set[int]) -> set[int]:
    rows = conn.scalars(select(MemoryWindowRow.episode).where(
        MemoryWindowRow.corpus_id == corpus_id, MemoryWindowRow.idx.in_(sorted(windows))))
    return {int(r) for r in rows if r is not None}


def stale_summary(db: Database, corpus_id: int) -> dict[str, int]:
    """How many turns and nodes are stale now."""
    from sqlalchemy import func

    with db.read() as conn:
        turns = conn.scalar(select(func.count()).where(MemoryTurnRow.corpus_id == corpus_id,
                                                       MemoryTurnRow.stale.is_(True)))
        nodes = conn.scalar(select(func.count()).where(MemoryNodeRow.corpus_id == corpus_id,
                                                       MemoryNodeRow.stale.is_(True)))
    return {"turns": int(turns or 0), "nodes": int(nodes or 0)}
