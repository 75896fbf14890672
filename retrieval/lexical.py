"""Lexical BM25 search over chunks (SQLite FTS5, or PostgreSQL: `pg_lexical`) with code-aware
tokens; every function here serves both backends."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from peek.db import driver, is_postgres
from peek.text import query_terms

if TYPE_CHECKING:
    from peek.db import AnyConnection

# path and symbol hits say more about where a concept lives than a mention in a body.
FIELD_WEIGHTS = (4.0, 8.0, 1.0)
POOL = 50
TEST_PRIOR = 0.5
CHANGELOG_PRIOR = 0.5
CHANGELOGS = frozenset({"history", "changes", "changelog", "news", "releases", "release-notes"})
PROSE_PRIOR = 0.8
PROSE_SUFFIXES = (".md", ".markdown", ".rst", ".txt")
DOC_TERMS = frozenset({"doc", "docs", "documentation", "documented", "readme", "guide", "tutorial"})
CHANGELOG_TERMS = frozenset({"history", "changelog", "changes", "release", "releases", "version"})
_TEST_PATH = re.compile(
    r"(^|/)(tests?|testing)/|(^|/)test_[^/]*$|_test\.[a-z]+$|(^|/)conftest\.py$"
)
def fts_query(terms: list[str]) -> str:
    """An FTS5 MATCH expression that ORs quoted terms (quoting keeps FTS syntax out of queries)."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


@dataclass(frozen=True, slots=True)
class Hit:
    """A ranked chunk: where it is and how well it matched (higher is better)."""

    path: str
    start_line: int
    end_line: int
    symbol: str | None
    score: float
    chunk_id: int
    kind: str

    def to_dict(self) -> dict[str, object]:
        """The `peek search --json` shape."""
        return {
            "path": self.path,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "symbol": self.symbol,
            "score": round(self.score, 4),
        }


def fts_table(corpus_id: int) -> str:
    """One FTS5 table per corpus, so BM25's statistics describe that corpus alone."""
    return f"chunks_fts_{int(corpus_id)}"


def create_fts(conn: AnyConnection, table: str, *columns: str) -> None:
    """An FTS5 table with peek's tokenizer: porter stems words, '_' stays inside identifiers
    (on PostgreSQL: a `pg_lexical` table, whatever the columns)."""
    if is_postgres(conn):
        from peek.retrieval import pg_lexical

        return pg_lexical.ensure_table(driver(conn), table)
    driver(conn).execute(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {table} USING fts5({', '.join(columns)}, "
        "tokenize = \"porter unicode61 tokenchars '_'\")"
    )


def drop_fts(conn: AnyConnection, table: str) -> None:
    """Drop a table `create_fts` made (on either backend), so it can be made anew."""
    if is_postgres(conn):
        from peek.retrieval import pg_lexical

        return pg_lexical.drop_table(driver(conn), table)
    driver(conn).execute(f"DROP TABLE IF EXISTS {table}")


def table_exists(conn: AnyConnection, table: str) -> bool:
    """Whether a table (an FTS index made on first use, for one) exists yet."""
    if is_postgres(conn):
        from peek.retrieval import pg_lexical

        return pg_lexical.exists(driver(conn), table)
    row = driver(conn).execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,))
    return row.fetchone() is not None


def ensure_fts(conn: AnyConnection, corpus_id: int) -> None:
    """Create the corpus's chunk index (path, symbol and body fields)."""
    if is_postgres(conn):
        from peek.retrieval import pg_lexical

        return pg_lexical.ensure(driver(conn), corpus_id)
    create_fts(conn, fts_table(corpus_id), "path", "symbol", "body")


def delete_fts_rows(conn: AnyConnection, corpus_id: int, file_ids: list[int]) -> None:
    """Remove the FTS rows of these files' chunks (call before deleting the files)."""
    if is_postgres(conn):
        from peek.retrieval import pg_lexical

        return pg_lexical.delete(driver(conn), corpus_id, file_ids)
    table = fts_table(corpus_id)
    for start in range(0, len(file_ids), 500):
        batch = ",".join(str(int(i)) for i in file_ids[start : start + 500])
        driver(conn).execute(
            f"DELETE FROM {table} WHERE rowid IN "
            f"(SELECT id FROM chunks WHERE file_id IN ({batch}))"
        )


def insert_fts_rows(conn: AnyConnection, corpus_id: int, rows: list[dict[str, object]]) -> None:
    """Add FTS rows keyed by chunk id (rowid)."""
    if rows and is_postgres(conn):
        from peek.retrieval import pg_lexical

        pg_lexical.insert(driver(conn), corpus_id, rows)
    elif rows:
        driver(conn).executemany(
            f"INSERT INTO {fts_table(corpus_id)}(rowid, path, symbol, body) "
            "VALUES (:rowid, :path, :symbol, :body)",
            rows,
        )


def _search_sql(corpus_id: int) -> str:
    table = fts_table(corpus_id)
    return f"""
    SELECT f.path, c.start_line, c.end_line, c.symbol, c.id, c.kind,
           bm25({table}, :wp, :ws, :wb) AS rank
    FROM {table}
    JOIN chunks c ON c.id = {table}.rowid
    JOIN files f ON f.id = c.file_id
    WHERE {table} MATCH :q
    ORDER BY rank LIMIT :k
    """


def is_test_path(path: str) -> bool:
    """Whether a path is a test file or lives in a tests folder."""
    return _TEST_PATH.search(path.lower()) is not None


