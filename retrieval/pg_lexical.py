"""Code search on PostgreSQL: the same field-weighted BM25 as SQLite FTS5, over a GIN index.

peek tokenizes (as FTS5's `porter unicode61 tokenchars '_'` does: word runs with `_` kept,
lower-cased, Porter-stemmed) and writes each chunk as one weighted `tsvector`: symbol words
weight A, path words B, body words D, with the chunk's token count beside it. A query finds
its candidates through the GIN index (`tsv @@ 'a' | 'b'`), then scores them with FTS5's own
BM25 (k1 1.2, b 0.75, idf log((N - n + .5) / (n + .5)) floored at 1e-6, per-field weights
multiplying term frequency), so the two backends rank alike and one index serves a team.

Tables are per corpus (`chunks_fts_<id>`), as on SQLite, so statistics describe one corpus.
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


def tokens(text: str) -> list[str]:
    """The stemmed tokens of a field, in order."""
    return [stem(t) for t in _WORD.findall(text.lower())]


def tsvector_literal(fields: Sequence[tuple[str, str]]) -> tuple[str, int]:
    """A tsvector in PostgreSQL's text form from (text, weight) fields, and the token count."""
    positions: dict[str, list[str]] = {}
    n = 0
    for text, weight in fields:
        for token in tokens(text):
            n += 1
            positions.setdefault(token, []).append(f"{min(n, MAX_POSITION)}{weight}")
    parts = [_quote(lexeme) + ":" + ",".join(pos[:256]) for lexeme, pos in positions.items()]
    return " ".join(parts), n


def _quote(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def tsquery(terms: Iterable[str]) -> str:
    """An OR of quoted lexemes (quoting keeps tsquery syntax out of queries)."""
    return " | ".join(_quote(t) for t in dict.fromkeys(terms)) or "''"


def table(corpus_id: int) -> str:
    """The corpus's chunk index table (same name as the SQLite FTS5 table)."""
    return f"chunks_fts_{int(corpus_id)}"


def ensure(conn: Any, corpus_id: int) -> None:
    """Create the corpus's index table and its GIN index (idempotent)."""
    name = table(corpus_id)
    conn.execute(f"CREATE TABLE IF NOT EXISTS {name} (id BIGINT PRIMARY KEY, "
                 "tsv TSVECTOR NOT NULL, len INTEGER NOT NULL)")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {name}_gin ON {name} USING GIN (tsv)")


def exists(conn: Any, name: str) -> bool:
    """Whether a table exists in the current schema."""
    row = conn.execute("SELECT to_regclass(?) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])


def delete(conn: Any, corpus_id: int, file_ids: list[int]) -> None:
    """Remove the rows of these files' chunks (before the chunks go)."""
    if file_ids:
        conn.execute(f"DELETE FROM {table(corpus_id)} WHERE id IN (SELECT id FROM chunks "
                     "WHERE file_id = ANY(?))", (list(file_ids),))


def insert(conn: Any, corpus_id: int, rows: list[dict[str, object]]) -> None:
    """Add rows keyed by chunk id, from the same fields FTS5 gets."""
    values = []
    for row in rows:
        literal, n = tsvector_literal([(str(row[f] or ""), w) for f, w in FIELDS])
        values.append((row["rowid"], literal, n))
    conn.executemany(f"INSERT INTO {table(corpus_id)} (id, tsv, len) "
                     "VALUES (?, CAST(? AS TSVECTOR), ?)", values)


def document_frequencies(conn: Any, corpus_id: int, lexemes: list[str]) -> tuple[int, float,
                                                                                dict[str, int]]:
    """(documents, average length, {lexeme: documents holding it}) of the corpus's index."""
    name = table(corpus_id)
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


def search(conn: Any, corpus_id: int, terms: list[str], weights: tuple[float, float, float],
           limit: int) -> list[tuple[Any, ...]]:
    """Rows as SQLite's search returns them: path, lines, symbol, chunk id, kind, -BM25."""
    lexemes = [stem(t) for t in terms]
    total, avg, df = document_frequencies(conn, corpus_id, lexemes)
    if not total:
        return []
    wp, ws, wb = weights
    idfs = [idf(total, df[lx]) for lx in lexemes]
    return list(conn.execute(_SEARCH.format(table=table(corpus_id)), {
        "lx": lexemes, "idf": idfs, "q": tsquery(lexemes), "wa": ws, "wb": wp, "wd": wb,
        "avg": max(avg, 1e-9), "k1": K1, "b": B, "k": limit}))


# One row per query term (a repeated stem counts twice, as FTS5 scores each phrase), joined to
# the lexemes of the candidate chunks; tf is the weight-summed count of a lexeme's positions.
_SEARCH = """
WITH q AS (SELECT * FROM unnest(CAST(:lx AS TEXT[]), CAST(:idf AS FLOAT8[])) AS q(lexeme, idf)),
cand AS (SELECT id, tsv, len FROM {table} WHERE tsv @@ CAST(:q AS TSQUERY)),
tf AS (
  SELECT cand.id, cand.len, u.lexeme,
         (SELECT SUM(CASE w WHEN 'A' THEN :wa WHEN 'B' THEN :wb ELSE :wd END)
          FROM unnest(u.weights) AS w) AS tf
  FROM cand, unnest(cand.tsv) AS u
  WHERE u.lexeme = ANY(CAST(:lx AS TEXT[]))
),
scored AS (
  SELECT tf.id, SUM(q.idf * tf.tf * (:k1 + 1)
                    / (tf.tf + :k1 * (1 - :b + :b * tf.len / :avg))) AS score
  FROM tf JOIN q ON q.lexeme = tf.lexeme GROUP BY tf.id
)
SELECT f.path, c.start_line, c.end_line, c.symbol, c.id, c.kind, -s.score AS rank
FROM scored s JOIN chunks c ON c.id = s.id JOIN files f ON f.id = c.file_id
ORDER BY rank LIMIT :k
"""
