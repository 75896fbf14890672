"""Ranking remembered turns for a question, read from SQLite FTS5 and indexed rows.

The score of a turn combines:
- BM25 over the turn in its context: the turn's terms twice plus its neighbours' in the same
  session (an answer is often in the reply to the turn that names the topic);
- a speaker prior: when the question names a speaker, that speaker's turns are preferred and
  the name itself no longer counts as a matching word (it matches half the conversation);
- smoothing: a share of the neighbours' scores, and of the best score in the same session;
- the embedder's cosine similarity, weighted by how semantic the embedder is (0 for `hash`,
  which would only repeat the lexical signal);
- stale turns (the code they cite changed) score half and are marked in the text.

Nothing is rebuilt per process: the BM25 statistics come from the FTS5 index that `remember`
keeps current (`fts.py`), and only the turns that match, plus the sessions that could still
reach the top k through smoothing, are read. The ranking equals a full pass over every turn:
a turn that matches no query term scores at most half its session's best (a tenth of each
neighbour plus three tenths of the best), so only sessions whose best clears that bar against
the k-th score are read in full.
"""

from __future__ import annotations

import heapq
import json
import math
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peek.db import driver
from peek.memory import fts
from peek.memory.store import TURN_FIELDS, EpisodeRecord, TurnRecord, turn_record, unpack_rows
from peek.memory.text import name_words
from peek.text import terms

if TYPE_CHECKING:
    import numpy as np

    from peek.db import AnyConnection
    from peek.memory.embed import Embedder

K1 = 1.2
B = 0.75
NEIGHBOUR_SHARE = 0.1
SESSION_SHARE = 0.3
OTHER_SPEAKER = 0.7
STALE_FACTOR = 0.5
EMBED_WEIGHT = {"hash": 0.0, "minilm": 0.5}
# the most an unmatched turn can score, as a share of its session's best matched score
UNMATCHED_BOUND = 2 * NEIGHBOUR_SHARE + SESSION_SHARE
_META = "SELECT id, seq, session, speaker, stale FROM memory_turns"
_RECORD = f"SELECT {TURN_FIELDS} FROM memory_turns"


@dataclass(frozen=True, slots=True)
class TurnMeta:
    """What ranking needs of a turn."""

    row_id: int
    seq: int
    session: str | None
    speaker: str
    stale: bool


