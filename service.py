"""The one service object behind every front door (CLI, MCP server, SDK)."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from peek.config import Settings
from peek.db import Database, open_database
from peek.errors import CorpusError, NotIndexedError, QueryError
from peek.schema import Corpus

if TYPE_CHECKING:
    from peek.retrieval.indexer import IndexStats, Progress
    from peek.retrieval.lexical import Hit


def resolve_root(path: str | os.PathLike[str]) -> Path:
    """The corpus root as a real, readable folder, or a CorpusError saying why not."""
    root = Path(path).expanduser()
    if not root.exists():
        raise CorpusError(f"no such folder: {root}", "check the path")
    if not root.is_dir():
        raise CorpusError(f"not a folder: {root}", "give the folder that holds the corpus")
    if not os.access(root, os.R_OK | os.X_OK):
        raise CorpusError(f"cannot read folder: {root}", "check its permissions")
    return root.resolve()


class Peek:
    """A corpus and the peek home that stores what peek knows about it."""

    def __init__(
        self, path: str | os.PathLike[str], home: str | os.PathLike[str] | None = None
    ) -> None:
        self.root = resolve_root(path)
        self.settings = Settings.load(home)

    @cached_property
    def db(self) -> Database:
        """The store, opened (and migrated) on first use."""
        return open_database(self.settings.db_path)

    def corpus_id_or_none(self) -> int | None:
        """The id of this corpus in the store, or None when it was never indexed."""
        with self.db.read() as conn:
            return conn.scalar(select(Corpus.id).where(Corpus.root == str(self.root)))

    @property
    def corpus_id(self) -> int:
        """The id of this corpus; commands that need an index fail clearly without one."""
        cid = self.corpus_id_or_none()
        if cid is None:
            raise NotIndexedError(
                f"{self.root} is not indexed yet", f"run: peek index {self.root}"
            )
        return cid

    def index(self, progress: Progress | None = None) -> IndexStats:
        """Index the corpus incrementally: only added or changed files are read again."""
        from peek.contextmap.bootstrap import bootstrap_map
        from peek.retrieval.indexer import index_corpus

        stats = index_corpus(self.db, self.root, self.settings.max_file_bytes, progress)
        bootstrap_map(self.db, self.corpus_id, self.root)  # seeds once: a no-op once seeded
        return stats

    def search(self, query: str, k: int = 10) -> list[Hit]:
        """The k best chunks for a query, by field-weighted BM25 over code-aware tokens."""
        from peek.retrieval.lexical import search_chunks

        if not query.strip():
            raise QueryError("the query is empty", "say what you are looking for")
        if k < 1:
            raise QueryError(f"-k must be at least 1, got {k}")
        corpus_id = self.corpus_id
        with self.db.read() as conn:
            return search_chunks(conn, corpus_id, query, k)

    def close(self) -> None:
        """Release the store's connections."""
        if "db" in self.__dict__:
            self.db.close()
