"""Remembering new turns: store, embed, window, re-cluster episodes, extract and reconcile.

Every way into memory (conversation logs, documents, code sessions) ends in `remember`, one
write transaction: the turns are stored with their terms and vectors, appended to windows,
placed in episodes (incrementally, or re-clustered when memory has grown), turned into GSW
chunks by an Operator and merged by the Reconciler. The lexical embedder's IDF is refitted
(and the window vectors recomputed) only when memory grew by REFIT_GROWTH since the last fit,
so a single code session stays a cheap, incremental update. Turn vectors are recomputed only for
an embedder whose similarity the ranking reads (not `hash`, whose weight there is 0), and the
full-text index of turns is extended in place (`fts.py`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from peek import gcpause
from peek.db import driver
from peek.memory import episodes as ep
from peek.memory import fts
from peek.memory.embed import (
    Embedder,
    Fittable,
    HashEmbedder,
    TermEmbedder,
    active_embedder_name,
    make_embedder,
)
from peek.memory.operator import Chunk, turn_chunk
from peek.memory.reconciler import Reconciler
from peek.memory.search import EMBED_WEIGHT
from peek.memory.store import (
    State,
    TurnRecord,
    WindowRecord,
    episode_count,
    existing_turn_ids,
    insert_turns,
    last_turn,
    load_state,
    load_turns,
    new_state,
    pack,
    save_state,
    save_windows,
    set_turn_terms,
    set_turn_vectors,
    window_size,
    window_spans,
)
from peek.memory.turnbody import pack_turn, turn_terms, unpack_turn
from peek.text import ANALYSIS, terms

if TYPE_CHECKING:
    import numpy as np

    from peek.db import AnyConnection
    from peek.llmjson import JSONModel

REFIT_GROWTH = 1.25
ChunkMaker = Callable[[list[TurnRecord]], list[Chunk]]


@dataclass
class NewTurn:
    """A turn to remember: a conversation turn, a document paragraph or a code session."""

    turn_id: str
    speaker: str
    text: str
    time: str | None = None
    session: str | None = None
    source: str = "conversation"
    blobs: dict[str, str] = field(default_factory=dict)

    def embed_text(self) -> str:
        """What the embedder reads: the speaker matters ('Caroline: ...')."""
        return f"{self.speaker}: {self.text}" if self.speaker else self.text


@dataclass
class Remembered:
    """What one `remember` call did."""

    added: int = 0
    skipped: int = 0
    sessions: int = 0
    windows: int = 0
    episodes: int = 0
    entities_written: int = 0
    merged_entities: int = 0
    reclustered: bool = False
    refitted: bool = False

    def to_dict(self) -> dict[str, int | bool]:
        """The counts as plain data (the ingest --json payload)."""
        return dict(self.__dict__)


def default_chunks(turns: list[TurnRecord]) -> list[Chunk]:
    """The deterministic Operator for conversation turns and document paragraphs."""
    return [turn_chunk(t) for t in turns]


def remember(conn: AnyConnection, corpus_id: int, turns: list[NewTurn], *,
             embedder: Embedder | None = None, chunks: ChunkMaker = default_chunks,
             model: JSONModel | None = None) -> Remembered:
    """Store new turns (ids already stored are skipped) and update episodes and the workspace."""
    with gcpause.paused():
        return _remember(conn, corpus_id, turns, embedder, chunks, model)


def _remember(conn: AnyConnection, corpus_id: int, turns: list[NewTurn], embedder: Embedder | None,
              chunks: ChunkMaker, model: JSONModel | None) -> Remembered:
    state, embedder, switched = _state_and_embedder(conn, corpus_id, embedder)
    done = Remembered()
    known = existing_turn_ids(conn, corpus_id, [t.turn_id for t in turns])
    fresh = _unique([t for t in turns if t.turn_id not in known])
    done.skipped = len(turns) - len(fresh)
    if not fresh:
        _counts(conn, corpus_id, fresh, done, len(window_spans(conn, corpus_id)))
        return done
    fts.ensure_indexed(driver(conn), corpus_id)
    records, changed = _place(conn, corpus_id, fresh)
    embedder, done.refitted = _maybe_refit(conn, state, embedder, fresh, switched)
    vectors = _turn_vectors(embedder, fresh)
    insert_turns(conn, corpus_id, [_row(r, t, v) for r, t, v in
                                   zip(records, fresh, vectors, strict=True)])
    fts.index_new_turns(driver(conn), corpus_id, records[0].seq)
    if done.refitted and EMBED_WEIGHT.get(embedder.name, 0.5) > 0:
        _reembed_turns(conn, state, embedder)  # only a ranking that reads turn vectors needs it
    if done.refitted:
        changed |= set(range(max(changed) + 1))
    windows = _update_windows(conn, state, embedder, sorted(changed), every=done.refitted)
    done.reclustered = _update_episodes(conn, state, windows, sorted(changed), done.refitted)
    _reconcile(conn, state, embedder, chunks(records), model, done)
    save_state(conn, state)
    _counts(conn, corpus_id, fresh, done, len(windows))
    return done


def _unique(turns: list[NewTurn]) -> list[NewTurn]:
    seen: dict[str, NewTurn] = {}
    for turn in turns:
        seen.setdefault(turn.turn_id, turn)
    return list(seen.values())


def _state_and_embedder(conn: AnyConnection, corpus_id: int, embedder: Embedder | None,
                        ) -> tuple[State, Embedder, bool]:
    """The state to update and the embedder to write with; a changed embedder re-embeds all."""
    state = load_state(conn, corpus_id)
    if state is not None and state.analysis != ANALYSIS:
        reanalyze(conn, corpus_id)
        state = load_state(conn, corpus_id)
    wanted = embedder.name if embedder is not None else active_embedder_name()
    if state is None:
        chosen = embedder or make_embedder(wanted)
        return new_state(corpus_id, chosen), chosen, False
    if wanted == state.embedder_name:
        return state, embedder or state.embedder(), False
    chosen = embedder or make_embedder(wanted)
    state.embedder_name, state.dim, state.embedder_state = chosen.name, chosen.dim, None
    state.fitted_n = 0
    return state, chosen, True


def _place(conn: AnyConnection, corpus_id: int, fresh: list[NewTurn],
           ) -> tuple[list[TurnRecord], set[int]]:
    """Seq numbers and windows for new turns: a window holds WINDOW_TURNS turns of one session."""
    last = last_turn(conn, corpus_id)
    seq = last.seq + 1 if last else 0
    window = last.window if last else -1
    session = last.session if last else None
    size = window_size(conn, corpus_id, window) if last else ep.WINDOW_TURNS
    records, changed = [], set()
    for turn in fresh:
        if turn.session != session or size >= ep.WINDOW_TURNS:
            window, size, session = window + 1, 0, turn.session
        size += 1
        changed.add(window)
        records.append(TurnRecord(0, turn.turn_id, seq, turn.speaker, turn.text, turn.time,
                                  turn.session, turn.source, terms(turn.embed_text()),
                                  turn.blobs, False, window))
        seq += 1
    return records, changed


def _turn_vectors(embedder: Embedder, turns: list[NewTurn]) -> list[bytes | None]:
    """Turn vectors, stored only for an embedder whose ranking reads them (4 KB a turn else)."""
    if EMBED_WEIGHT.get(embedder.name, 0.5) <= 0:
        return [None] * len(turns)
    return [pack(v) for v in embedder.embed([t.embed_text() for t in turns])]


def _row(record: TurnRecord, turn: NewTurn, vector: bytes | None) -> dict[str, object]:
    return {"turn_id": record.turn_id, "seq": record.seq, "speaker": record.speaker,
            "time": record.time, "session": record.session, "source": record.source,
            "vector": vector, "stale": False, "window": record.window,
            "body": pack_turn(record.text, " ".join(record.terms), turn.blobs)}


def _maybe_refit(conn: AnyConnection, state: State, embedder: Embedder, fresh: list[NewTurn],
                 switched: bool) -> tuple[Embedder, bool]:
    """Refit a corpus-fitted embedder (a copy: the stored one is shared) when memory grew
    enough or the embedder changed; the embedder to write with, and whether it was refitted."""
    row = driver(conn).execute("SELECT count(*) FROM memory_turns WHERE corpus_id = ?",
                               (state.corpus_id,)).fetchone()
    stored = int(row[0] or 0)
    total = stored + len(fresh)
    if not isinstance(embedder, Fittable):
        return embedder, switched
    if not switched and state.fitted_n and total < REFIT_GROWTH * state.fitted_n:
        return embedder, False
    embedder = copy.deepcopy(embedder)
    assert isinstance(embedder, Fittable)
    fresh_terms = [terms(t.embed_text()) for t in fresh]
    if isinstance(embedder, TermEmbedder) and not switched and state.fitted_n and getattr(
            embedder, "n_docs", None) == state.fitted_n:
        embedder.extend_terms(_terms_after(conn, state.corpus_id, state.fitted_n) + fresh_terms)
    elif isinstance(embedder, TermEmbedder):
        embedder.fit_terms([t.terms for t in load_turns(conn, state.corpus_id)] + fresh_terms)
    else:
        embedder.fit(_embed_texts(load_turns(conn, state.corpus_id))
                     + [t.embed_text() for t in fresh])
    state.embedder_state = embedder.state()
    state.fitted_n = total
    return embedder, True


def _terms_after(conn: AnyConnection, corpus_id: int, skip: int) -> list[list[str]]:
    """The stored terms of every turn but the first `skip` (those the last fit counted)."""
    rows = driver(conn).execute("SELECT body, turn_id FROM memory_turns WHERE corpus_id = ? "
                                "ORDER BY seq LIMIT -1 OFFSET ?", (corpus_id, skip))
    return [turn_terms(r[0], r[1]).split() for r in rows]


class _Said(Protocol):
    """What embedding reads of a turn."""

    @property
    def speaker(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def terms(self) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class _Line:
    """A turn as a window's vector reads it (no blobs, no record: a refit reads every turn)."""

    window: int
    seq: int
    session: str | None
    speaker: str
    text: str
    terms: list[str]


