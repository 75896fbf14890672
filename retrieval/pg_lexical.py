"""Code search on PostgreSQL: the same field-weighted BM25 as SQLite FTS5, over a GIN index.

peek tokenizes (as FTS5's `porter unicode61 tokenchars '_'` does: word runs with `_` kept,
lower-cased, Porter-stemmed) and writes each chunk as one weighted `tsvector`: symbol words
weight A, path words B, body words D, with the chunk's token count beside it. A query finds
its candidates through the GIN index (`tsv @@ 'a' | 'b'`), then scores them with FTS5's own
BM25 (k1 1.2, b 0.75, idf log((N - n + .5) / (n + .5)) floored at 1e-6, per-field weights
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

K1 = 1.2
B = 0.75
MAX_POSITION = 16383  # PostgreSQL's largest tsvector position
MAX_LEXEME_BYTES = 2000  # PostgreSQL refuses lexemes over 2046 bytes
MAX_LEXEME_BYTES_TOTAL = 600_000  # and tsvectors over 1 MB; later new words are left out
_WORD = re.compile(r"[^\W]+")
#: field -> tsvector weight letter, in the order FTS5 stores the columns
FIELDS = (("path", "B"), ("symbol", "A"), ("body", "D"))


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import snowballstemmer

    return snowballstemmer.stemmer("porter")


@lru_cache(maxsize=200_000)
def stem(token: str) -> str:
    """One lower-cased token as FTS5's porter tokenizer leaves it (short/long ones unstemmed)."""
    if not 3 <= len(token) <= 64 or not token.isascii() or not token.isalpha():
        return token
    return str(_stemmer().stemWord(token))


def tokens(text: str, stemmed: bool = True) -> list[str]:
    """The tokens of a field, in order (Porter-stemmed, as the code index's; memory's are not)."""
    words = _WORD.findall(text.lower())
    return [stem(t) for t in words] if stemmed else words


def tsvector_literal(fields: Sequence[tuple[str, str]],
                     stemmed: bool = True) -> tuple[str, int]:
    """A tsvector in PostgreSQL's text form from (text, weight) fields, and the token count."""
    positions: dict[str, list[str]] = {}
    n = size = 0
    for text, weight in fields:
        for token in tokens(text, stemmed):
            n += 1  # counted even when not stored: the length is FTS5's
            lexeme = _fit(token)
            if lexeme not in positions:
                size += len(lexeme) + 8
                if size > MAX_LEXEME_BYTES_TOTAL:
                    continue
            positions.setdefault(lexeme, []).append(f"{min(n, MAX_POSITION)}{weight}")
    parts = [_quote(lexeme) + ":" + ",".join(pos[:256]) for lexeme, pos in positions.items()]
    return " ".join(parts), n


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


# --- one index table: documents keyed by a row id or a text key ------------------------------


def ensure_table(conn: Any, name: str) -> None:
    """Create an index table and its GIN index (idempotent); `key` serves text-keyed rows."""
    conn.execute(f"CREATE TABLE IF NOT EXISTS {name} (id BIGINT, key TEXT, "
                 "tsv TSVECTOR NOT NULL, len INTEGER NOT NULL)")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {name}_gin ON {name} USING GIN (tsv)")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {name}_id ON {name} (id)")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {name}_key ON {name} (key)")


