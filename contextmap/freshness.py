"""Freshness: what the policy knows about the corpus now, and which anchored entries went stale.

An entry that points at code carries the blob sha of each file it cites. On every render the
sha of the file in the working tree is compared with it; a mismatch (or a vanished file) marks
the entry stale: it renders with a `(stale)` mark and scores lower, so the Evictor drops it
first and the agent re-checks it before trusting it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from peek.blobs import working_tree_sha
from peek.contextmap.model import Entry
from peek.db import driver

if TYPE_CHECKING:
    from peek.contextmap.store import ChangeSet
    from peek.db import AnyConnection

__all__ = ["CorpusView", "IndexedFile", "SymbolSpan"]

_QUERY_CHUNK = 500
_SELECT_FILES = ("SELECT id, path, blob_sha, line_count, language FROM files "
                 "WHERE corpus_id = :cid AND path IN ({})")
_SELECT_SYMBOLS = ("SELECT name, qualname, kind, start_line, end_line FROM symbols "
                   "WHERE file_id = :fid ORDER BY start_line")
_SELECT_ROOT = "SELECT root FROM corpora WHERE id = :cid"


@dataclass(frozen=True)
class IndexedFile:
    """A file as the index knows it."""

    id: int
    path: str
    blob_sha: str
    line_count: int
    language: str


@dataclass(frozen=True)
class SymbolSpan:
    """A definition and its lines, for naming what an answer cited."""

    name: str
    qualname: str
    kind: str
    start_line: int
    end_line: int


class CorpusView:
    """The corpus as the policy sees it: indexed files, their symbols, current blobs on disk."""

    def __init__(self, conn: AnyConnection, corpus_id: int, root: Path | None = None,
                 blobs: dict[str, str | None] | None = None) -> None:
        self.conn = conn
        self.corpus_id = corpus_id
        self.root = root if root is not None else _stored_root(conn, corpus_id)
        self._files: dict[str, IndexedFile | None] = {}
        self._symbols: dict[int, list[SymbolSpan]] = {}
        self.blobs: dict[str, str | None] = {} if blobs is None else blobs
        self._on_disk = self.root is not None and self.root.is_dir()

    def normalize(self, path: str) -> str:
        """A corpus-relative posix path for whatever form a host agent reported."""
        raw = path.strip().replace("\\", "/")
        if self.root is not None and PurePosixPath(raw).is_absolute():
            try:
                raw = Path(raw).resolve().relative_to(self.root).as_posix()
            except ValueError:
                return raw
        clean = posixpath.normpath(raw) if raw else raw
        return "" if clean == "." else clean

    def prefetch(self, paths: Iterable[str]) -> None:
        """Load the index rows of many paths in a few queries."""
        todo = sorted({p for p in paths if p and p not in self._files})
        for start in range(0, len(todo), _QUERY_CHUNK):
            chunk = todo[start:start + _QUERY_CHUNK]
            for p in chunk:
                self._files[p] = None
            names = {f"p{i}": p for i, p in enumerate(chunk)}
            sql = _SELECT_FILES.format(", ".join(f":{n}" for n in names))
            for row in driver(self.conn).execute(sql, {"cid": self.corpus_id, **names}):
                self._files[row[1]] = IndexedFile(*row)

    def file(self, path: str) -> IndexedFile | None:
        """The index row of a path, or None if the index does not have it."""
        if path not in self._files:
            self.prefetch([path])
        return self._files[path]

    def current_blob(self, path: str) -> str | None:
        """The sha of the file now: the working tree when the root is reachable, else the index.

        Memoized per view: a view lives for one transaction, one consistent look at the tree.
        """
        if path not in self.blobs:
            self.blobs[path] = self._blob(path)
        return self.blobs[path]

    def _blob(self, path: str) -> str | None:
        if self._on_disk:
            if path.startswith(("../", "/")) or path == "..":
                return None
            return working_tree_sha(path, self.root)
        known = self.file(path)
        return known.blob_sha if known else None

    def line_count(self, path: str) -> int:
        """Lines of an indexed file (1 if unknown), for whole-file anchors."""
        known = self.file(path)
        return max(1, known.line_count) if known else 1

    def symbols(self, path: str) -> list[SymbolSpan]:
        """Definitions in a file, in line order."""
        known = self.file(path)
        if known is None:
            return []
        if known.id not in self._symbols:
            rows = driver(self.conn).execute(_SELECT_SYMBOLS, {"fid": known.id})
            self._symbols[known.id] = [SymbolSpan(*row) for row in rows]
        return self._symbols[known.id]


def _stored_root(conn: AnyConnection, corpus_id: int) -> Path | None:
    row = driver(conn).execute(_SELECT_ROOT, {"cid": corpus_id}).fetchone()
    return Path(row[0]) if row and row[0] else None


def is_outdated(entry: Entry, view: CorpusView) -> bool:
    """Whether any anchor of the entry no longer matches the file it cites."""
    return any(view.current_blob(a.path) != a.blob_sha for a in entry.anchors)


def outdated_changes(entries: Iterable[Entry], view: CorpusView) -> dict[str, bool]:
    """Anchored entries whose stale mark must change, with the mark they should carry."""
    changes: dict[str, bool] = {}
    for entry in entries:
        if entry.anchors:
            now = is_outdated(entry, view)
            if now != entry.outdated:
                changes[entry.id] = now
    return changes


def apply_outdated(cs: ChangeSet, changes: Mapping[str, bool]) -> list[str]:
    """Mark or clear stale entries in a change set; returns the ids that changed."""
    done = []
    for entry_id, flag in sorted(changes.items()):
        if entry_id in cs.map.entries and cs.map.entries[entry_id].outdated != flag:
            op, why = ("STALE", "anchored code changed") if flag else ("FRESH", "anchors match")
            cs.update(entry_id, op=op, outdated=flag, reason=why)
            done.append(entry_id)
    return done