def path_prior(path: str, terms: list[str]) -> float:
    """Tests, changelogs and prose mention everything; prefer the code unless asked for them.

    In a corpus of documents only, the prose prior scales every file alike and changes nothing.
    """
    lowered = path.lower()
    name = lowered.rsplit("/", 1)[-1]
    if _TEST_PATH.search(lowered) and not any(t.startswith("test") for t in terms):
        return TEST_PRIOR
    if name.split(".")[0] in CHANGELOGS and not any(t in CHANGELOG_TERMS for t in terms):
        return CHANGELOG_PRIOR
    if name.endswith(PROSE_SUFFIXES) and not any(t in DOC_TERMS for t in terms):
        return PROSE_PRIOR
    return 1.0


def search_chunks(conn: AnyConnection, corpus_id: int, query: str, k: int = 10) -> list[Hit]:
    """The k best chunks for a query: field-weighted BM25 over a wide pool, then path priors."""
    terms = query_terms(query)
    if not terms:
        return []
    wp, ws, wb = FIELD_WEIGHTS
    rows: Iterable[tuple[Any, ...]]
    if is_postgres(conn):
        from peek.retrieval import pg_lexical

        rows = pg_lexical.search(driver(conn), corpus_id, terms, FIELD_WEIGHTS, max(k * 4, POOL))
    else:
        rows = driver(conn).execute(
            _search_sql(corpus_id),
            {"q": fts_query(terms), "k": max(k * 4, POOL), "wp": wp, "ws": ws, "wb": wb},
        )
    hits = [
        Hit(r[0], r[1], r[2], r[3], -float(r[6]) * path_prior(r[0], terms), r[4], r[5])
        for r in rows
    ]
    hits.sort(key=lambda h: (-h.score, h.path, h.start_line))
    return hits[:k]


def term_idf(conn: AnyConnection, corpus_id: int, terms: list[str]) -> dict[str, float]:
    """IDF of each term over the corpus's chunks, over its maximum: 1 = rarest, 0 = everywhere.

    Normalizing makes thresholds mean the same in a 10-chunk corpus and a 40,000-chunk one.
    """
    if is_postgres(conn):
        return _pg_idf(conn, corpus_id, terms)
    table = fts_table(corpus_id)
    # the docsize shadow table has one row per document and counts without a full FTS scan
    raw = driver(conn)
    total = int(raw.execute(f"SELECT COUNT(*) FROM {table}_docsize").fetchone()[0] or 0)
    idf: dict[str, float] = {}
    for term in terms:
        df = raw.execute(
            f"SELECT COUNT(*) FROM {table} WHERE {table} MATCH :q", {"q": fts_query([term])}
        ).fetchone()[0]
        idf[term] = math.log((total + 1) / (int(df or 0) + 1)) / math.log(total + 2)
    return idf


def _pg_idf(conn: AnyConnection, corpus_id: int, terms: list[str]) -> dict[str, float]:
    from peek.retrieval import pg_lexical

    lexemes = {t: pg_lexical.term(t) for t in terms}
    total, _, df = pg_lexical.document_frequencies(driver(conn), pg_lexical.table(corpus_id),
                                                   list(lexemes.values()))
    return {t: math.log((total + 1) / (df[lx] + 1)) / math.log(total + 2)
            for t, lx in lexemes.items()}


# --- the full-text seam other indexes share (past requests, file profiles) --------------------
# SQLite: an FTS5 table (rowid, an UNINDEXED key column, one text column); PostgreSQL: a
# `pg_lexical` table (id, key, tsvector). Same tokens (Porter-stemmed) and the same BM25.


def fts_add(conn: AnyConnection, table: str, rows: list[tuple[int | None, str | None, str]],
            column: str = "body", key: str | None = None) -> None:
    """Index (row id, key, text) documents; `column` and `key` name the SQLite columns."""
    if not rows:
        return
    if is_postgres(conn):
        from peek.retrieval import pg_lexical

        pg_lexical.add_docs(driver(conn), table, [(r, k, [(t, "D")]) for r, k, t in rows])
        return
    keys = [key] if key else []
    driver(conn).executemany(
        f"INSERT INTO {table}(rowid, {', '.join([*keys, column])}) "
        f"VALUES ({', '.join('?' * (2 + len(keys)))})",
        [(r, k, t) if key else (r, t) for r, k, t in rows])


def fts_delete_key(conn: AnyConnection, table: str, key: str, value: str) -> None:
    """Drop the documents whose key column holds `value`."""
    if is_postgres(conn):
        from peek.retrieval import pg_lexical

        pg_lexical.delete_docs(driver(conn), table, keys=[value])
        return
    driver(conn).execute(f"DELETE FROM {table} WHERE {key} = ?", (value,))


def fts_delete_row(conn: AnyConnection, table: str, row_id: int) -> None:
    """Drop the document with this row id (to index it anew)."""
    if is_postgres(conn):
        from peek.retrieval import pg_lexical

        pg_lexical.delete_docs(driver(conn), table, ids=[row_id])
        return
    driver(conn).execute(f"DELETE FROM {table} WHERE rowid = ?", (row_id,))


def fts_match(conn: AnyConnection, table: str, terms: list[str], k: int,
              key: str | None = None) -> list[tuple[int | None, str | None, float]]:
    """(row id, key, BM25: higher is better) of the k best documents holding any term."""
    if is_postgres(conn):
        from peek.retrieval import pg_lexical

        return pg_lexical.match(driver(conn), table, terms, k)
    rows = driver(conn).execute(
        f"SELECT rowid, {key or 'NULL'}, bm25({table}) FROM {table} WHERE {table} MATCH ? "
        f"ORDER BY bm25({table}) LIMIT ?", (fts_query(terms), k))
    return [(r[0], r[1], -float(r[2])) for r in rows]
