"""Ranking remembered turns for a question, and the per-corpus index that makes it fast.

The score of a turn combines:
- BM25 over the turn in its context: the turn's terms twice plus its neighbours' in the same
  session (an answer is often in the reply to the turn that names the topic);
- a speaker prior: when the question names a speaker, that speaker's turns are preferred and
  the name itself no longer counts as a matching word (it matches half the conversation);
- smoothing: a share of the neighbours' scores, and of the best score in the same session;
- the embedder's cosine similarity, weighted by how semantic the embedder is (0 for `hash`,
  which would only repeat the lexical signal);
- stale turns (the code they cite changed) score half and are marked in the text.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from peek.memory.store import (
    EpisodeRecord,
    State,
    TurnRecord,
    current_version,
    load_episodes,
    load_state,
    load_turns,
    load_windows,
    unpack_rows,
)
from peek.memory.text import name_words, terms

if TYPE_CHECKING:
    import numpy as np

    from peek.memory.embed import Embedder

K1 = 1.2
B = 0.75
SELF_WEIGHT = 2
NEIGHBOUR_SHARE = 0.1
SESSION_SHARE = 0.3
OTHER_SPEAKER = 0.7
STALE_FACTOR = 0.5
EMBED_WEIGHT = {"hash": 0.0, "minilm": 0.5}


class BM25:
    """BM25 over token lists, with numpy postings (one array pair per term)."""

    def __init__(self, docs: list[list[str]]) -> None:
        import numpy as np

        self.n = len(docs)
        self.lengths = np.array([len(d) for d in docs], dtype=np.float32)
        self.avg = float(self.lengths.mean()) if self.n and self.lengths.mean() > 0 else 1.0
        rows: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for i, doc in enumerate(docs):
            for term, tf in Counter(doc).items():
                rows[term].append((i, tf))
        self.postings = {t: (np.array([p[0] for p in ps], dtype=np.int64),
                             np.array([p[1] for p in ps], dtype=np.float32))
                         for t, ps in rows.items()}

    def idf(self, term: str) -> float:
        """Robertson-Sparck Jones IDF, never negative."""
        df = len(self.postings[term][0]) if term in self.postings else 0
        return math.log(1 + (self.n - df + 0.5) / (df + 0.5))

    def scores(self, query: list[str]) -> np.ndarray:
        """The BM25 score of every document for the distinct query terms."""
        import numpy as np

        out = np.zeros(self.n, dtype=np.float32)
        norm = K1 * (1 - B + B * self.lengths / self.avg)
        for term in dict.fromkeys(query):
            if term in self.postings:
                docs, tf = self.postings[term]
                out[docs] += self.idf(term) * tf * (K1 + 1) / (tf + norm[docs])
        return out


@dataclass
class MemoryIndex:
    """Everything a search needs, built once per memory version."""

    version: int
    state: State
    embedder: Embedder
    turns: list[TurnRecord]
    bm25: BM25
    vectors: np.ndarray
    prev: np.ndarray
    next: np.ndarray
    session_ids: np.ndarray
    speakers: dict[str, list[str]]
    episode_of: list[int | None]
    episodes: list[EpisodeRecord]
    entity_names: list[tuple[str, str, str]]


_CACHE: dict[tuple[str, int], MemoryIndex] = {}


def memory_index(conn: Connection, db_path: Path, corpus_id: int) -> MemoryIndex | None:
    """The cached index of a corpus's memory, rebuilt when the memory version changed."""
    version = current_version(conn, corpus_id)
    if version is None:
        return None
    key = (str(db_path), corpus_id)
    cached = _CACHE.get(key)
    if cached is not None and cached.version == version:
        return cached
    state = load_state(conn, corpus_id)
    assert state is not None
    built = _build(conn, state)
    _CACHE[key] = built
    return built


