"""Lexical BM25 search over chunks (SQLite FTS5) with code-aware tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Connection, text

# path and symbol hits say more about where a concept lives than a mention in a body.
FIELD_WEIGHTS = (4.0, 8.0, 1.0)
MAX_QUERY_TERMS = 48
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD = re.compile(r"[A-Za-z0-9_]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z0-9])|[A-Z]?[a-z0-9]+|[A-Z]+")
STOPWORDS = frozenset(
    "a an and are as at be but by can could did do does doing for from had has have how i if in "
    "into is it its me my no not of on or our should so than that the their them then there these "
    "they this those to too was we were what when where which while who why will with would you "
    "your also any all some such get got just like use used using want seems".split()
)


def split_identifier(token: str) -> list[str]:
    """The words inside snake_case and camelCase names: getHTTPResponse_code → get http response code."""
    parts: list[str] = []
    for piece in token.split("_"):
        parts.extend(p.lower() for p in _CAMEL.findall(piece))
    return parts


def expand_for_index(body: str) -> str:
    """Body text plus the parts of its compound identifiers, so both whole names and words match."""
    extra: dict[str, None] = {}
    for token in set(_IDENT.findall(body)):
        if "_" in token.strip("_") or not (token.islower() or token.isupper()):
            extra.update(dict.fromkeys(p for p in split_identifier(token) if len(p) > 1))
    return body + "\n" + " ".join(extra) if extra else body


def path_field(path: str) -> str:
    """A path as searchable words: sympy/core/basic.py → 'sympy core basic py' plus the parts."""
    return expand_for_index(re.sub(r"[/.\-]", " ", path))


def query_terms(query: str) -> list[str]:
    """Distinct lower-cased terms of a query: whole identifiers and their parts, no stopwords."""
    terms: dict[str, None] = {}
    for token in _WORD.findall(query):
        lowered = token.lower()
        if lowered not in STOPWORDS and len(lowered) > 1:
            terms[lowered] = None
        if _IDENT.fullmatch(token):
            terms.update(dict.fromkeys(p for p in split_identifier(token) if p not in STOPWORDS))
    return [t for t in terms if len(t) > 1][:MAX_QUERY_TERMS]


def fts_query(terms: list[str]) -> str:
    """An FTS5 MATCH expression that ORs quoted terms (quoting keeps FTS syntax out of user text)."""
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


_SEARCH_SQL = text(
    """
    SELECT f.path, c.start_line, c.end_line, c.symbol, c.id, c.kind,
           bm25(chunks_fts, :wp, :ws, :wb) AS rank
    FROM chunks_fts
    JOIN chunks c ON c.id = chunks_fts.rowid
    JOIN files f ON f.id = c.file_id
    WHERE chunks_fts MATCH :q AND f.corpus_id = :corpus
    ORDER BY rank LIMIT :k
    """
)


def search_chunks(conn: Connection, corpus_id: int, query: str, k: int = 10) -> list[Hit]:
    """The k best chunks for a free-text or identifier query, by field-weighted BM25."""
    terms = query_terms(query)
    if not terms:
        return []
    wp, ws, wb = FIELD_WEIGHTS
    rows = conn.execute(
        _SEARCH_SQL,
        {"q": fts_query(terms), "corpus": corpus_id, "k": k, "wp": wp, "ws": ws, "wb": wb},
    )
    return [Hit(r[0], r[1], r[2], r[3], -float(r[6]), r[4], r[5]) for r in rows]
