"""The one chunk search behind the CLI, MCP, the agent and the drafters: BM25, or BM25 fused
with dense retrieval by reciprocal-rank fusion when the corpus has a dense index.

RRF (Cormack et al. 2009) adds 1 / (RRF_K + rank) over the two rankings, so neither score scale
has to be calibrated against the other; a chunk found by both rises above one found by either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from peek.db import driver
from peek.retrieval.lexical import Hit, path_prior, search_chunks
from peek.text import query_terms

if TYPE_CHECKING:
    from peek.db import AnyConnection

RRF_K = 60
POOL = 50
DENSE_WEIGHT = 1.0


def dense_enabled() -> bool:
    """Whether PEEK_DENSE asks for dense retrieval (an unknown value is an error)."""
    from peek.retrieval.embedders import dense_choice

    return dense_choice() != "off"


def search(conn: AnyConnection, corpus_id: int, query: str, k: int = 10) -> list[Hit]:
    """The k best chunks: hybrid when dense retrieval is on and indexed, else BM25 alone."""
    if not dense_enabled():
        return search_chunks(conn, corpus_id, query, k)
    from peek.retrieval.dense import dense_search

    pool = max(k, POOL)
    dense = dense_search(conn, corpus_id, query, pool)
    lexical = search_chunks(conn, corpus_id, query, pool)
    if dense is None:
        return lexical[:k]
    return fuse(conn, lexical, dense, query_terms(query))[:k]


def fuse(conn: AnyConnection, lexical: list[Hit], dense: list[tuple[int, float]],
         terms: list[str]) -> list[Hit]:
    """Reciprocal-rank fusion of the BM25 hits and the dense (chunk id, cosine) list."""
    by_id = {h.chunk_id: h for h in lexical}
    found = _hits(conn, [cid for cid, _ in dense if cid not in by_id])
    ranked_dense = sorted(
        ((cid, cos * path_prior(found[cid].path if cid in found else by_id[cid].path, terms))
         for cid, cos in dense if cid in found or cid in by_id),
        key=lambda pair: -pair[1])
    scores: dict[int, float] = {}
    for rank, hit in enumerate(lexical):
        scores[hit.chunk_id] = 1.0 / (RRF_K + rank + 1)
    weight = _dense_weight()
    for rank, (cid, _) in enumerate(ranked_dense):
        scores[cid] = scores.get(cid, 0.0) + weight / (RRF_K + rank + 1)
    by_id.update(found)
    hits = [_rescored(by_id[cid], score) for cid, score in scores.items()]
    hits.sort(key=lambda h: (-h.score, h.path, h.start_line))
    return hits


def _dense_weight() -> float:
    """The dense ranking's share in the fusion: PEEK_DENSE_WEIGHT, default 1 (plain RRF)."""
    import os

    from peek.errors import ConfigError

    raw = os.environ.get("PEEK_DENSE_WEIGHT", "").strip()
    try:
        weight = float(raw) if raw else DENSE_WEIGHT
    except ValueError:
        weight = -1.0
    if not 0.0 <= weight <= 10.0:
        raise ConfigError(f"PEEK_DENSE_WEIGHT must be a number from 0 to 10, got {raw[:40]!r}",
                          "fix or unset it")
    return weight


def _rescored(hit: Hit, score: float) -> Hit:
    return Hit(hit.path, hit.start_line, hit.end_line, hit.symbol, score, hit.chunk_id, hit.kind)


def _hits(conn: AnyConnection, chunk_ids: list[int]) -> dict[int, Hit]:
    """Hits (score 0) for chunks found by dense retrieval alone."""
    if not chunk_ids:
        return {}
    marks = ",".join("?" * len(chunk_ids))
    rows = driver(conn).execute(
        "SELECT f.path, c.start_line, c.end_line, c.symbol, c.id, c.kind FROM chunks c "
        f"JOIN files f ON f.id = c.file_id WHERE c.id IN ({marks})", chunk_ids)
    return {int(r[4]): Hit(r[0], r[1], r[2], r[3], 0.0, int(r[4]), r[5]) for r in rows}
