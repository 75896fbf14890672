"""The one service object behind every front door (CLI, MCP server, SDK)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from peek.config import Settings
from peek.db import Database, open_database
from peek.errors import CorpusError, NotIndexedError, QueryError
from peek.schema import Corpus

if TYPE_CHECKING:
    from peek.agent.models import Model
    from peek.agent.session import AskResult, Budgets
    from peek.contextmap.policy import UpdateResult
    from peek.retrieval.graph import FileGraph
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
        self._graph: tuple[float | None, FileGraph] | None = None

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

    def graph(self) -> FileGraph:
        """The import/reference graph, cached until the corpus is indexed again."""
        from peek.retrieval.graph import load_graph

        corpus_id = self.corpus_id
        with self.db.read() as conn:
            stamp = conn.scalar(select(Corpus.indexed_at).where(Corpus.id == corpus_id))
            if self._graph is None or self._graph[0] != stamp:
                self._graph = (stamp, load_graph(conn, corpus_id))
        return self._graph[1]

    def ask(
        self,
        question: str,
        model: Model | None = None,
        budgets: Budgets | None = None,
        *,
        session: str | None = None,
        resume: bool = False,
        learn: bool = True,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> AskResult:
        """Answer a question with cited locations; the session then teaches the map."""
        from peek.agent.session import Budgets

        if not question.strip() and not resume:
            raise QueryError("the question is empty", "ask something about the corpus")
        budgets = budgets or Budgets()
        if model is None:
            from peek.agent.offline import run_offline

            return run_offline(self, question, budgets, session, learn=learn)
        from peek.agent.loop import run_agent

        return run_agent(
            self, question, model, budgets, session=session, resume=resume, on_event=on_event
        )

    def record(
        self,
        trajectory: dict[str, Any] | str | None = None,
        *,
        session: str | None = None,
        edited: Sequence[str] = (),
        success: bool | None = None,
        budget: int | None = None,
    ) -> UpdateResult:
        """Teach the map from a finished session: a trajectory, or a stored session plus outcome."""
        from peek.contextmap.policy import CachePolicy
        from peek.contextmap.trajectory import Outcome, parse_trajectory

        if trajectory is None:
            if session is None:
                raise QueryError("nothing to record", "give --trajectory FILE or --session ID")
            from peek.agent.session import SessionStore

            trajectory = SessionStore(self.db, self.corpus_id).trajectory(session)
        traj = parse_trajectory(trajectory)
        if edited or success is not None:
            outcome = Outcome(edited_files=[self.relative(p) for p in edited], success=success)
            traj = traj.model_copy(update={"outcome": outcome})
        policy = CachePolicy(self.db, self.corpus_id, root=self.root, budget=budget)
        return policy.update(traj, session=session)

    def relative(self, path: str) -> str:
        """A corpus path as stored (posix, relative to the root), from any form a user gives."""
        candidate = Path(path)
        if candidate.is_absolute():
            try:
                candidate = candidate.resolve().relative_to(self.root)
            except ValueError as exc:
                raise QueryError(f"{path} is outside the corpus {self.root}") from exc
        return candidate.as_posix().removeprefix("./")

    def close(self) -> None:
        """Release the store's connections."""
        if "db" in self.__dict__:
            self.db.close()
