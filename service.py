"""The one service object behind every front door (CLI, MCP server, SDK)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from peek.bounds import (
    check_k,
    check_map_budget,
    check_memory_budget,
    check_session,
    check_summary,
)
from peek.config import Settings
from peek.db import Database, open_database
from peek.errors import CorpusError, NotIndexedError, QueryError

if TYPE_CHECKING:
    from threading import Thread

    from peek.agent.models import Model
    from peek.agent.session import AskResult, Budgets
    from peek.contextmap.policy import MapView, UpdateResult
    from peek.contextmap.store import EntryChange, VersionRecord
    from peek.memory.forget import Forgotten
    from peek.memory.outcomes import OutcomeCorrection, PastOutcome
    from peek.memory.pipeline import Remembered
    from peek.memory.query import MemorySearch
    from peek.memory.summaries import EntitySummary, EpisodeSummary, ForgottenTurn
    from peek.retrieval.dense import DenseStats
    from peek.retrieval.graph import FileGraph
    from peek.retrieval.indexer import EarlyParse, IndexStats, Progress
    from peek.retrieval.lexical import Hit
    from peek.status import CorpusStatus


def check_budgets(budgets: Budgets) -> Budgets:
    """The same bounds for `peek ask` options and MCP `peek_ask` arguments."""
    from peek.bounds import check_cost, check_steps, check_tokens

    check_steps(budgets.max_steps)
    check_tokens(budgets.max_tokens)
    check_cost(budgets.max_cost)
    return budgets


def resolve_root(path: str | os.PathLike[str]) -> Path:
    """The corpus root as a real, readable folder, or a CorpusError saying why not."""
    root = Path(path).expanduser()
    if not root.exists():
        raise CorpusError(f"no such folder: {root}", "check the path")
    if not root.is_dir():
        raise CorpusError(f"not a folder: {root}", "give the folder that holds the corpus")
    if not os.access(root, os.R_OK | os.X_OK):
        raise CorpusError(f"cannot read folder: {root}", "check its permissions")
    real = root.resolve()
    if not is_utf8(str(real)):
        raise CorpusError(f"the folder's path is not UTF-8: {real}",
                          "rename it; peek stores the corpus path as text")
    return real


def is_utf8(text: str) -> bool:
    """False for a str holding lone surrogates: bytes that were not UTF-8 (argv, file names)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def utf8_text(text: str) -> str:
    """Free text as peek stores it: bytes that were not UTF-8 become U+FFFD, as in indexed
    files, so a question typed in another encoding is answered instead of failing the write."""
    return text if is_utf8(text) else re.sub("[\ud800-\udfff]", "\ufffd", text)


