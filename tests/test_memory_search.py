"""Memory search on FTS5: the pruned ranking equals a full pass over every turn, the index
follows `remember` (a new turn rewrites its predecessor's document), and memory from before
the index existed is indexed on first use."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from test_memory_helpers import conversation, indexed

from peek.memory import fts
from peek.memory.ingest import ingest_turns
from peek.memory.query import memory_search
from peek.memory.search import (
    NEIGHBOUR_SHARE,
    OTHER_SPEAKER,
    SESSION_SHARE,
    STALE_FACTOR,
    MemoryIndex,
    memory_index,
    rank_turns,
)
from peek.memory.store import load_turns, set_turn_terms
from peek.memory.text import name_words
from peek.text import terms

QUESTIONS = ["What did Bob renew before the flight?", "What did Alice say about compost?",
             "Where is the castle?", "tomatoes basil greenhouse", "When does the flight leave?"]


def laps(n: int) -> list[dict[str, Any]]:
    """The conversation `n` times over, each lap in its own sessions."""
    return [{**t, "id": f"L{k}:{t['id']}", "session": f"L{k}:{t['session']}"}
            for k in range(n) for t in conversation()]


@pytest.fixture
def memory(make_corpus: Any, tmp_path: Path) -> Any:
    service = indexed(make_corpus({"README.md": "chat logs\n"}), tmp_path / "home")
    ingest_turns(service.db, service.corpus_id, laps(2))
    more = laps(3)[32:]
    for turn in more[:4]:  # the last session goes on in a later ingest
        turn["session"] = "L1:session_2"
    ingest_turns(service.db, service.corpus_id, more)
    yield service
    service.close()


def full_pass(index: MemoryIndex, question: str, limit: int) -> list[tuple[str, float]]:
    """The ranking computed the slow way: BM25 over every turn document, then the priors."""
    turns = index.turns
    docs = []
    for i, t in enumerate(turns):
        doc = t.terms * 2
        if i > 0 and turns[i - 1].session == t.session:
            doc = doc + turns[i - 1].terms
        if i + 1 < len(turns) and turns[i + 1].session == t.session:
            doc = doc + turns[i + 1].terms
        docs.append(doc)
    avg = sum(map(len, docs)) / len(docs)
    words = name_words(question)
    named = {t.speaker for t in turns if t.speaker.lower() in words}
    drop = {w for s in named for w in terms(s)}
    query = list(dict.fromkeys([w for w in terms(question) if w not in drop] or terms(question)))
    lex = []
    for doc in docs:
        score = 0.0
        for term in query:
            df = sum(term in d for d in docs)
            tf = doc.count(term)
            if tf:
                idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
                score += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * len(doc) / avg))
        lex.append(score)
    own = [s * (1.0 if not named or t.speaker in named else OTHER_SPEAKER)
           for s, t in zip(lex, turns, strict=True)]
    best: dict[str, float] = {}
    for s, t in zip(own, turns, strict=True):
        best[t.session or ""] = max(best.get(t.session or "", 0.0), s)
    scored = []
    for i, t in enumerate(turns):
        near = sum(own[j] for j in (i - 1, i + 1)
                   if 0 <= j < len(turns) and turns[j].session == t.session)
        score = own[i] + NEIGHBOUR_SHARE * near + SESSION_SHARE * best[t.session or ""]
        scored.append((score * (STALE_FACTOR if t.stale else 1.0), t.seq, t.turn_id))
    ranked = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))[:limit]
    return [(turn_id, score) for score, _, turn_id in ranked]


@pytest.mark.parametrize("limit", [1, 3, 10])
def test_the_pruned_ranking_equals_a_full_pass(memory: Any, limit: int) -> None:
    with memory.db.query() as conn:
        index = memory_index(conn, None, memory.corpus_id)
        assert index is not None and index.size == 48
        ids = {t.row_id: t.turn_id for t in index.turns}
        for question in QUESTIONS:
            got = [(ids[r.row_id], r.score) for r in rank_turns(index, question, limit)]
            want = full_pass(index, question, limit)
            assert [g[0] for g in got] == [w[0] for w in want], question
            assert [g[1] for g in got] == pytest.approx([w[1] for w in want], rel=1e-6)


def test_a_continued_session_rewrites_the_previous_turn_document(memory: Any) -> None:
    with memory.db.query() as conn:
        table = fts.turns_table(memory.corpus_id)
        rows: dict[int, list[str]] = {}
        for term, doc in conn.execute(f"SELECT term, doc FROM {table}_vi"):  # contentless:
            rows.setdefault(doc, []).append(term)  # the documents are read back from the index
        index = memory_index(conn, None, memory.corpus_id)
        assert index is not None
        turns = index.turns
        totals = fts.totals(conn, memory.corpus_id)
    assert len(rows) == len(turns) and totals == (len(turns), sum(map(len, rows.values())))
    boundary = next(i for i, t in enumerate(turns) if t.turn_id == "L2:D1:1") - 1
    before, after = turns[boundary], turns[boundary + 1]
    assert before.turn_id == "L1:D2:8" and before.session == after.session
    expected = before.terms * 2 + turns[boundary - 1].terms + after.terms
    assert sorted(rows[before.row_id]) == sorted(expected)
    # every document is exactly its context (the rewritten one lost nothing and kept no extra)
    assert all(sorted(rows[t.row_id]) == sorted(fts.context_doc(
        [fts._Turn(u.row_id, u.seq, u.session, " ".join(u.terms)) for u in turns], i).split())
        for i, t in enumerate(turns))


def test_memory_from_before_the_index_is_indexed_on_first_search(memory: Any) -> None:
    question = "What did Bob renew before the flight?"
    first = memory_search(memory.db, memory.corpus_id, question, k=5).to_dict()
    with memory.db.raw_write() as conn:
        for suffix in ("", "_vi", "_vr"):
            conn.execute(f"DROP TABLE {fts.turns_table(memory.corpus_id)}{suffix}")
        conn.execute(f"DROP TABLE {fts.nodes_table(memory.corpus_id)}")
    again = memory_search(memory.db, memory.corpus_id, question, k=5).to_dict()
    assert again == first and first["results"]


def test_refits_extend_the_idf_table_to_what_a_full_fit_gives(memory: Any) -> None:
    from peek.memory.embed import HashEmbedder

    with memory.db.query() as conn:
        state, fitted_n = conn.execute("SELECT embedder_state, fitted_n FROM memory_state "
                                       "WHERE corpus_id = ?", (memory.corpus_id,)).fetchone()
        index = memory_index(conn, None, memory.corpus_id)
        assert index is not None
        turns = index.turns
    assert fitted_n == len(turns) == 48  # 32, then 48 >= 1.25 * 32: refitted by extension
    full = HashEmbedder()
    full.fit_terms([t.terms for t in turns])
    assert state == full.state()


def test_terms_of_an_older_text_analysis_are_re_derived_on_first_use(memory: Any) -> None:
    """A store whose terms came from another analysis (here: garbage under analysis 1) gets
    its terms, indexes, fitted embedder and episodes re-derived, and searches as before."""
    from peek.text import ANALYSIS

    question = "What did Bob renew before the flight?"
    first = memory_search(memory.db, memory.corpus_id, question, k=5).to_dict()
    with memory.db.query() as conn:
        fitted = conn.execute("SELECT embedder_state FROM memory_state WHERE corpus_id = ?",
                              (memory.corpus_id,)).fetchone()[0]
    with memory.db.raw_write() as conn:
        set_turn_terms(conn, memory.corpus_id,
                       [(t, "zzz") for t in load_turns(conn, memory.corpus_id)])
        conn.execute("UPDATE memory_state SET analysis = 1, embedder_state = NULL "
                     "WHERE corpus_id = ?", (memory.corpus_id,))
        fts.drop(conn, memory.corpus_id)
        fts.ensure_indexed(conn, memory.corpus_id)  # an index of the old terms
    again = memory_search(memory.db, memory.corpus_id, question, k=5).to_dict()
    assert again == first and first["results"]
    with memory.db.query() as conn:
        analysis, state = conn.execute("SELECT analysis, embedder_state FROM memory_state "
                                       "WHERE corpus_id = ?", (memory.corpus_id,)).fetchone()
        stored = load_turns(conn, memory.corpus_id)
    assert analysis == ANALYSIS and state == fitted
    assert all(t.terms == terms(f"{t.speaker}: {t.text}" if t.speaker else t.text)
               for t in stored)
