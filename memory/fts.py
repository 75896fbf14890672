"""Memory's full-text indexes in SQLite FTS5: each turn in its context, and the verb nodes.

The turn index holds one document per turn: the turn's terms twice plus its neighbours' in the
same session (an answer is often in the reply to the turn that names the topic). Its rowid is
the turn's row id. It is contentless on SQLite (the documents are not stored a second time:
they are rebuilt from the turns' stored terms, in `memory_turns.body`, which change only when
a new text analysis re-derives them, and that rebuilds the index, see `pipeline.reanalyze`). A
new turn changes one old document, the previous turn of its session (which gains a next
neighbour), so `remember` updates the index in place, deleting the old document by its
tokens, recomputed exactly. The vocabulary tables (fts5vocab) give term frequencies per
document and document frequencies, from which `search.py` computes the same BM25 as before,
without reading every turn.

The node index holds one document per verb phrase (its phrase, questions, TEXT answers and the
names of the nodes it answers with), so an entity summary reads the verbs that can matter for a
question instead of every verb that ever mentioned the entity. It is only matched, never
ranked, so on SQLite it keeps no positions, sizes or documents: each verb's document is kept
packed in its node row (`memory_nodes.doc`), by which a changed one is deleted from the index.

Tables are per corpus (`memory_fts_<id>`, `memory_nodes_fts_<id>`), as the code index is, so
document frequencies describe one corpus. A store from before they existed is indexed on first
use (`ensure_indexed`).

On PostgreSQL the same indexes are `pg_lexical` tables (tsvector + GIN, unstemmed tokens as
here): turn documents keyed by the turn's row id, verb documents by the node id (PostgreSQL
rows have no stable rowid), and the statistics come from the stored lengths and lexemes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from peek.db import is_postgres
from peek.errors import StoreError
from peek.memory.turnbody import turn_terms
from peek.packed import pack_text, unpack_json, unpack_text
from peek.retrieval import pg_lexical
from peek.text import terms

TOKENIZE = "unicode61 remove_diacritics 0 tokenchars '_'"
#: the verb index is only matched by single terms (`verbs_matching`), never ranked: no stored
#: documents (each verb's is in `memory_nodes.doc`), positions or sizes
NODE_OPTIONS = "content = '', detail = none, columnsize = 0"
SELF_WEIGHT = 2


def turns_table(corpus_id: int) -> str:
    """The turn index of a corpus."""
    return f"memory_fts_{int(corpus_id)}"


def nodes_table(corpus_id: int) -> str:
    """The verb-node index of a corpus."""
    return f"memory_nodes_fts_{int(corpus_id)}"


def exists(conn: sqlite3.Connection, corpus_id: int) -> bool:
    """Whether the corpus's memory indexes were created."""
    if is_postgres(conn):
        return pg_lexical.exists(conn, nodes_table(corpus_id))
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?",
                       (nodes_table(corpus_id),)).fetchone()
    return row is not None


def create(conn: sqlite3.Connection, corpus_id: int) -> None:
    """Create both indexes and the vocabulary views of the turn index."""
    t, n = turns_table(corpus_id), nodes_table(corpus_id)
    if is_postgres(conn):
        pg_lexical.ensure_table(conn, t)
        pg_lexical.ensure_table(conn, n)
        return
    _create_turn_table(conn, t)
    _create_verb_table(conn, n)


def _create_turn_table(conn: sqlite3.Connection, table: str) -> None:
    """The SQLite turn index and its vocabulary views."""
    conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {table} USING fts5(body, content = '', "
                 f'tokenize = "{TOKENIZE}")')
    conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {table}_vi USING fts5vocab({table}, "
                 "instance)")
    conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {table}_vr USING fts5vocab({table}, row)")


def _create_verb_table(conn: sqlite3.Connection, table: str) -> None:
    conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {table} USING fts5(body, {NODE_OPTIONS}, "
                 f'tokenize = "{TOKENIZE}")')


def drop(conn: sqlite3.Connection, corpus_id: int) -> None:
    """Drop a corpus's memory indexes, so the next use rebuilds them from the stored rows."""
    t, n = turns_table(corpus_id), nodes_table(corpus_id)
    if is_postgres(conn):
        for table in (t, n):
            pg_lexical.drop_table(conn, table)
        return
    for table in (f"{t}_vi", f"{t}_vr", t, n):
        conn.execute(f"DROP TABLE IF EXISTS {table}")


