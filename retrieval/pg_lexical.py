"""Code search on PostgreSQL: the same field-weighted BM25 as SQLite FTS5, over a GIN index.

peek tokenizes (as FTS5's `porter unicode61 tokenchars '_'` does: word runs with `_` kept,
lower-cased, Porter-stemmed) and writes each chunk as one weighted `tsvector`: symbol words
weight A, path words B, body words D, with the chunk's token count beside it, and a GIN index
over the vectors. Scoring needs each query term's frequency per field in each matching chunk,
which unnesting thousands of tsvectors per query is far too slow to give (seconds on astropy),
so each table has a postings companion (`<table>_terms`: lexeme, document, occurrences per
field, document length; a B-tree on lexeme) kept in step with it, and one `fts_stats` row per
table (documents, tokens). A query reads the postings of its terms and scores them with FTS5's
own BM25 (k1 1.2, b 0.75, idf log((N - n + .5) / (n + .5)) floored at 1e-6, per-field weights
multiplying term frequency), so the two backends rank alike and one index serves a team.

Tables are per corpus (`chunks_fts_<id>`), as on SQLite, so statistics describe one corpus.
The same table shape (row id or text key, tsvector, length) serves the other full-text indexes
peek keeps (past requests, file profiles, memory's turns and verbs): `match` is their BM25.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from peek.text import stem

K1 = 1.2
B = 0.75
MAX_POSITION = 16383  # PostgreSQL's largest tsvector position
MAX_LEXEME_BYTES = 2000  # PostgreSQL refuses lexemes over 2046 bytes
MAX_LEXEME_BYTES_TOTAL = 600_000  # and tsvectors over 1 MB; later new words are left out
_WORD = re.compile(r"[^\W]+")
#: field -> tsvector weight letter, in the order FTS5 stores the columns
FIELDS = (("path", "B"), ("symbol", "A"), ("body", "D"))


@lru_cache(maxsize=200_000)
def term(token: str) -> str:
    """A lower-cased token as FTS5's `porter unicode61` tokenizer indexes it: Latin letters
    without their diacritics (`héllo` -> `hello`), then Porter's stem (`text.stem`)."""
    return stem(fold_diacritics(token))


def fold_diacritics(token: str) -> str:
    """Latin letters without their diacritics, as unicode61's remove_diacritics does (other
    scripts keep theirs)."""
    if token.isascii():
        return token
    import unicodedata

    kept, latin = [], False
    for char in unicodedata.normalize("NFD", token):
        if not unicodedata.combining(char):
            latin = unicodedata.name(char, "").startswith("LATIN")
        elif latin:
            continue
        kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept))


def fts5_stems(words: Iterable[str]) -> dict[str, str]:
    """The stem SQLite's FTS5 (`porter unicode61 tokenchars '_'`) gives each word that it keeps
    as one token: what `stem` must match, for the tests and benchmarks that check it."""
    import sqlite3
    from contextlib import closing

    ordered = sorted(set(words))
    with closing(sqlite3.connect(":memory:")) as conn:
        conn.execute("CREATE VIRTUAL TABLE v USING fts5(x, tokenize = \"porter unicode61 "
                     "tokenchars '_'\")")
        conn.executemany("INSERT INTO v (rowid, x) VALUES (?, ?)", enumerate(ordered, 1))
        conn.execute("CREATE VIRTUAL TABLE terms USING fts5vocab(v, 'instance')")
        found: dict[int, list[str]] = {}
        for lexeme, doc in conn.execute("SELECT term, doc FROM terms"):
            found.setdefault(doc, []).append(lexeme)
    return {ordered[doc - 1]: got[0] for doc, got in found.items() if len(got) == 1}


def tokens(text: str, stemmed: bool = True) -> list[str]:
    """The tokens of a field, in order (Porter-stemmed, as the code index's; memory's are not)."""
    words = _WORD.findall(text.lower())
    return [term(t) for t in words] if stemmed else words


Analysed = tuple[dict[str, list[tuple[int, str]]], int]