def _embed_texts(turns: Sequence[_Said]) -> list[str]:
    return [f"{t.speaker}: {t.text}" if t.speaker else t.text for t in turns]


def _embed_turns(embedder: Embedder, groups: Sequence[Sequence[_Said]]) -> np.ndarray:
    """Embed groups of turns (one text per group, a turn per line), from stored terms if the
    embedder reads terms: the terms of lines joined are the lines' terms joined."""
    if isinstance(embedder, TermEmbedder):
        return embedder.embed_terms([[w for t in group for w in t.terms] for group in groups])
    return embedder.embed(["\n".join(_embed_texts(group)) for group in groups])


def _reembed_turns(conn: AnyConnection, state: State, embedder: Embedder) -> None:
    stored = load_turns(conn, state.corpus_id)
    vectors = _embed_turns(embedder, [[t] for t in stored])
    set_turn_vectors(conn, state.corpus_id, {t.row_id: pack(v)
                                             for t, v in zip(stored, vectors, strict=True)})


def _update_windows(conn: AnyConnection, state: State, embedder: Embedder, changed: list[int],
                    every: bool = False) -> list[WindowRecord]:
    """(Re)embed the windows that got turns (their turns' text, one per line), or `every`
    window (after a refit); all windows, the others without their vectors (read when needed)."""
    windows = {w.idx: w for w in window_spans(conn, state.corpus_id)}
    grouped = _window_lines(conn, state.corpus_id, None if every else changed,
                            _first_seq(windows, changed), not isinstance(embedder, TermEmbedder))
    order = sorted(grouped)
    vectors = _embed_turns(embedder, [grouped[i] for i in order])
    updated = [WindowRecord(i, grouped[i][0].seq, grouped[i][-1].seq, grouped[i][0].session,
                            pack(v), windows[i].episode if i in windows else None)
               for i, v in zip(order, vectors, strict=True)]
    save_windows(conn, state.corpus_id, updated)
    windows.update({w.idx: w for w in updated})
    return [windows[i] for i in sorted(windows)]