def ensure_indexed(conn: sqlite3.Connection, corpus_id: int) -> None:
    """Create and fill the indexes of a corpus whose memory predates them (idempotent)."""
    if exists(conn, corpus_id):
        return
    create(conn, corpus_id)
    turns = _turns(conn, "corpus_id = ? ORDER BY seq", (corpus_id,))
    write_turn_docs(conn, corpus_id, turns, range(len(turns)))
    _index_every_verb(conn, corpus_id)


def _index_every_verb(conn: sqlite3.Connection, corpus_id: int) -> None:
    """Fill a new (empty) verb index with every stored verb of the corpus."""
    rows = conn.execute("SELECT id, data FROM memory_nodes WHERE corpus_id = ? "
                        "AND kind = 'verb'", (corpus_id,)).fetchall()
    refs = node_refs(conn, corpus_id, [r[0] for r in rows])
    index_verbs(conn, corpus_id, [(ref, _verb_data(r[1])) for ref, r in zip(refs, rows,
                                                                              strict=True)],
                fresh=True)


def _verb_data(data: str | bytes) -> dict[str, object]:
    """A stored verb's JSON: packed, or text while a migration before 0009 rebuilds indexes."""
    return dict(json.loads(data) if isinstance(data, str) else unpack_json(data))


def node_refs(conn: sqlite3.Connection, corpus_id: int, ids: list[str]) -> list[int | str]:
    """What indexes each stored node, in the order of `ids` (missing ones left out): its
    SQLite rowid, or on PostgreSQL its id."""
    if is_postgres(conn):
        found = {r[0] for r in conn.execute(
            "SELECT id FROM memory_nodes WHERE corpus_id = ? AND id IN "
            "(SELECT value FROM json_each(?))", (corpus_id, json.dumps(ids)))}
        return [i for i in ids if i in found]
    rowids = dict(conn.execute("SELECT id, rowid FROM memory_nodes WHERE corpus_id = ? AND id IN "
                               "(SELECT value FROM json_each(?))", (corpus_id, json.dumps(ids))))
    return [rowids[i] for i in ids if i in rowids]


@dataclass(frozen=True, slots=True)
class _Turn:
    """What a turn document is made of."""

    row_id: int
    seq: int
    session: str | None
    terms: str


def _turns(conn: sqlite3.Connection, where: str, params: tuple[object, ...]) -> list[_Turn]:
    """The turns `where` selects, with their stored terms."""
    rows = conn.execute(f"SELECT id, seq, session, body, turn_id FROM memory_turns WHERE {where}",
                        params)
    return [_Turn(r[0], r[1], r[2], turn_terms(r[3], r[4])) for r in rows]


def context_doc(turns: Sequence[_Turn], i: int) -> str:
    """A turn's document: its terms twice, then the previous and next turn of its session."""
    t = turns[i]
    parts = [t.terms] * SELF_WEIGHT
    if i > 0 and _adjacent(turns[i - 1], t):
        parts.append(turns[i - 1].terms)
    if i + 1 < len(turns) and _adjacent(t, turns[i + 1]):
        parts.append(turns[i + 1].terms)
    return " ".join(p for p in parts if p)


def _adjacent(a: _Turn, b: _Turn) -> bool:
    return b.seq == a.seq + 1 and a.session == b.session


def write_turn_docs(conn: sqlite3.Connection, corpus_id: int, turns: Sequence[_Turn],
                    positions: Iterable[int], replaced: Sequence[tuple[int, str]] = ()) -> None:
    """(Re)write the documents of turns[i] for i in positions (neighbours come from `turns`);
    `replaced` are the (rowid, document) pairs they replace, as they were indexed."""
    table = turns_table(corpus_id)
    wanted = list(positions)
    if is_postgres(conn):
        pg_lexical.delete_docs(conn, table, ids=[turns[i].row_id for i in wanted])
        pg_lexical.add_docs(conn, table, [(turns[i].row_id, None, [(context_doc(turns, i), "D")])
                                          for i in wanted], stemmed=False)
        return
    conn.executemany(f"INSERT INTO {table}({table}, rowid, body) VALUES ('delete', ?, ?)",
                     list(replaced))
    conn.executemany(f"INSERT INTO {table}(rowid, body) VALUES (?, ?)",
                     [(turns[i].row_id, context_doc(turns, i)) for i in wanted])