def analyse(fields: Sequence[tuple[str, str]], stemmed: bool = True) -> Analysed:
    """Each lexeme's (position, weight) occurrences over (text, weight) fields, and the token
    count (every token, as FTS5 counts them)."""
    occurrences: dict[str, list[tuple[int, str]]] = {}
    n = 0
    for text, weight in fields:
        for token in tokens(text, stemmed):
            n += 1
            occurrences.setdefault(_fit(token), []).append((n, weight))
    return occurrences, n


def tsvector_literal(fields: Sequence[tuple[str, str]],
                     stemmed: bool = True) -> tuple[str, int]:
    """A tsvector in PostgreSQL's text form from (text, weight) fields, and the token count."""
    occurrences, n = analyse(fields, stemmed)
    return _literal(occurrences), n


def _literal(occurrences: dict[str, list[tuple[int, str]]]) -> str:
    """PostgreSQL's limits: 256 positions a lexeme, under 1 MB (later new words left out)."""
    parts, size = [], 0
    for lexeme, where in occurrences.items():
        size += len(lexeme) + 8
        if size > MAX_LEXEME_BYTES_TOTAL:
            break
        parts.append(_quote(lexeme) + ":" + ",".join(f"{min(p, MAX_POSITION)}{w}"
                                                      for p, w in where[:256]))
    return " ".join(parts)


def _fit(token: str) -> str:
    """A token cut to PostgreSQL's longest lexeme (2046 bytes; FTS5 has no limit)."""
    if len(token) * 4 <= MAX_LEXEME_BYTES:
        return token
    return token.encode()[:MAX_LEXEME_BYTES].decode(errors="ignore")


def _quote(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def tsquery(terms: Iterable[str]) -> str:
    """An OR of quoted lexemes (quoting keeps tsquery syntax out of queries)."""
    return " | ".join(_quote(t) for t in dict.fromkeys(terms)) or "''"


def table(corpus_id: int) -> str:
    """The corpus's chunk index table (same name as the SQLite FTS5 table)."""
    return f"chunks_fts_{int(corpus_id)}"


# --- one index: documents keyed by a row id or a text key, with their postings ----------------


def ensure_table(conn: Any, name: str) -> None:
    """Create an index table, its postings and stats row (idempotent; under the write lock)."""
    conn.execute(f"CREATE TABLE IF NOT EXISTS {name} (id BIGINT, key TEXT, "
                 "tsv TSVECTOR NOT NULL, len INTEGER NOT NULL)")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {name}_gin ON {name} USING GIN (tsv)")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {name}_id ON {name} (id)")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {name}_key ON {name} (key)")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {name}_terms (lexeme TEXT NOT NULL, id BIGINT, "
                 "key TEXT, na INTEGER NOT NULL, nb INTEGER NOT NULL, nd INTEGER NOT NULL, "
                 "len INTEGER NOT NULL)")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {name}_terms_lexeme ON {name}_terms (lexeme) "
                 "INCLUDE (id, key, na, nb, nd, len)")  # index-only scans once vacuumed
    conn.execute(f"CREATE INDEX IF NOT EXISTS {name}_terms_id ON {name}_terms (id)")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {name}_terms_key ON {name}_terms (key)")
    conn.execute("CREATE TABLE IF NOT EXISTS fts_stats (name TEXT PRIMARY KEY, "
                 "docs BIGINT NOT NULL, tokens BIGINT NOT NULL)")
    conn.execute("INSERT INTO fts_stats (name, docs, tokens) VALUES (?, 0, 0) "
                 "ON CONFLICT (name) DO NOTHING", (name,))


def tables(name: str) -> list[str]:
    """An index's tables: to VACUUM (ANALYZE) after a bulk write, since postings of one lexeme
    lie on many pages and only all-visible pages let a query read the covering index alone."""
    return [name, f"{name}_terms"]


def drop_table(conn: Any, name: str) -> None:
    """Drop an index table, its postings and its stats row (to rebuild it from stored rows)."""
    for table in reversed(tables(name)):
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    if exists(conn, "fts_stats"):
        conn.execute("DELETE FROM fts_stats WHERE name = ?", (name,))