class MemoryIndex:
    """A corpus's memory as search reads it, on one read transaction (sqlite3 connection)."""

    def __init__(self, conn: sqlite3.Connection, corpus_id: int, row: tuple[Any, ...]) -> None:
        self.conn, self.corpus_id = conn, corpus_id
        self.version, self.embedder_name, self.dim = int(row[0]), str(row[1]), int(row[2])
        self._embedder_state: bytes | None = row[3]
        self._idf: dict[str, float] = {}

    # --- statistics ------------------------------------------------------------------------

    @cached_property
    def totals(self) -> tuple[int, float]:
        """Documents and their mean length in tokens."""
        n, tokens = fts.totals(self.conn, self.corpus_id)
        return n, (tokens / n if n and tokens else 1.0)

    def idf(self, term: str) -> float:
        """Robertson-Sparck Jones IDF over the turn documents, never negative."""
        if term not in self._idf:
            self.prefetch_idf([term])
        return self._idf[term]

    def prefetch_idf(self, words: list[str]) -> None:
        """Look up the document frequencies of many terms at once."""
        n = self.totals[0]
        wanted = [w for w in dict.fromkeys(words) if w not in self._idf]
        for term, df in fts.doc_frequencies(self.conn, self.corpus_id, wanted).items():
            self._idf[term] = math.log(1 + (n - df + 0.5) / (df + 0.5))

    def lexical(self, query: list[str]) -> dict[int, float]:
        """BM25 of every turn document that holds a query term (by turn row id)."""
        postings = {t: fts.term_postings(self.conn, self.corpus_id, t)
                    for t in dict.fromkeys(query)}
        docs = sorted({d for ps in postings.values() for d, _ in ps})
        if not docs:
            return {}
        lengths = fts.doc_lengths(self.conn, self.corpus_id, docs)
        n, avg = self.totals
        out: dict[int, float] = defaultdict(float)
        for term, ps in postings.items():
            if not ps:
                continue
            idf = math.log(1 + (n - len(ps) + 0.5) / (len(ps) + 0.5))
            self._idf[term] = idf
            for doc, tf in ps:
                norm = K1 * (1 - B + B * lengths.get(doc, 0) / avg)
                out[doc] += idf * tf * (K1 + 1) / (tf + norm)
        return dict(out)

    def cooccur(self, words: list[str]) -> bool:
        """Whether one turn document holds every word."""
        if not words:
            return False
        return fts.holds_all(self.conn, self.corpus_id, words)

    # --- rows ------------------------------------------------------------------------------

    def meta(self, row_ids: list[int]) -> dict[int, TurnMeta]:
        """Ranking fields of some turns."""
        rows = self.conn.execute(f"{_META} WHERE id IN (SELECT value FROM json_each(?))",
                                 (json.dumps(row_ids),))
        return {r[0]: TurnMeta(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows}

    def session_meta(self, sessions: list[str]) -> list[TurnMeta]:
        """Ranking fields of every turn of some sessions ("" also means no session)."""
        rows = list(self.conn.execute(
            f"{_META} WHERE corpus_id = ? AND session IN (SELECT value FROM json_each(?))",
            (self.corpus_id, json.dumps(sessions))))
        if "" in sessions:
            rows += self.conn.execute(f"{_META} WHERE corpus_id = ? AND session IS NULL",
                                      (self.corpus_id,)).fetchall()
        return [TurnMeta(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]

    def records(self, row_ids: list[int]) -> dict[int, TurnRecord]:
        """Full turns by row id."""
        rows = self.conn.execute(f"{_RECORD} WHERE id IN (SELECT value FROM json_each(?))",
                                 (json.dumps(row_ids),))
        return {r[0]: turn_record(r) for r in rows}

    def episodes_of_windows(self, windows: list[int]) -> dict[int, int | None]:
        """The episode of each window."""
        rows = self.conn.execute(
            "SELECT idx, episode FROM memory_windows WHERE corpus_id = ? AND idx IN "
            "(SELECT value FROM json_each(?))", (self.corpus_id, json.dumps(windows)))
        return {r[0]: r[1] for r in rows}

    @cached_property
    def speakers(self) -> dict[str, list[str]]:
        """Each conversation speaker's name words in order, to spot a named speaker."""
        rows = self.conn.execute(
            "SELECT DISTINCT speaker FROM memory_turns WHERE corpus_id = ? AND "
            "source = 'conversation' AND speaker != ''", (self.corpus_id,))
        names = [r[0] for r in rows]
        return {s: [w for w in s.lower().split() if w in name_words(s)] for s in names}

    @cached_property
    def entity_names(self) -> list[tuple[str, str, str]]:
        """(id, name, kind) of every entity, for matching the names a question mentions."""
        rows = self.conn.execute(
            "SELECT id, name, COALESCE(entity_kind, 'thing') FROM memory_nodes "
            "WHERE corpus_id = ? AND kind = 'entity' ORDER BY id", (self.corpus_id,))
        return [(r[0], r[1], r[2]) for r in rows]

    @cached_property
    def episodes(self) -> list[EpisodeRecord]:
        """Every episode by id."""
        rows = self.conn.execute(
            "SELECT id, centroid, size, medoids, prefix, prefix_sha256, tokens FROM "
            "memory_episodes WHERE corpus_id = ? ORDER BY id", (self.corpus_id,))
        return [EpisodeRecord(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6])
                for r in rows]

    @cached_property
    def embedder(self) -> Embedder:
        """The stored embedder with its fitted weights (loaded only when a vector is needed)."""
        from peek.memory.embed import restored_embedder

        return restored_embedder(self.embedder_name, self._embedder_state)

    @cached_property
    def size(self) -> int:
        """How many turns are remembered."""
        row = self.conn.execute("SELECT COUNT(*) FROM memory_turns WHERE corpus_id = ?",
                                (self.corpus_id,)).fetchone()
        return int(row[0])

    # --- everything at once (listings, tests, the semantic path) ---------------------------

    @cached_property
    def turns(self) -> list[TurnRecord]:
        """Every turn in seq order."""
        rows = self.conn.execute(f"{_RECORD} WHERE corpus_id = ? ORDER BY seq", (self.corpus_id,))
        return [turn_record(r) for r in rows]

    @cached_property
    def episode_of(self) -> list[int | None]:
        """The episode of each turn of `turns`."""
        windows = self.episodes_of_windows(sorted({t.window for t in self.turns}))
        return [windows.get(t.window) for t in self.turns]

    def vectors(self, row_ids: list[int]) -> np.ndarray:
        """Stored turn vectors in the order of `row_ids`."""
        rows = dict(self.conn.execute(
            "SELECT id, vector FROM memory_turns WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(row_ids),)).fetchall())
        return unpack_rows([rows.get(r) for r in row_ids], self.dim)


def memory_index(conn: AnyConnection, db_path: Path | None, corpus_id: int) -> MemoryIndex | None:
    """The memory of a corpus as search reads it, or None before anything was remembered.

    `db_path` is unused (kept for callers): the index holds no per-process state to key."""
    raw = driver(conn)
    row = raw.execute("SELECT version, embedder, dim, embedder_state FROM memory_state "
                      "WHERE corpus_id = ?", (corpus_id,)).fetchone()
    if row is None or not fts.exists(raw, corpus_id):
        return None
    return MemoryIndex(raw, corpus_id, row)


@dataclass(frozen=True)
class Ranked:
    """A scored turn."""

    row_id: int
    seq: int
    score: float


def rank_turns(index: MemoryIndex, question: str, limit: int) -> list[Ranked]:
    """The best `limit` turns for a question, best first (ties: chronological)."""
    words = terms(question)
    named, name_terms = _named_speakers(index, question)
    lexical = index.lexical([w for w in words if w not in name_terms] or words)
    weight = EMBED_WEIGHT.get(index.embedder_name, 0.5)
    if weight > 0:
        return _rank_semantic(index, question, lexical, named, weight, limit)
    if not lexical:
        return []
    meta = index.meta(list(lexical))
    own = {r: lexical[r] * _prior(m, named) for r, m in meta.items()}
    best = _session_best(meta, own)
    by_seq = {m.seq: m for m in meta.values()}
    scores = {r: _smoothed(m, own, by_seq, best) for r, m in meta.items()}
    bar = heapq.nlargest(limit, scores.values())[-1] if len(scores) >= limit else 0.0
    reach = [s for s, b in best.items() if UNMATCHED_BOUND * b >= bar]
    unmatched = [m for m in index.session_meta(reach) if m.row_id not in meta]
    by_seq.update({m.seq: m for m in unmatched})
    for m in unmatched:
        meta[m.row_id] = m
        scores[m.row_id] = _smoothed(m, own, by_seq, best)
    return _top(scores, meta, limit)


def _rank_semantic(index: MemoryIndex, question: str, lexical: dict[int, float],
                   named: set[str], weight: float, limit: int) -> list[Ranked]:
    """With a semantic embedder every turn can rank: score them all."""
    import numpy as np

    turns = index.turns
    meta = {t.row_id: TurnMeta(t.row_id, t.seq, t.session, t.speaker, t.stale) for t in turns}
    own = {r: lexical.get(r, 0.0) * _prior(m, named) for r, m in meta.items()}
    best = _session_best(meta, own)
    by_seq = {m.seq: m for m in meta.values()}
    base = np.array([_smoothed(m, own, by_seq, best, stale=False) for m in meta.values()])
    similarity = index.vectors(list(meta)) @ index.embedder.embed([question])[0]
    mixed = base / (float(base.max()) or 1.0) + weight * np.maximum(similarity, 0.0)
    scores = {r: float(s) * (STALE_FACTOR if meta[r].stale else 1.0)
              for r, s in zip(meta, mixed.tolist(), strict=True)}
    return _top(scores, meta, limit)


def _top(scores: dict[int, float], meta: dict[int, TurnMeta], limit: int) -> list[Ranked]:
    ranked = sorted((r for r, s in scores.items() if s > 0),
                    key=lambda r: (-scores[r], meta[r].seq))[:limit]
    return [Ranked(r, meta[r].seq, scores[r]) for r in ranked]


def _prior(m: TurnMeta, named: set[str]) -> float:
    return 1.0 if not named or m.speaker in named else OTHER_SPEAKER


def _session_best(meta: dict[int, TurnMeta], own: dict[int, float]) -> dict[str, float]:
    """Best own score per session (no session and the empty one count as one)."""
    best: dict[str, float] = {}
    for r, m in meta.items():
        key = m.session or ""
        best[key] = max(best.get(key, 0.0), own.get(r, 0.0))
    return best


def _smoothed(m: TurnMeta, own: dict[int, float], by_seq: dict[int, TurnMeta],
              best: dict[str, float], stale: bool = True) -> float:
    """Own score, a share of each neighbour's (same session, adjacent seq) and of the best."""
    near = 0.0
    for seq in (m.seq - 1, m.seq + 1):
        other = by_seq.get(seq)
        if other is not None and other.session == m.session:
            near += own.get(other.row_id, 0.0)
    score = own.get(m.row_id, 0.0) + NEIGHBOUR_SHARE * near + SESSION_SHARE * best.get(
        m.session or "", 0.0)
    return score * (STALE_FACTOR if stale and m.stale else 1.0)


def _named_speakers(index: MemoryIndex, question: str) -> tuple[set[str], set[str]]:
    """Speakers the question names (all their name words, or their first name), and the terms."""
    words = name_words(question)
    named = {s for s, parts in index.speakers.items()
             if parts and (set(parts) <= words or parts[0] in words)}
    return named, {t for s in named for t in terms(s)}