def index_new_turns(conn: sqlite3.Connection, corpus_id: int, first_seq: int) -> None:
    """Add the documents of the turns from `first_seq` on, and rewrite the turn before them."""
    if not exists(conn, corpus_id):
        ensure_indexed(conn, corpus_id)  # fills everything, the new turns included
        return
    turns = _turns(conn, "corpus_id = ? AND seq >= ? ORDER BY seq", (corpus_id, first_seq - 2))
    fresh = [i for i, t in enumerate(turns) if t.seq >= first_seq]
    before = [i for i, t in enumerate(turns) if t.seq == first_seq - 1]
    earlier = [t for t in turns if t.seq < first_seq]  # the previous turn was the last one
    replaced = [(earlier[i].row_id, context_doc(earlier, i)) for i in before]
    write_turn_docs(conn, corpus_id, turns, before + fresh, replaced)


def unindex_turns(conn: sqlite3.Connection, corpus_id: int, gone: Sequence[int],
                  seqs: Sequence[int]) -> bool:
    """Take forgotten turns (row ids `gone`, at `seqs`) out of the turn index and rewrite
    their session neighbours' documents without them; call it before the rows are deleted.
    False when SQLite's contentless index cannot delete them exactly (a forgotten turn's
    stored terms are damaged): then `rebuild_turn_index` once the rows are gone."""
    if not gone or not exists(conn, corpus_id):
        return True
    near = json.dumps(sorted({s + d for s in seqs for d in range(-2, 3)}))
    beside = {s + d for s in seqs for d in (-1, 1)} - set(seqs)
    where = "corpus_id = ? AND seq IN (SELECT value FROM json_each(?)) "
    if is_postgres(conn):
        pg_lexical.delete_docs(conn, turns_table(corpus_id), ids=list(gone))
        after = _turns(conn, where + "AND id NOT IN (SELECT value FROM json_each(?)) ORDER BY "
                       "seq", (corpus_id, near, json.dumps(list(gone))))
        write_turn_docs(conn, corpus_id, after,
                        [i for i, t in enumerate(after) if t.seq in beside])
        return True
    try:
        before = _turns(conn, where + "ORDER BY seq", (corpus_id, near))
    except StoreError:
        return False
    dropped = set(gone)
    replaced = [(t.row_id, context_doc(before, i)) for i, t in enumerate(before)
                if t.row_id in dropped or t.seq in beside]
    after = [t for t in before if t.row_id not in dropped]
    write_turn_docs(conn, corpus_id, after, [i for i, t in enumerate(after) if t.seq in beside],
                    replaced)
    return True


def rebuild_turn_index(conn: sqlite3.Connection, corpus_id: int) -> None:
    """Make a corpus's turn index anew from its stored turns."""
    table = turns_table(corpus_id)
    if is_postgres(conn):
        pg_lexical.drop_table(conn, table)
        pg_lexical.ensure_table(conn, table)
    else:
        for name in (f"{table}_vi", f"{table}_vr", table):
            conn.execute(f"DROP TABLE IF EXISTS {name}")
        _create_turn_table(conn, table)
    turns = _turns(conn, "corpus_id = ? ORDER BY seq", (corpus_id,))
    write_turn_docs(conn, corpus_id, turns, range(len(turns)))


def purge(conn: sqlite3.Connection, corpus_id: int) -> None:
    """Merge the SQLite indexes' segments, so that deleted documents' terms are gone from the
    file, not only masked by delete markers (PostgreSQL's rows are deleted as they are)."""
    if is_postgres(conn) or not exists(conn, corpus_id):
        return
    for table in (turns_table(corpus_id), nodes_table(corpus_id)):
        conn.execute(f"INSERT INTO {table}({table}) VALUES ('optimize')")