def exists(conn: Any, name: str) -> bool:
    """Whether a table exists in the current schema."""
    row = conn.execute("SELECT to_regclass(?) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])


Doc = tuple[int | None, str | None, Sequence[tuple[str, str]]]


def add_docs(conn: Any, name: str, docs: Iterable[Doc], stemmed: bool = True) -> None:
    """Index documents: (row id, text key, [(field text, weight letter)]), by COPY."""
    documents: list[tuple[object, ...]] = []
    postings_rows: list[tuple[object, ...]] = []
    tokens_total = 0
    for row_id, key, fields in docs:
        occurrences, n = analyse(fields, stemmed)
        documents.append((row_id, key, _literal(occurrences), n))
        for lexeme, where in occurrences.items():
            a = sum(w == "A" for _, w in where)
            b = sum(w == "B" for _, w in where)
            postings_rows.append((lexeme, row_id, key, a, b, len(where) - a - b, n))
        tokens_total += n
    for target, rows in ((f"{name} (id, key, tsv, len)", documents),
                         (f"{name}_terms (lexeme, id, key, na, nb, nd, len)", postings_rows)):
        with conn.raw.cursor() as cur, cur.copy(f"COPY {target} FROM STDIN") as copy:
            for row in rows:  # one COPY at a time: a connection runs one
                copy.write_row(row)
    _count(conn, name, len(documents), tokens_total)


def _count(conn: Any, name: str, docs: int, tokens_total: int) -> None:
    if docs:
        conn.execute("UPDATE fts_stats SET docs = docs + ?, tokens = tokens + ? WHERE name = ?",
                     (docs, tokens_total, name))


def delete_docs(conn: Any, name: str, ids: Sequence[int] = (), keys: Sequence[str] = ()) -> None:
    """Drop documents (and their postings) by row id and/or key."""
    for column, values in (("id", list(ids)), ("key", list(keys))):
        if values:
            gone = conn.execute(f"DELETE FROM {name} WHERE {column} = ANY(?) RETURNING len",
                                (values,)).fetchall()
            conn.execute(f"DELETE FROM {name}_terms WHERE {column} = ANY(?)", (values,))
            _count(conn, name, -len(gone), -sum(int(r[0]) for r in gone))


def stats(conn: Any, name: str) -> tuple[int, int]:
    """(documents, tokens) of an index."""
    row = conn.execute("SELECT docs, tokens FROM fts_stats WHERE name = ?", (name,)).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def document_frequencies(conn: Any, name: str, lexemes: Sequence[str]) -> tuple[int, float,
                                                                              dict[str, int]]:
    """(documents, average length, {lexeme: documents holding it}) of an index."""
    total, tokens_total = stats(conn, name)
    wanted = list(dict.fromkeys(lexemes))
    df = dict.fromkeys(wanted, 0)
    if wanted:
        df.update((str(r[0]), int(r[1])) for r in conn.execute(
            f"SELECT lexeme, COUNT(*) FROM {name}_terms WHERE lexeme = ANY(?) GROUP BY lexeme",
            (wanted,)))
    return total, tokens_total / total if total else 0.0, df


def idf(total: int, hits: int) -> float:
    """FTS5's BM25 idf."""
    value = math.log((total - hits + 0.5) / (hits + 0.5))
    return value if value > 0 else 1e-6


def lexemes_of(terms: Iterable[str], stemmed: bool = True) -> list[str]:
    """Query terms as the index stores them (one per term: a repeated one counts again)."""
    return [term(t) if stemmed else t for text in terms for t in _WORD.findall(text.lower())]


def match(conn: Any, name: str, terms: Sequence[str], limit: int,
          weights: dict[str, float] | None = None,
          stemmed: bool = True) -> list[tuple[int | None, str | None, float]]:
    """(row id, key, BM25) of the best documents holding any term, best first (FTS5's bm25)."""
    lexemes = lexemes_of(terms, stemmed)
    total, avg, df = document_frequencies(conn, name, lexemes)
    if not total or not lexemes:
        return []
    w = {"A": 1.0, "B": 1.0, "D": 1.0, **(weights or {})}
    rows = conn.execute(_MATCH.format(table=name), {
        "lx": lexemes, "idf": [idf(total, df[lx]) for lx in lexemes], "wa": w["A"],
        "wb": w["B"], "wd": w["D"], "avg": max(avg, 1e-9), "k1": K1, "b": B, "k": limit})
    return [(r[0], r[1], float(r[2])) for r in rows]


def search(conn: Any, corpus_id: int, terms: list[str], weights: tuple[float, float, float],
           limit: int) -> list[tuple[Any, ...]]:
    """Rows as SQLite's search returns them: path, lines, symbol, chunk id, kind, -BM25."""
    wp, ws, wb = weights
    found = match(conn, table(corpus_id), terms, limit, {"A": ws, "B": wp, "D": wb})
    if not found:
        return []
    score = {int(i): s for i, _, s in found if i is not None}
    rows = conn.execute("SELECT f.path, c.start_line, c.end_line, c.symbol, c.id, c.kind "
                        "FROM chunks c JOIN files f ON f.id = c.file_id WHERE c.id = ANY(?)",
                        (list(score),))
    out = [(*r, -score[int(r[4])]) for r in rows]
    out.sort(key=lambda r: r[6])
    return out


def ensure(conn: Any, corpus_id: int) -> None:
    """Create the corpus's chunk index (idempotent)."""
    ensure_table(conn, table(corpus_id))


def delete(conn: Any, corpus_id: int, file_ids: list[int]) -> None:
    """Remove the documents of these files' chunks (before the chunks go)."""
    if file_ids:
        ids = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE file_id = ANY(?)",
                                          (list(file_ids),))]
        delete_docs(conn, table(corpus_id), ids=ids)


