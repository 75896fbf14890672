"""Forgetting remembered turns (`peek memory forget`): a wrong, private or damaged turn goes,
with everything derived from it, in the caller's one write transaction.

What goes, so that no search path can serve the turn's words again:
- the turn row (its text, terms, cited blobs and vector) and its full-text document; the
  documents of its session neighbours, which hold its terms as context, are rewritten;
- its window's vector (re-embedded from the turns left, or the window deleted when none is),
  and the blocks of the episodes that held that window, rebuilt as `remember` rebuilds the
  episodes it touches (other episodes keep their bytes; an episode left without windows goes);
- the lexical embedder's document frequencies: the forgotten turns its last fit counted are
  taken back out (the same table a fit of the others gives; the stored fit names every word
  it has seen), or, when one of them cannot be read, it is refitted on the others;
- its evidence in the GSW workspace (`unlearn.py`).

Each forgotten turn leaves a row in `memory_forgotten`: id, session, when, why and the
sha256 of its text, never the text. Forgetting an id that is not stored is refused (one
forgotten earlier is named as such); `missing_ok` skips them instead, for callers that retract.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from peek.db import driver, is_postgres
from peek.errors import QueryError, StoreError
from peek.memory import episodes as ep
from peek.memory import fts
from peek.memory.embed import Embedder, Fittable, TermEmbedder
from peek.memory.store import State, load_state, save_state, window_spans
from peek.memory.turnbody import unpack_turn
from peek.memory.unlearn import Sources, forget_sources

if TYPE_CHECKING:
    from peek.db import AnyConnection

REASON_CHARS = 500


@dataclass
class Forgotten:
    """What one forget did: the turns removed and what was derived from them."""

    turns: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    windows_removed: int = 0
    windows_changed: int = 0
    episodes_rebuilt: list[int] = field(default_factory=list)
    episodes_removed: list[int] = field(default_factory=list)
    nodes_removed: int = 0
    nodes_changed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the `peek memory forget --json` payload)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class _Gone:
    """A stored turn about to be forgotten (its text is None when it cannot be read)."""

    row_id: int
    turn_id: str
    seq: int
    session: str | None
    source: str
    window: int
    text: str | None
    terms: str | None


def forget_turns(conn: AnyConnection, corpus_id: int, turn_ids: list[str],
                 reason: str | None = None, *, missing_ok: bool = False) -> Forgotten:
    """Forget stored turns and everything derived from them, inside the caller's write
    transaction; an id not stored is a QueryError (nothing changed) unless `missing_ok`."""
    if reason is not None and len(reason) > REASON_CHARS:
        raise QueryError(f"the reason is {len(reason)} characters, over {REASON_CHARS}",
                         "say why in a sentence")
    wanted = list(dict.fromkeys(turn_ids))
    gone = _stored(conn, corpus_id, wanted)
    found = {g.turn_id for g in gone}
    done = Forgotten(missing=[t for t in wanted if t not in found])
    if done.missing and not missing_ok:
        raise QueryError(_missing_message(conn, corpus_id, done.missing),
                         "`peek memory search` shows each turn's id in brackets")
    state = load_state(conn, corpus_id)
    if not gone or state is None:
        return done
    _forget(conn, state, gone, done)
    _log(conn, corpus_id, gone, reason)
    save_state(conn, state)
    return done


def stored_turn_ids(conn: AnyConnection, corpus_id: int, session: str) -> list[str]:
    """The ids of every stored turn of a session, in order (none when it has none)."""
    return [str(r[0]) for r in driver(conn).execute(
        "SELECT turn_id FROM memory_turns WHERE corpus_id = ? AND session = ? ORDER BY seq",
        (corpus_id, session))]


def session_turn_ids(conn: AnyConnection, corpus_id: int, session: str) -> list[str]:
    """The ids of every stored turn of a session, in order (a QueryError when it has none)."""
    ids = stored_turn_ids(conn, corpus_id, session)
    if not ids:
        raise QueryError(f"memory has no turn of session {session!r}",
                         "a session is an ingested turn's `session`, or `session:ID` of a "
                         "recorded one")
    return ids


def _forget(conn: AnyConnection, state: State, gone: list[_Gone], done: Forgotten) -> None:
    """Remove the turns and rebuild what they fed; on SQLite freed pages are zeroed and the
    full-text segments merged, so the file keeps no copy of the words."""
    raw = driver(conn)
    if is_postgres(raw):
        _remove(conn, state, gone, done)
        return
    before = raw.execute("PRAGMA secure_delete").fetchone()[0]
    raw.execute("PRAGMA secure_delete = ON")
    try:
        _remove(conn, state, gone, done)
        fts.purge(raw, state.corpus_id)
    finally:
        raw.execute(f"PRAGMA secure_delete = {int(before)}")


def _remove(conn: AnyConnection, state: State, gone: list[_Gone], done: Forgotten) -> None:
    """Remove the turns and rebuild what they fed, in dependency order."""
    cid = state.corpus_id
    raw = driver(conn)
    unlearned = forget_sources(conn, cid, _sources(conn, cid, gone))
    exact = fts.unindex_turns(raw, cid, [g.row_id for g in gone], [g.seq for g in gone])
    counted = _counted(conn, state, gone)
    raw.executemany("DELETE FROM memory_turns WHERE corpus_id = ? AND id = ?",
                    [(cid, g.row_id) for g in gone])
    if not exact:
        fts.rebuild_turn_index(raw, cid)
    embedder = _refit(conn, state, counted)
    _rewindow(conn, state, embedder, {g.window for g in gone}, done)
    done.turns = [g.turn_id for g in gone]
    done.damaged = [g.turn_id for g in gone if g.text is None]
    done.nodes_removed, done.nodes_changed = len(unlearned.removed), len(unlearned.changed)


def _stored(conn: AnyConnection, corpus_id: int, ids: list[str]) -> list[_Gone]:
    """The stored turns among `ids`, in seq order (a damaged body is read as no text)."""
    rows = driver(conn).execute(
        "SELECT id, turn_id, seq, session, source, window, body FROM memory_turns "
        "WHERE corpus_id = ? AND turn_id IN (SELECT value FROM json_each(?)) ORDER BY seq",
        (corpus_id, json.dumps(ids)))
    return [_Gone(r[0], r[1], int(r[2]), r[3], r[4], int(r[5]), *_words(r[6], r[1]))
            for r in rows]


def _words(body: Any, turn_id: str) -> tuple[str | None, str | None]:
    """(text, terms) of a stored body; (None, None) when it cannot be read."""
    try:
        text, terms, _ = unpack_turn(body, turn_id)
    except StoreError:
        return None, None
    return text, terms


def _missing_message(conn: AnyConnection, corpus_id: int, missing: list[str]) -> str:
    """Name the first unknown id, and say so when it was forgotten before."""
    first = missing[0]
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    row = driver(conn).execute(
        "SELECT forgotten_at FROM memory_forgotten WHERE corpus_id = ? AND turn_id = ? "
        "ORDER BY forgotten_at DESC LIMIT 1", (corpus_id, first)).fetchone()
    when = None if row is None else row[0]
    if when is not None:
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(when))
        return f"memory turn {first!r} was already forgotten ({stamp}){more}; nothing changed"
    return f"memory has no turn {first!r}{more}; nothing changed"


def _sources(conn: AnyConnection, corpus_id: int, gone: list[_Gone]) -> Sources:
    """The stamps of the forgotten turns; stored turns that stay are never taken for chunks."""
    names = {g.session or g.turn_id for g in gone}
    kept = {r[0] for r in driver(conn).execute(
        "SELECT turn_id FROM memory_turns WHERE corpus_id = ? AND turn_id LIKE '%#%'",
        (corpus_id,))} - {g.turn_id for g in gone}
    return Sources([g.turn_id for g in gone], names, kept)


def _counted(conn: AnyConnection, state: State, gone: list[_Gone]) -> list[_Gone]:
    """The forgotten turns the embedder's last fit counted (the first `fitted_n` by seq)."""
    if not state.fitted_n:
        return []
    rows = driver(conn).execute("SELECT seq FROM memory_turns WHERE corpus_id = ? ORDER BY seq "
                                "LIMIT ?", (state.corpus_id, state.fitted_n))
    fitted = {int(r[0]) for r in rows}
    return [g for g in gone if g.seq in fitted]