def unindex_verbs(conn: sqlite3.Connection, corpus_id: int, ids: list[str]) -> bool:
    """Take verbs about to be deleted out of the verb index (before their rows go); False
    when a saved document is damaged, so that `rebuild_verb_index` must follow."""
    if not ids or not exists(conn, corpus_id):
        return True
    table = nodes_table(corpus_id)
    if is_postgres(conn):
        pg_lexical.delete_docs(conn, table, keys=ids)
        return True
    stored = conn.execute("SELECT rowid, doc FROM memory_nodes WHERE corpus_id = ? AND id IN "
                          "(SELECT value FROM json_each(?)) AND doc IS NOT NULL",
                          (corpus_id, json.dumps(ids))).fetchall()
    try:
        old = [(r[0], unpack_text(r[1])) for r in stored]
    except StoreError:
        return False
    conn.executemany(f"INSERT INTO {table}({table}, rowid, body) VALUES ('delete', ?, ?)", old)
    return True


def verb_docs(conn: sqlite3.Connection, corpus_id: int,
              verbs: list[tuple[int | str, dict[str, object]]]) -> list[tuple[int | str, str]]:
    """(ref, document) of verbs: phrase, question texts, TEXT answers, answer node names."""
    refs = sorted({a for _, v in verbs for a in _answers(v) if not a.startswith("TEXT:")})
    names = _names(conn, corpus_id, refs)
    rows: list[tuple[int | str, str]] = []
    for rowid, verb in verbs:
        words = [str(verb.get("phrase", ""))]
        for q in _questions(verb):
            words.append(str(q.get("text", "")))
            words.extend(a.removeprefix("TEXT:") if a.startswith("TEXT:") else names.get(a, "")
                         for a in q.get("answers", []) if a != "None")
        rows.append((rowid, " ".join(terms(" ".join(words)))))
    return rows


def index_verbs(conn: sqlite3.Connection, corpus_id: int,
                verbs: list[tuple[int | str, dict[str, object]]], fresh: bool = False) -> None:
    """(Re)index verbs by `node_refs`, replacing their documents (`fresh`: the index is new
    and holds none). SQLite's index stores no documents: a verb's is kept in
    `memory_nodes.doc`, by which the contentless index deletes it, and only a changed one is
    rewritten."""
    if not verbs:
        return
    rows = list(dict(verb_docs(conn, corpus_id, verbs)).items())  # a verb once, as last given
    table = nodes_table(corpus_id)
    if is_postgres(conn):
        if not fresh:
            pg_lexical.delete_docs(conn, table, keys=[str(r) for r, _ in rows])
        pg_lexical.add_docs(conn, table, [(None, str(r), [(body, "D")]) for r, body in rows],
                            stemmed=False)
        return
    stored = [] if fresh else conn.execute(
        "SELECT rowid, doc FROM memory_nodes WHERE rowid IN (SELECT value FROM json_each(?)) "
        "AND doc IS NOT NULL", (json.dumps([r for r, _ in rows]),)).fetchall()
    try:
        old = {r[0]: unpack_text(r[1]) for r in stored}
    except StoreError:  # a damaged copy cannot delete its document: rebuild the whole index
        rebuild_verb_index(conn, corpus_id)
        return
    changed = [(r, body) for r, body in rows if old.get(r) != body]
    conn.executemany(f"INSERT INTO {table}({table}, rowid, body) VALUES ('delete', ?, ?)",
                     [(r, old[r]) for r, _ in changed if r in old])
    conn.executemany(f"INSERT INTO {table}(rowid, body) VALUES (?, ?)", changed)
    conn.executemany("UPDATE memory_nodes SET doc = ? WHERE rowid = ?",
                     [(pack_text(body), r) for r, body in changed])


def rebuild_verb_index(conn: sqlite3.Connection, corpus_id: int) -> None:
    """Make a corpus's SQLite verb index anew from its stored verbs (after their saved
    documents were damaged: the index and documents are derived, so nothing is lost)."""
    table = nodes_table(corpus_id)
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    _create_verb_table(conn, table)
    _index_every_verb(conn, corpus_id)


def _questions(verb: dict[str, object]) -> list[dict[str, list[str]]]:
    questions = verb.get("questions", [])
    return questions if isinstance(questions, list) else []


def _answers(verb: dict[str, object]) -> list[str]:
    return [a for q in _questions(verb) for a in q.get("answers", []) if a != "None"]