def insert(conn: Any, corpus_id: int, rows: list[dict[str, object]]) -> None:
    """Add documents keyed by chunk id, from the same fields FTS5 gets."""
    add_docs(conn, table(corpus_id), ((int(str(row["rowid"])), None,
                                       [(str(row[f] or ""), w) for f, w in FIELDS])
                                      for row in rows))


# --- what memory's BM25 reads (SQLite: fts5vocab and the FTS5 shadow tables) -----------------


def totals(conn: Any, name: str) -> tuple[int, int]:
    """(documents, tokens) of an index."""
    return stats(conn, name)


def lengths(conn: Any, name: str, ids: Sequence[int]) -> dict[int, int]:
    """Tokens per document."""
    rows = conn.execute(f"SELECT id, len FROM {name} WHERE id = ANY(?)", (list(ids),))
    return {int(r[0]): int(r[1]) for r in rows}


def postings(conn: Any, name: str, lexeme: str) -> list[tuple[int, int]]:
    """(row id, occurrences) of one lexeme."""
    rows = conn.execute(f"SELECT id, na + nb + nd FROM {name}_terms WHERE lexeme = ?",
                        (lexeme,))
    return [(int(r[0]), int(r[1])) for r in rows]


def holds_all(conn: Any, name: str, words: Iterable[str]) -> bool:
    """Whether some document holds every word (through the GIN index)."""
    query = " & ".join(_quote(w) for w in dict.fromkeys(words)) or "''"
    row = conn.execute(f"SELECT 1 FROM {name} WHERE tsv @@ CAST(? AS TSQUERY) LIMIT 1",
                       (query,)).fetchone()
    return row is not None


# One row per query term (a repeated stem counts twice, as FTS5 scores each phrase) joined to
# its postings; tf is the weight-summed count of the lexeme's occurrences in the document.
_MATCH = """
WITH q AS (SELECT * FROM unnest(CAST(:lx AS TEXT[]), CAST(:idf AS FLOAT8[])) AS q(lexeme, idf)),
tf AS (
  SELECT t.id, t.key, q.idf, t.na * :wa + t.nb * :wb + t.nd * :wd AS tf, t.len
  FROM q JOIN {table}_terms t ON t.lexeme = q.lexeme
)
SELECT id, key, SUM(idf * tf * (:k1 + 1) / (tf + :k1 * (1 - :b + :b * len / :avg))) AS score
FROM tf GROUP BY id, key ORDER BY score DESC, id LIMIT :k
"""