def reembed_windows(conn: AnyConnection, state: State, embedder: Embedder, changed: list[int],
                    ) -> list[WindowRecord]:
    """Re-embed windows whose turns changed (as `remember` does); every window, in order."""
    return _update_windows(conn, state, embedder, changed)


def _window_lines(conn: AnyConnection, corpus_id: int, windows: list[int] | None, first_seq: int,
                  texts: bool = True) -> dict[int, list[_Line]]:
    """The turns of some windows (None: every window) from `first_seq` on, grouped by window
    in seq order (without speaker and text when the embedder reads only terms)."""
    sql = ("SELECT window, seq, session, speaker, body, turn_id FROM memory_turns "
           "WHERE corpus_id = ? AND seq >= ?")
    params: tuple[object, ...] = (corpus_id, first_seq)
    if windows is not None:
        sql += " AND window IN (SELECT value FROM json_each(?))"
        params += (json.dumps(sorted(set(windows))),)
    grouped: dict[int, list[_Line]] = {}
    for r in driver(conn).execute(sql + " ORDER BY seq", params):
        text, words, _ = unpack_turn(r[4], r[5])
        line = _Line(r[0], r[1], r[2], r[3], text, words.split()) if texts else _Line(
            r[0], r[1], r[2], "", "", words.split())
        grouped.setdefault(r[0], []).append(line)
    return grouped


