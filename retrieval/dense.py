"""Dense chunk vectors kept with the index, and a faiss index per corpus.

Vectors are stored per (embedder, blob, line span): an index run embeds only chunks whose
content has no vector yet, so an unchanged file is never embedded twice and a renamed or copied
file reuses its vectors. After vectors change, the corpus's faiss index (inner product over
unit vectors, ids = chunk ids) is rebuilt from the stored vectors and saved, serialized, in the
store; queries load it once per process and reload only when it is rebuilt.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from peek.db import Database, driver
from peek.retrieval.embedders import Embedder

if TYPE_CHECKING:
    import numpy as np

    from peek.db import AnyConnection

EMBED_BATCH = 256
TEXT_CHARS = 4000  # a chunk's head says what it is; static embedders truncate anyway
Progress = Callable[[int, int], None]


@dataclass(slots=True)
class DenseStats:
    """What one refresh did: chunks embedded now, reused from the store, and the time taken."""

    embedder: str
    embedded: int = 0
    reused: int = 0
    indexed: int = 0
    embed_seconds: float = 0.0
    seconds: float = 0.0


_MISSING_SQL = """
SELECT DISTINCT f.blob_sha, c.start_line, c.end_line, c.symbol, c.text
FROM chunks c JOIN files f ON f.id = c.file_id
WHERE f.corpus_id = :c AND NOT EXISTS (
    SELECT 1 FROM chunk_vectors v WHERE v.embedder = :e AND v.blob_sha = f.blob_sha
    AND v.start_line = c.start_line AND v.end_line = c.end_line)
"""

_VECTORS_SQL = """
SELECT c.id, v.vector
FROM chunks c JOIN files f ON f.id = c.file_id
JOIN chunk_vectors v ON v.embedder = :e AND v.blob_sha = f.blob_sha
    AND v.start_line = c.start_line AND v.end_line = c.end_line
WHERE f.corpus_id = :c
"""


def chunk_text(symbol: str | None, text: str) -> str:
    """What is embedded for a chunk: its symbol name, then the head of its text."""
    return f"{symbol}\n{text[:TEXT_CHARS]}" if symbol else text[:TEXT_CHARS]


def refresh(db: Database, corpus_id: int, embedder: Embedder, changed: bool,
            progress: Progress | None = None) -> DenseStats:
    """Embed the corpus's chunks that have no vector yet, then rebuild its faiss index if needed.

    `changed`: the index run added, changed or removed files (chunk ids moved).
    """
    started = time.perf_counter()
    stats = DenseStats(embedder.name)
    with db.query() as conn:
        missing = conn.execute(_MISSING_SQL, {"c": corpus_id, "e": embedder.name}).fetchall()
        current = conn.execute("SELECT embedder FROM dense_indexes WHERE corpus_id = ?",
                               (corpus_id,)).fetchone()
    for start in range(0, len(missing), EMBED_BATCH):
        batch = missing[start:start + EMBED_BATCH]
        _store_batch(db, embedder, batch, stats)
        if progress is not None:
            progress(start + len(batch), len(missing))
    stale = current is None or current[0] != embedder.name
    if missing or changed or stale:
        with db.raw_write() as conn:
            stats.indexed = _rebuild(conn, corpus_id, embedder)
            if changed:
                _prune(conn, embedder.name)
    stats.seconds = time.perf_counter() - started
    return stats


def _store_batch(db: Database, embedder: Embedder, batch: list[Any], stats: DenseStats) -> None:
    clock = time.perf_counter()
    vectors = embedder.embed([chunk_text(row[3], row[4]) for row in batch])
    stats.embed_seconds += time.perf_counter() - clock
    stats.embedded += len(batch)
    with db.raw_write() as conn:
        conn.executemany(
            "INSERT OR REPLACE INTO chunk_vectors (embedder, blob_sha, start_line, end_line, "
            "vector) VALUES (?, ?, ?, ?, ?)",
            [(embedder.name, r[0], r[1], r[2], _pack(v)) for r, v in zip(batch, vectors,
                                                                          strict=True)])


def _pack(vector: np.ndarray) -> bytes:
    import numpy as np

    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def _rebuild(conn: sqlite3.Connection, corpus_id: int, embedder: Embedder) -> int:
    """Build the corpus's flat inner-product index from stored vectors and save it."""
    import faiss
    import numpy as np

    rows = conn.execute(_VECTORS_SQL, {"c": corpus_id, "e": embedder.name}).fetchall()
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(embedder.dim))
    if rows:
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4")
        index.add_with_ids(matrix.reshape(len(rows), embedder.dim), ids)
    data = faiss.serialize_index(index).tobytes()
    conn.execute(
        "INSERT OR REPLACE INTO dense_indexes (corpus_id, embedder, dim, size, built_at, data) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (corpus_id, embedder.name, embedder.dim, len(rows), time.time(), data))
    return len(rows)


def _prune(conn: sqlite3.Connection, embedder: str) -> None:
    """Forget vectors of blobs that no file of any corpus holds any more."""
    conn.execute("DELETE FROM chunk_vectors WHERE embedder = ? AND blob_sha NOT IN "
                 "(SELECT blob_sha FROM files)", (embedder,))


def drop(db: Database, corpus_id: int) -> None:
    """Remove the corpus's dense index (dense retrieval turned off); vectors stay for reuse."""
    with db.raw_write() as conn:
        conn.execute("DELETE FROM dense_indexes WHERE corpus_id = ?", (corpus_id,))


_LOADED: dict[tuple[int, str, float], Any] = {}


def index_info(conn: AnyConnection, corpus_id: int) -> tuple[str, float] | None:
    """The embedder and build time of the corpus's dense index, or None when it has none."""
    row = driver(conn).execute(
        "SELECT embedder, built_at FROM dense_indexes WHERE corpus_id = ?", (corpus_id,)
    ).fetchone()
    return None if row is None else (str(row[0]), float(row[1]))


def load_index(conn: AnyConnection, corpus_id: int) -> tuple[str, Any] | None:
    """The corpus's faiss index and its embedder's name, deserialized once per build."""
    info = index_info(conn, corpus_id)
    if info is None:
        return None
    key = (corpus_id, *info)
    if key not in _LOADED:
        import faiss
        import numpy as np

        row = driver(conn).execute("SELECT data FROM dense_indexes WHERE corpus_id = ?",
                                   (corpus_id,)).fetchone()
        for old in [k for k in _LOADED if k[0] == corpus_id]:
            del _LOADED[old]
        _LOADED[key] = faiss.deserialize_index(np.frombuffer(row[0], dtype=np.uint8))
    return info[0], _LOADED[key]


def dense_search(conn: AnyConnection, corpus_id: int, query: str,
                 k: int) -> list[tuple[int, float]] | None:
    """(chunk id, cosine) of the k nearest chunks, or None when the corpus has no dense index."""
    from peek.retrieval.embedders import make_dense_embedder

    loaded = load_index(conn, corpus_id)
    if loaded is None:
        return None
    name, index = loaded
    if index.ntotal == 0:
        return []
    vector = make_dense_embedder(name).embed([query])
    if not vector.any():
        return []
    scores, ids = index.search(vector, min(k, index.ntotal))
    return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