def exists(conn: Any, name: str) -> bool:
    """Whether a table exists in the current schema."""
    row = conn.execute("SELECT to_regclass(?) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])


Doc = tuple[int | None, str | None, Sequence[tuple[str, str]]]


def add_docs(conn: Any, name: str, docs: Iterable[Doc], stemmed: bool = True) -> None:
    """Index documents: (row id, text key, [(field text, weight letter)])."""
    values = []
    for row_id, key, fields in docs:
        literal, n = tsvector_literal(fields, stemmed)
        values.append((row_id, key, literal, n))
    conn.executemany(f"INSERT INTO {name} (id, key, tsv, len) "
                     "VALUES (?, ?, CAST(? AS TSVECTOR), ?)", values)


def delete_docs(conn: Any, name: str, ids: Sequence[int] = (), keys: Sequence[str] = ()) -> None:
    """Drop documents by row id and/or key."""
    if ids:
        conn.execute(f"DELETE FROM {name} WHERE id = ANY(?)", (list(ids),))
    if keys:
        conn.execute(f"DELETE FROM {name} WHERE key = ANY(?)", (list(keys),))


def document_frequencies(conn: Any, name: str, lexemes: Sequence[str]) -> tuple[int, float,
                                                                              dict[str, int]]:
    """(documents, average length, {lexeme: documents holding it}) of an index table."""
    total, avg = conn.execute(f"SELECT COUNT(*), COALESCE(AVG(len), 0) FROM {name}").fetchone()
    df = {}
    for lexeme in dict.fromkeys(lexemes):
        row = conn.execute(f"SELECT COUNT(*) FROM {name} WHERE tsv @@ CAST(? AS TSQUERY)",
                           (_quote(lexeme),)).fetchone()
        df[lexeme] = int(row[0])
    return int(total), float(avg), df


def idf(total: int, hits: int) -> float:
    """FTS5's BM25 idf."""
    value = math.log((total - hits + 0.5) / (hits + 0.5))
    return value if value > 0 else 1e-6


def lexemes_of(terms: Iterable[str], stemmed: bool = True) -> list[str]:
    """Query terms as the index stores them (one per term: a repeated one counts again)."""
    return [stem(t) if stemmed else t for term in terms for t in _WORD.findall(term.lower())]


def match(conn: Any, name: str, terms: Sequence[str], limit: int,
          weights: dict[str, float] | None = None,
          stemmed: bool = True) -> list[tuple[int | None, str | None, float]]:
    """(row id, key, BM25) of the best documents holding any term, best first (FTS5's bm25)."""
    lexemes = lexemes_of(terms, stemmed)
    total, avg, df = document_frequencies(conn, name, lexemes)
    if not total or not lexemes:
        return []
    w = {"A": 1.0, "B": 1.0, "C": 1.0, "D": 1.0, **(weights or {})}
    rows = conn.execute(_MATCH.format(table=name), {
        "lx": lexemes, "idf": [idf(total, df[lx]) for lx in lexemes], "q": tsquery(lexemes),
        "wa": w["A"], "wb": w["B"], "wc": w["C"], "wd": w["D"], "avg": max(avg, 1e-9),
        "k1": K1, "b": B, "k": limit})
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
    """Create the corpus's chunk index table (idempotent)."""
    ensure_table(conn, table(corpus_id))


def delete(conn: Any, corpus_id: int, file_ids: list[int]) -> None:
    """Remove the rows of these files' chunks (before the chunks go)."""
    if file_ids:
        conn.execute(f"DELETE FROM {table(corpus_id)} WHERE id IN (SELECT id FROM chunks "
                     "WHERE file_id = ANY(?))", (list(file_ids),))


def insert(conn: Any, corpus_id: int, rows: list[dict[str, object]]) -> None:
    """Add rows keyed by chunk id, from the same fields FTS5 gets."""
    add_docs(conn, table(corpus_id), ((int(str(row["rowid"])), None,
                                       [(str(row[f] or ""), w) for f, w in FIELDS])
                                      for row in rows))


# --- what memory's BM25 reads (SQLite: fts5vocab and the FTS5 shadow tables) -----------------


def totals(conn: Any, name: str) -> tuple[int, int]:
    """(documents, tokens) of an index table."""
    n, tokens = conn.execute(f"SELECT COUNT(*), COALESCE(SUM(len), 0) FROM {name}").fetchone()
    return int(n), int(tokens)


def lengths(conn: Any, name: str, ids: Sequence[int]) -> dict[int, int]:
    """Tokens per document."""
    rows = conn.execute(f"SELECT id, len FROM {name} WHERE id = ANY(?)", (list(ids),))
    return {int(r[0]): int(r[1]) for r in rows}


def postings(conn: Any, name: str, lexeme: str) -> list[tuple[int, int]]:
    """(row id, occurrences) of one lexeme."""
    rows = conn.execute(f"SELECT t.id, cardinality(u.positions) FROM {name} t, unnest(t.tsv) u "
                        "WHERE t.tsv @@ CAST(? AS TSQUERY) AND u.lexeme = ?",
                        (_quote(lexeme), lexeme))
    return [(int(r[0]), int(r[1])) for r in rows]


def holds_all(conn: Any, name: str, words: Iterable[str]) -> bool:
    """Whether some document holds every word."""
    query = " & ".join(_quote(w) for w in dict.fromkeys(words)) or "''"
    row = conn.execute(f"SELECT 1 FROM {name} WHERE tsv @@ CAST(? AS TSQUERY) LIMIT 1",
                       (query,)).fetchone()
    return row is not None


# One row per query term (a repeated stem counts twice, as FTS5 scores each phrase), joined to
# the lexemes of the candidate documents; tf is the weight-summed count of a lexeme's positions.
_MATCH = """
WITH q AS (SELECT * FROM unnest(CAST(:lx AS TEXT[]), CAST(:idf AS FLOAT8[])) AS q(lexeme, idf)),
cand AS (SELECT ctid AS row, id, key, tsv, len FROM {table}
         WHERE tsv @@ CAST(:q AS TSQUERY)),
tf AS (
  SELECT cand.row, cand.len, u.lexeme,
         (SELECT SUM(CASE w WHEN 'A' THEN :wa WHEN 'B' THEN :wb WHEN 'C' THEN :wc ELSE :wd END)
          FROM unnest(u.weights) AS w) AS tf
  FROM cand, unnest(cand.tsv) AS u
  WHERE u.lexeme = ANY(CAST(:lx AS TEXT[]))
),
scored AS (
  SELECT tf.row, SUM(q.idf * tf.tf * (:k1 + 1)
                     / (tf.tf + :k1 * (1 - :b + :b * tf.len / :avg))) AS score
  FROM tf JOIN q ON q.lexeme = tf.lexeme GROUP BY tf.row
)
SELECT cand.id, cand.key, s.score FROM scored s JOIN cand ON cand.row = s.row
ORDER BY s.score DESC, cand.id LIMIT :k
"""