def _names(conn: sqlite3.Connection, corpus_id: int, ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = conn.execute("SELECT id, name FROM memory_nodes WHERE corpus_id = ? AND id IN "
                        "(SELECT value FROM json_each(?))", (corpus_id, json.dumps(ids)))
    return {r[0]: r[1] for r in rows}


# --- statistics the BM25 of `search.py` needs ------------------------------------------------


def _varint(blob: bytes, pos: int) -> tuple[int, int]:
    """One SQLite varint (big-endian 7-bit groups; a ninth byte carries 8 bits)."""
    value = 0
    for k in range(9):
        byte = blob[pos + k]
        if k == 8:
            return (value << 8) | byte, pos + 9
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos + k + 1
    raise ValueError("bad varint")  # pragma: no cover - the loop always returns


def totals(conn: sqlite3.Connection, corpus_id: int) -> tuple[int, int]:
    """(documents, tokens) of the turn index, from FTS5's own totals record (the one bm25()
    uses), so no document is read."""
    if is_postgres(conn):
        return pg_lexical.totals(conn, turns_table(corpus_id))
    row = conn.execute(f"SELECT block FROM {turns_table(corpus_id)}_data WHERE id = 1").fetchone()
    if row is None or not row[0]:
        return 0, 0
    n, pos = _varint(row[0], 0)
    tokens, _ = _varint(row[0], pos) if pos < len(row[0]) else (0, pos)
    return n, tokens


def doc_lengths(conn: sqlite3.Connection, corpus_id: int, rowids: list[int]) -> dict[int, int]:
    """Tokens per document, from FTS5's docsize records."""
    if is_postgres(conn):
        return pg_lexical.lengths(conn, turns_table(corpus_id), rowids)
    rows = conn.execute(f"SELECT id, sz FROM {turns_table(corpus_id)}_docsize WHERE id IN "
                        "(SELECT value FROM json_each(?))", (json.dumps(rowids),))
    return {r[0]: _varint(r[1], 0)[0] for r in rows}


def term_postings(conn: sqlite3.Connection, corpus_id: int, term: str) -> list[tuple[int, int]]:
    """(document, occurrences) of one term in the turn index."""
    if is_postgres(conn):
        return pg_lexical.postings(conn, turns_table(corpus_id), term)
    rows = conn.execute(f"SELECT doc, COUNT(*) FROM {turns_table(corpus_id)}_vi WHERE term = ? "
                        "GROUP BY doc", (term,))
    return [(int(r[0]), int(r[1])) for r in rows]


def doc_frequencies(conn: sqlite3.Connection, corpus_id: int,
                    words: Iterable[str]) -> dict[str, int]:
    """Documents holding each term."""
    wanted = sorted(set(words))
    if not wanted:
        return {}
    if is_postgres(conn):
        return pg_lexical.document_frequencies(conn, turns_table(corpus_id), wanted)[2]
    rows = conn.execute(f"SELECT term, doc FROM {turns_table(corpus_id)}_vr WHERE term IN "
                        "(SELECT value FROM json_each(?))", (json.dumps(wanted),))
    found = {r[0]: int(r[1]) for r in rows}
    return {w: found.get(w, 0) for w in wanted}


def match_query(words: Iterable[str], op: str = "OR") -> str:
    """An FTS5 expression over quoted terms."""
    return f" {op} ".join('"' + w.replace('"', '""') + '"' for w in dict.fromkeys(words))


def holds_all(conn: sqlite3.Connection, corpus_id: int, words: list[str]) -> bool:
    """Whether one turn document holds every word."""
    if is_postgres(conn):
        return pg_lexical.holds_all(conn, turns_table(corpus_id), words)
    table = turns_table(corpus_id)
    row = conn.execute(f"SELECT 1 FROM {table} WHERE {table} MATCH ? LIMIT 1",
                       (match_query(words, "AND"),)).fetchone()
    return row is not None


def verbs_matching(conn: sqlite3.Connection, corpus_id: int, words: list[str]) -> str:
    """SQL for `n.id IN (...)`-style filters: the ids (SQLite: rowids) of verbs holding any
    word; its one parameter is `verb_match_param(words)`."""
    table = nodes_table(corpus_id)
    if is_postgres(conn):
        return f"n.id IN (SELECT key FROM {table} WHERE tsv @@ CAST(? AS TSQUERY))"
    return f"n.rowid IN (SELECT rowid FROM {table} WHERE {table} MATCH ?)"


def verb_match_param(conn: sqlite3.Connection, words: list[str]) -> str:
    """The parameter of `verbs_matching`."""
    return pg_lexical.tsquery(words) if is_postgres(conn) else match_query(words)