def _build(conn: Connection, state: State) -> MemoryIndex:
    import numpy as np

    turns = load_turns(conn, state.corpus_id, with_vectors=True)
    prev, nxt = _neighbours(turns)
    docs = [t.terms * SELF_WEIGHT + (turns[p].terms if p >= 0 else [])
            + (turns[n].terms if n >= 0 else []) for t, p, n in zip(turns, prev, nxt, strict=True)]
    sessions = {s: i for i, s in enumerate(dict.fromkeys(t.session or "" for t in turns))}
    windows = {w.idx: w.episode for w in load_windows(conn, state.corpus_id)}
    return MemoryIndex(
        version=state.version, state=state, embedder=state.embedder(), turns=turns,
        bm25=BM25(docs), vectors=unpack_rows([t.vector for t in turns], state.dim),
        prev=np.array(prev, dtype=np.int64), next=np.array(nxt, dtype=np.int64),
        session_ids=np.array([sessions[t.session or ""] for t in turns], dtype=np.int64),
        speakers=_speakers(turns), episode_of=[windows.get(t.window) for t in turns],
        episodes=load_episodes(conn, state.corpus_id), entity_names=_entity_names(conn, state))


def _entity_names(conn: Connection, state: State) -> list[tuple[str, str, str]]:
    """(id, name, kind) of every entity, for matching the names a question mentions."""
    from sqlalchemy import select

    from peek.memory.tables import MemoryNodeRow

    rows = conn.execute(select(MemoryNodeRow.id, MemoryNodeRow.name, MemoryNodeRow.data)
                        .where(MemoryNodeRow.corpus_id == state.corpus_id,
                               MemoryNodeRow.kind == "entity").order_by(MemoryNodeRow.id))
    return [(r[0], r[1], _kind(r[2])) for r in rows]


def _kind(data: str) -> str:
    import json

    return str(json.loads(data).get("kind", "thing"))


def _neighbours(turns: list[TurnRecord]) -> tuple[list[int], list[int]]:
    """Index of the previous and next turn of the same session (-1 when none)."""
    prev = [i - 1 if i > 0 and turns[i - 1].session == t.session else -1
            for i, t in enumerate(turns)]
    nxt = [i + 1 if i + 1 < len(turns) and turns[i + 1].session == t.session else -1
           for i, t in enumerate(turns)]
    return prev, nxt


def _speakers(turns: list[TurnRecord]) -> dict[str, list[str]]:
    """Each speaker's name words in order, for spotting a named speaker in a question."""
    names = {t.speaker for t in turns if t.source == "conversation" and t.speaker}
    return {s: [w for w in s.lower().split() if w in name_words(s)] for s in names}


@dataclass(frozen=True)
class Ranked:
    """A scored turn position."""

    position: int
    score: float


def rank_turns(index: MemoryIndex, question: str, limit: int) -> list[Ranked]:
    """The best `limit` turns for a question, best first (ties: chronological)."""
    import numpy as np

    if not index.turns:
        return []
    words = terms(question)
    named, name_terms = _named_speakers(index, question)
    lexical = index.bm25.scores([w for w in words if w not in name_terms] or words)
    score = _smooth(index, lexical * _speaker_prior(index, named))
    weight = EMBED_WEIGHT.get(index.embedder.name, 0.5)
    if weight > 0:
        similarity = index.vectors @ index.embedder.embed([question])[0]
        score = score / (float(score.max()) or 1.0) + weight * np.maximum(similarity, 0.0)
    score = score * np.array([STALE_FACTOR if t.stale else 1.0 for t in index.turns])
    order = np.lexsort((np.arange(len(score)), -score))[:limit]
    return [Ranked(int(i), float(score[i])) for i in order if score[i] > 0]


def _named_speakers(index: MemoryIndex, question: str) -> tuple[set[str], set[str]]:
    """Speakers the question names (all their name words, or their first name), and the terms."""
    words = name_words(question)
    named = {s for s, parts in index.speakers.items()
             if parts and (set(parts) <= words or parts[0] in words)}
    return named, {t for s in named for t in terms(s)}


def _speaker_prior(index: MemoryIndex, named: set[str]) -> np.ndarray:
    import numpy as np

    if not named:
        return np.ones(len(index.turns), dtype=np.float32)
    return np.array([1.0 if t.speaker in named else OTHER_SPEAKER for t in index.turns],
                    dtype=np.float32)


def _smooth(index: MemoryIndex, score: np.ndarray) -> np.ndarray:
    """Add a share of the neighbours' scores and of the session's best score."""
    import numpy as np

    padded = np.append(score, 0.0).astype(np.float32)
    out = score + NEIGHBOUR_SHARE * (padded[index.prev] + padded[index.next])
    best = np.zeros(int(index.session_ids.max()) + 1, dtype=np.float32)
    np.maximum.at(best, index.session_ids, score)
    return (out + SESSION_SHARE * best[index.session_ids]).astype(np.float32)