def _refit(conn: AnyConnection, state: State, counted: list[_Gone]) -> Embedder:
    """The embedder to re-embed with: a fitted one without the forgotten turns its last fit
    counted (their terms taken out, or, when one cannot be read, a refit on the others)."""
    embedder = state.embedder()
    if not counted or not isinstance(embedder, Fittable):
        return embedder
    embedder = copy.deepcopy(embedder)  # the restored one is shared by the process
    state.fitted_n -= len(counted)
    readable = [g.terms for g in counted if g.terms is not None]
    if isinstance(embedder, TermEmbedder) and len(readable) == len(counted):
        embedder.forget_terms([t.split() for t in readable])
        state.embedder_state = embedder.state()
        return embedder
    rows = driver(conn).execute("SELECT body, turn_id, speaker FROM memory_turns WHERE "
                                "corpus_id = ? ORDER BY seq LIMIT ?",
                                (state.corpus_id, state.fitted_n))
    turns = [(unpack_turn(r[0], r[1]), r[2]) for r in rows]
    if isinstance(embedder, TermEmbedder):
        embedder.fit_terms([words.split() for (_, words, _), _ in turns])
    else:
        embedder.fit([f"{who}: {text}" if who else text for (text, _, _), who in turns])
    state.embedder_state = embedder.state()
    return embedder