class Peek:
    """A corpus and the peek home that stores what peek knows about it."""

    def __init__(
        self, path: str | os.PathLike[str], home: str | os.PathLike[str] | None = None,
        database_url: str | None = None,
    ) -> None:
        self.root = resolve_root(path)
        self.settings = Settings.load(home, database_url)
        self._graph: tuple[float | None, FileGraph] | None = None
        self.dense_stats: DenseStats | None = None  # what the last index did for dense retrieval
        self._corpus_id: int | None = None

    @cached_property
    def db(self) -> Database:
        """The store, opened (and migrated) on first use."""
        return open_database(self.settings.store)

    def _corpus_id_or_none(self) -> int | None:
        """The id of this corpus in the store, or None when it was never indexed."""
        if self._corpus_id is None and not self._store_absent():
            with self.db.query() as conn:  # ids never change once given: one look-up is enough
                row = conn.execute("SELECT id FROM corpora WHERE root = ?",
                                   (str(self.root),)).fetchone()
            self._corpus_id = None if row is None else int(row[0])
        return self._corpus_id

    def _store_absent(self) -> bool:
        """A SQLite store not created yet holds no corpus: reads answer without creating it."""
        store = self.settings.store
        return "db" not in self.__dict__ and isinstance(store, Path) and not store.exists()

    @property
    def corpus_id(self) -> int:
        """The id of this corpus; commands that need an index fail clearly without one."""
        cid = self._corpus_id_or_none()
        if cid is None:
            raise NotIndexedError(
                f"{self.root} is not indexed yet", f"run: peek index {self.root}"
            )
        return cid

    @property
    def indexed(self) -> bool:
        """Whether the store holds an index of this corpus (nothing is created to find out)."""
        return self._corpus_id_or_none() is not None

    def index(self, progress: Progress | None = None) -> IndexStats:
        """Index the corpus incrementally: only added or changed files are read again."""
        from peek.retrieval.indexer import index_corpus

        started = time.perf_counter()
        built: list[FileGraph] = []
        early = self._early_parse()
        db = self._open_store(early)
        first = early is not None or not self.indexed
        loading: list[Thread] = []

        def load_tokenizer() -> None:  # a first index seeds the map, which counts tokens
            if first:
                from peek.tokens import preload

                loading.append(preload())

        stats = index_corpus(db, self.root, self.settings.max_file_bytes, progress,
                             built.append, early, load_tokenizer)
        self._refresh_dense(bool(stats.added or stats.changed or stats.removed))
        if not self._map_seeded():
            from peek.contextmap.bootstrap import bootstrap_map

            for thread in loading:
                thread.join()
            with self.db.lock("seed"):  # two first indexes at once must not both seed the map
                bootstrap_map(self.db, self.corpus_id, self.root,  # a no-op once seeded
                              graph=built[-1] if built else None)
        if (stats.added or stats.changed or stats.removed) and self._has_memory():
            self.memory_invalidate()  # memory citing code that changed is marked stale now
        stats.seconds = time.perf_counter() - started  # the whole run: dense and seeding too
        return stats

    def _early_parse(self) -> EarlyParse | None:
        """A new store knows no file: start parsing them all now, while it is created."""
        if not self._store_absent():
            return None
        from peek.retrieval.indexer import start_first_index

        return start_first_index(self.root, self.settings.max_file_bytes)

    def _open_store(self, early: EarlyParse | None) -> Database:
        """The store, opened (and created) while an early parse runs; that stops if it fails."""
        try:
            return self.db
        except BaseException:
            if early is not None:
                early.close()
            raise

    def _has_memory(self) -> bool:
        """Whether this corpus remembers anything, without loading the memory modules."""
        with self.db.query() as conn:
            row = conn.execute("SELECT 1 FROM memory_state WHERE corpus_id = :c",
                               {"c": self.corpus_id}).fetchone()
        return row is not None

    def _refresh_dense(self, changed: bool) -> None:
        """Keep chunk vectors and the faiss index current when PEEK_DENSE turns dense on."""
        from peek.retrieval.hybrid import dense_enabled

        if dense_enabled():
            from peek.retrieval.dense import refresh
            from peek.retrieval.embedders import dense_choice, make_dense_embedder

            embedder = make_dense_embedder(dense_choice())
            self.dense_stats = refresh(self.db, self.corpus_id, embedder, changed)

    def _map_seeded(self) -> bool:
        """Whether the map was seeded or has entries (bootstrap would do nothing), cheaply."""
        with self.db.query() as conn:
            row = conn.execute(
                "SELECT seeded OR EXISTS (SELECT 1 FROM map_entries WHERE corpus_id = :c) "
                "FROM map_state WHERE corpus_id = :c", {"c": self.corpus_id}).fetchone()
        return bool(row and row[0])

    def search(self, query: str, k: int = 10) -> list[Hit]:
        """The k best chunks for a query: field-weighted BM25 over code-aware tokens, fused with
        dense retrieval when PEEK_DENSE is on."""
        from peek.retrieval.hybrid import search

        if not query.strip():
            raise QueryError("the query is empty", "say what you are looking for")
        k = check_k(k)
        corpus_id = self.corpus_id
        with self.db.query() as conn:
            return search(conn, corpus_id, query, k)

    def graph(self) -> FileGraph:
        """The import/reference graph as the last index saved it, cached until it changes."""
        from peek.retrieval.graph import graph_stamp, load_saved_graph

        corpus_id = self.corpus_id
        with self.db.query() as conn:
            stamp = graph_stamp(conn, corpus_id)
            if self._graph is None or self._graph[0] != stamp or stamp is None:
                self._graph = (stamp, load_saved_graph(conn, corpus_id))
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
        evolve_steps: int | None | Literal["stored"] = "stored",
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> AskResult:
        """Answer a question with cited locations, using what past sessions learned.

        With `learn`, the session is stored (a model's session is also remembered and distilled
        into the map, as a hypothesis); only `record` with an outcome makes it evidence.
        Without `learn`, nothing is written.
        """
        from peek.agent.session import Budgets

        if not question.strip() and not resume:
            raise QueryError("the question is empty", "ask something about the corpus")
        question = utf8_text(question)
        from peek.agent.workspace import Workspace

        budgets = check_budgets(budgets or Budgets())
        if resume and model is None:
            raise QueryError("--resume needs a model (the offline answer has no steps to resume)",
                             "pass --model, or ask again without --resume")
        if learn and evolve_steps != "stored":
            self.map_configure(evolve_steps=evolve_steps)
        if model is None:
            from peek.agent.offline import run_offline

            result = run_offline(Workspace.of(self), question, budgets, session, learn=learn)
        else:
            from peek.agent.loop import run_agent

            result = run_agent(Workspace.of(self), question, model, budgets, session=session,
                               resume=resume, learn=learn, on_event=on_event)
        if learn and model is not None:  # an offline answer enters memory with its outcome
            self._remember_session(result.trajectory, result.session)
        return result

    # --- episodic memory ---------------------------------------------------------------------

    def _remember_session(self, trajectory: dict[str, Any], session: str) -> None:
        """Add a finished code session to episodic memory (files, symbols, actions, commit)."""
        from peek.memory import record_code_session

        if trajectory.get("question"):
            record_code_session(self.db, self.corpus_id, self.root, trajectory, session)

    def memory_search(self, query: str, k: int = 10, budget: int = 2000) -> MemorySearch:
        """Ranked memory items, each naming the turns it draws on."""
        from peek.memory import memory_search

        if not query.strip():
            raise QueryError("the query is empty", "say what you are looking for")
        k, budget = check_k(k), check_memory_budget(budget)
        return memory_search(self.db, self.corpus_id, query, k, budget)

    def memory_ingest(self, path: str | os.PathLike[str]) -> Remembered:
        """Ingest a conversation log (JSON lines, one turn each) or a document into memory."""
        from peek.memory.ingest import ingest_file
        from peek.memory.pipeline import Remembered

        counts: dict[str, Any] = dict(ingest_file(self.db, self.corpus_id, Path(path),
                                                  max_bytes=self.settings.max_file_bytes))
        return Remembered(**counts)  # the counts are Remembered.to_dict() of the ingest

    def memory_episodes(self) -> list[EpisodeSummary]:
        """Episodes: id, size, tokens and the sha256 of each byte-stable prompt prefix."""
        from peek.memory import list_episodes
        from peek.memory.summaries import EpisodeSummary

        return [EpisodeSummary(**row) for row in list_episodes(self.db, self.corpus_id)]

    def memory_entities(self) -> list[EntitySummary]:
        """The workspace's entities with their roles and states."""
        from peek.memory import list_entities
        from peek.memory.summaries import EntitySummary

        return [EntitySummary(**row) for row in list_entities(self.db, self.corpus_id)]

    def memory_forget(self, turn_ids: Sequence[str] = (), sessions: Sequence[str] = (),
                      reason: str | None = None) -> Forgotten:
        """Forget remembered turns (and every turn of `sessions`) with everything derived from
        them, in one transaction; each is logged with a sha256 of its text, never the text."""
        from peek.memory.forget import forget_turns, session_turn_ids

        ids = [turn_ids] if isinstance(turn_ids, str) else list(turn_ids)
        named = [sessions] if isinstance(sessions, str) else list(sessions)
        if not ids and not named:
            raise QueryError("no turn to forget", "name turn ids or a session")
        with self.db.write() as conn:
            for session in named:
                ids += session_turn_ids(conn, self.corpus_id, session)
            return forget_turns(conn, self.corpus_id, ids,
                                None if reason is None else utf8_text(reason))

    def memory_forgotten(self) -> list[ForgottenTurn]:
        """The audit log of forgotten turns, oldest first (no text: a sha256 of it)."""
        from peek.memory.forget import forgotten_log
        from peek.memory.summaries import ForgottenTurn

        with self.db.read() as conn:
            return [ForgottenTurn(**row) for row in forgotten_log(conn, self.corpus_id)]

    def memory_invalidate(self) -> int:
        """Mark memory that cites changed code as stale; returns how many items changed."""
        from peek.memory import invalidate

        return invalidate(self.db, self.corpus_id, self.root)

    def record(
        self,
        trajectory: dict[str, Any] | str | None = None,
        *,
        session: str | None = None,
        edited: Sequence[str] = (),
        success: bool | None = None,
        budget: int | None = None,
        model: Model | None = None,
        evolve_steps: int | None | Literal["stored"] = "stored",
        summary: str | None = None,
        correct: bool = False,
    ) -> UpdateResult:
        """Teach the map and memory from what a session led to; once per session (see
        `peek.agent.feedback` for the signal each path gives). `summary` says what the change
        did (a commit message): it teaches similar-request matching; a new one amends it.
        `correct` replaces the session's recorded outcome with this one."""
        from peek.agent.feedback import record_session
        from peek.agent.workspace import Workspace

        budget = check_map_budget(budget)
        summary = check_summary(summary)
        session = check_session(session)
        if isinstance(edited, str):  # one path, not its characters
            edited = [edited]
        return record_session(Workspace.of(self), trajectory, session=session, edited=edited,
                              success=success, budget=budget, model=model,
                              evolve_steps=evolve_steps, summary=summary, correct=correct)

    def retract(self, session: str) -> UpdateResult:
        """Withdraw a session's recorded outcome: what it taught is taken back, the audit
        trail keeps what it said (`outcome_corrections`)."""
        from peek.agent.corrections import retract_session
        from peek.agent.workspace import Workspace

        return retract_session(Workspace.of(self), session)

    def outcomes(self, limit: int | None = 20, edited: str | None = None) -> list[PastOutcome]:
        """Recorded outcomes, newest first (only those that edited `edited`, if given): where
        to find the session to correct or retract."""
        from peek.memory.outcomes import recorded_outcomes

        if limit is not None and limit < 1:
            raise QueryError(f"--limit must be at least 1, got {limit}", "give a positive number")
        from peek.sandbox.paths import corpus_file

        path = None if edited is None else corpus_file(self.root, edited)
        with self.db.query() as conn:
            return recorded_outcomes(conn, self.corpus_id, limit, path)

    def corrections(self, session: str | None = None) -> list[OutcomeCorrection]:
        """The audit trail of retracted and corrected outcomes, oldest first."""
        from peek.memory.outcomes import corrections

        with self.db.query() as conn:
            return corrections(conn, self.corpus_id, session)

    # --- the context map -------------------------------------------------------------------

    def map(self, budget: int | None = None) -> MapView:
        """The map as agents see it, computed on read (never written): anchors checked against
        the working tree, within `budget` (default: the stored budget)."""
        from peek.contextmap.policy import CachePolicy

        budget = check_map_budget(budget)
        return CachePolicy(self.db, self.corpus_id, root=self.root, budget=budget).view()

    def map_configure(self, budget: int | None = None,
                      evolve_steps: int | None | Literal["stored"] = "stored") -> MapView:
        """Keep a token budget and/or evolve steps (PEEK's m; None = always evolve)."""
        from peek.contextmap.policy import CachePolicy

        budget = check_map_budget(budget)
        return CachePolicy(self.db, self.corpus_id, root=self.root, budget=budget,
                           evolve_steps=evolve_steps).configure()

    def map_history(self, limit: int | None = 20) -> list[VersionRecord]:
        """The map's versions, newest first, each with its edits and why they were made."""
        from peek.contextmap.store import MapStore

        return MapStore(self.db, self.corpus_id).history(limit)

    def map_diff(self, v1: int, v2: int) -> list[EntryChange]:
        """How the entries changed from version v1 to v2."""
        from peek.contextmap.store import MapStore

        return MapStore(self.db, self.corpus_id).diff(v1, v2)

    def map_rollback(self, version: int) -> int:
        """Make the entries what they were at `version` (itself a new, undoable version)."""
        from peek.contextmap.curation import rollback

        return rollback(self.db, self.corpus_id, version)

    def map_pin(self, entry_id: str, pinned: bool = True) -> int:
        """Pin (never evicted or rewritten by the policy) or unpin an entry."""
        from peek.contextmap.curation import set_pinned

        return set_pinned(self.db, self.corpus_id, entry_id, pinned)

    def map_forget(self, entry_id: str) -> int:
        """Remove an entry; history keeps it for rollback."""
        from peek.contextmap.curation import forget

        return forget(self.db, self.corpus_id, entry_id)

    def map_edit(self, entry_id: str, text: str) -> int:
        """Rewrite an entry's text; its code anchors are re-stamped as current."""
        from peek.contextmap.curation import edit_entry

        return edit_entry(self.db, self.corpus_id, entry_id, utf8_text(text), root=self.root)

    def map_reset(self) -> int:
        """Empty the map and restart its evolve steps (undo with map_rollback)."""
        from peek.contextmap.curation import reset

        return reset(self.db, self.corpus_id)

    def map_export(self) -> dict[str, Any]:
        """The map as JSON-ready data (ids, counters, pins, anchors) that map_import restores."""
        from peek.contextmap.curation import export_map

        return export_map(self.db, self.corpus_id, str(self.root))

    def map_import(self, exported: str) -> int:
        """Replace the entries with an exported map's (ids kept), within the budget."""
        from peek.contextmap.curation import import_map, parse_export

        return import_map(self.db, self.corpus_id, parse_export(exported))

    def status(self) -> CorpusStatus:
        """Indexed commit vs HEAD, files changed since the index, index age and map version."""
        from peek.status import corpus_status, not_indexed

        cid = self._corpus_id_or_none()
        if cid is None:
            return not_indexed(self.root)
        return corpus_status(self.db, self.root, cid, self.settings.max_file_bytes)

    def close(self) -> None:
        """Release the store's connections."""
        if "db" in self.__dict__:
            self.db.close()

    def __enter__(self) -> Peek:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