def _first_seq(windows: dict[int, WindowRecord], changed: list[int]) -> int:
    """A seq at or before the first turn of the changed windows: a stored window's first seq,
    else (only new windows) the seq after the last stored window's turns."""
    stored = [windows[i].first_seq for i in changed if i in windows]
    if stored:
        return min(stored)
    return windows[max(windows)].last_seq + 1 if windows else 0


def _update_episodes(conn: AnyConnection, state: State, windows: list[WindowRecord],
                     changed: list[int], refitted: bool) -> bool:
    """Re-cluster when needed, else assign the changed windows; True when re-clustered."""
    n_episodes = episode_count(conn, state.corpus_id)
    if refitted or ep.needs_rebuild(len(windows), state, n_episodes):
        whole = all(w.vector is not None for w in windows)  # else read them all
        ep.rebuild(conn, state, windows if whole else None)
        return True
    ep.assign(conn, state, changed, windows)
    return False


def reanalyze(conn: AnyConnection, corpus_id: int) -> None:
    """Re-derive what memory computes from words (turn terms, its full-text indexes, a fitted
    term embedder, window vectors, episodes) after peek's text analysis changed; facts stay."""
    state = load_state(conn, corpus_id)
    if state is None:
        return
    state.analysis = ANALYSIS
    turns = load_turns(conn, corpus_id)
    set_turn_terms(conn, corpus_id, [(t, " ".join(terms(text)))
                                     for t, text in zip(turns, _embed_texts(turns), strict=True)])
    fts.drop(driver(conn), corpus_id)
    fts.ensure_indexed(driver(conn), corpus_id)
    if state.embedder_name == HashEmbedder.name:  # other embedders read text, not terms
        _refit_from_terms(conn, state)
    save_state(conn, state)


def _refit_from_terms(conn: AnyConnection, state: State) -> None:
    """Refit the term embedder on every stored turn, then re-embed and re-cluster from it."""
    embedder, _ = _maybe_refit(conn, state, state.embedder(), [], switched=True)
    if EMBED_WEIGHT.get(embedder.name, 0.5) > 0:
        _reembed_turns(conn, state, embedder)
    windows = _update_windows(conn, state, embedder,
                              [w.idx for w in window_spans(conn, state.corpus_id)], every=True)
    _update_episodes(conn, state, windows, [], refitted=True)


def _reconcile(conn: AnyConnection, state: State, embedder: Embedder, chunks: list[Chunk],
               model: JSONModel | None, done: Remembered) -> None:
    reconciler = Reconciler(conn, state, embedder, model)
    for chunk in chunks:
        reconciler.reconcile(chunk)
    done.entities_written = reconciler.flush()
    done.merged_entities = reconciler.merged


def _counts(conn: AnyConnection, corpus_id: int, fresh: list[NewTurn], done: Remembered,
            n_windows: int) -> None:
    done.added = len(fresh)
    done.sessions = len({t.session for t in fresh})
    done.windows = n_windows
    done.episodes = episode_count(conn, corpus_id)