def _rewindow(conn: AnyConnection, state: State, embedder: Embedder, windows: set[int],
              done: Forgotten) -> None:
    """Re-embed the windows the turns were in (or delete the emptied ones) and rebuild the
    blocks of the episodes that held them."""
    from peek.memory.pipeline import reembed_windows

    cid = state.corpus_id
    spans = {w.idx: w for w in window_spans(conn, cid) if w.idx in windows}
    left = {int(r[0]) for r in driver(conn).execute(
        "SELECT DISTINCT window FROM memory_turns WHERE corpus_id = ? AND window IN "
        "(SELECT value FROM json_each(?))", (cid, json.dumps(sorted(windows))))}
    before = episode_ids(conn, cid)
    lost = ep.drop(conn, cid, [w for i, w in spans.items() if i not in left])
    changed = sorted(left)
    every = reembed_windows(conn, state, embedder, changed)
    rebuilt: list[ep.EpisodeRecord] = []
    if every and not episode_ids(conn, cid):
        rebuilt = ep.rebuild(conn, state, every)
    elif every:
        rebuilt = ep.assign(conn, state, changed, every, lost)
    done.windows_removed, done.windows_changed = len(spans) - len(left), len(changed)
    done.episodes_removed = sorted(before - episode_ids(conn, cid))
    done.episodes_rebuilt = sorted(e.id for e in rebuilt)


def episode_ids(conn: AnyConnection, corpus_id: int) -> set[int]:
    """The ids of a corpus's episodes."""
    return {int(r[0]) for r in driver(conn).execute(
        "SELECT id FROM memory_episodes WHERE corpus_id = ?", (corpus_id,))}


def _log(conn: AnyConnection, corpus_id: int, gone: list[_Gone], reason: str | None) -> None:
    """The audit rows: which turn, when, why, and a digest of its text (never the text)."""
    now = time.time()
    driver(conn).executemany(
        "INSERT INTO memory_forgotten (corpus_id, turn_id, session, source, reason, "
        "forgotten_at, text_sha256) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(corpus_id, g.turn_id, g.session, g.source, reason, now,
          None if g.text is None else hashlib.sha256(g.text.encode("utf-8")).hexdigest())
         for g in gone])


def forgotten_log(conn: AnyConnection, corpus_id: int) -> list[dict[str, Any]]:
    """Every forgotten turn of a corpus, oldest first (the audit log)."""
    rows = driver(conn).execute(
        "SELECT turn_id, session, source, text_sha256, reason, forgotten_at FROM "
        "memory_forgotten WHERE corpus_id = ? ORDER BY forgotten_at, id", (corpus_id,))
    return [{"turn_id": r[0], "session": r[1], "source": r[2], "text_sha256": r[3],
             "reason": r[4], "forgotten_at": r[5]} for r in rows]
